// The bearer tokens the gateway accepts (auth.mode token), by the SHA-256 of each: the
// gateway never holds a token itself. Immutable once made; a reload makes a new one.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.h"
#include "config/config.h"

namespace infergate::auth {

class TokenTable final : public Authenticator {
 public:
  explicit TokenTable(const std::vector<config::AuthConfig::Token>& tokens);

  // Accepted: the caller is "GROUP/" and the first 8 hex digits of the token's hash (a
  // name that tells tokens of one group apart without revealing them).
  Verdict check(std::string_view bearer) const override;

 private:
  struct Entry {
    std::string caller;
    std::string group;
  };
  std::unordered_map<std::string, Entry> by_hash_;  // hex SHA-256 -> who
};

// Lower-case hex of the SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace infergate::auth
