#include "auth/token_table.h"

#include <openssl/evp.h>

namespace infergate::auth {

TokenTable::TokenTable(const std::vector<config::AuthConfig::Token>& tokens) {
  for (const config::AuthConfig::Token& t : tokens) {
    by_hash_[t.sha256_hex] = {t.group + "/" + t.sha256_hex.substr(0, 8), t.group};
  }
}

Verdict TokenTable::check(std::string_view bearer) const {
  auto it = by_hash_.find(sha256_hex(bearer));
  if (it == by_hash_.end()) {
    return {.failure = Failure::kUnknownToken, .detail = "the bearer token is not known here"};
  }
  return {.caller = it->second.caller, .group = it->second.group};
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace infergate::auth
