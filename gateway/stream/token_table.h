// The bearer tokens the gateway accepts (auth.mode token), by the SHA-256 of each: the
// gateway never holds a token itself. Immutable once made; a reload makes a new one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace infergate::gateway {

class TokenTable {
 public:
  explicit TokenTable(const std::vector<config::AuthConfig::Token>& tokens);

  // Who presents `token`: "GROUP/" and the first 8 hex digits of its hash (a name that
  // tells tokens of one group apart without revealing them), or nullopt if unknown.
  std::optional<std::string> identity(std::string_view token) const;

 private:
  std::unordered_map<std::string, std::string> by_hash_;  // hex SHA-256 -> identity
};

// Lower-case hex of the SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace infergate::gateway
