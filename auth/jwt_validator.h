// auth.mode jwt: bearer tokens that are JWTs signed by a configured issuer (WLCG and
// SciTokens profiles), checked by scitokens-cpp against keys the gateway put in its key
// cache (key_cache.h). What the gateway checks itself, before and after: the shape, the
// algorithm (RS256 or ES256; never none), the issuer and key id (so scitokens-cpp never
// has to go looking for keys), the expiry, the audience, the scope and the job claim.
//
// A token's verdict is remembered by its SHA-256 until the token expires (refusals for a
// minute), so a job's requests after the first cost one hash and one lookup, not a
// signature check. Bounded by auth.max_cached_tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.h"
#include "config/config.h"

namespace infergate::auth {

class JwtValidator final : public Authenticator {
 public:
  // Stores each issuer's jwks (from jwks_file) in the key cache. An issuer whose keys do
  // not load refuses its tokens (bad_signature) until set_keys() gives it some.
  explicit JwtValidator(const config::AuthConfig& config);

  Verdict check(std::string_view bearer) const override;

  // New keys for `issuer` (a fetched jwks_url): false, with `error`, if they do not load
  // (the old ones stay).
  bool set_keys(const std::string& issuer, const std::string& jwks, std::string& error);

  // The issuers whose keys come from a URL: (issuer, url).
  std::vector<std::pair<std::string, std::string>> key_urls() const;
  // Whether `issuer` has keys now, and problems met storing them at construction.
  bool has_keys(const std::string& issuer) const;
  const std::vector<std::string>& load_errors() const { return load_errors_; }

  size_t cached_tokens() const;

  // The check itself, uncached, at unix time `now`; `valid_until` is when an accepted
  // token expires.
  Verdict validate(std::string_view token, std::int64_t now, std::int64_t& valid_until) const;

 private:
  struct Issuer {
    config::JwtIssuerConfig config;
    std::shared_ptr<const std::vector<std::string>> kids;  // guarded by mu_; null: no keys
  };
  struct Remembered {
    Verdict verdict;
    std::int64_t until = 0;  // unix seconds
  };

  const Issuer* find_issuer(std::string_view iss) const;
  std::shared_ptr<const std::vector<std::string>> kids_of(const Issuer& issuer) const;
  void remember(std::string key, Verdict verdict, std::int64_t until) const;

  std::vector<Issuer> issuers_;
  std::string required_scope_;
  std::string job_claim_;
  size_t max_cached_;
  std::vector<std::string> load_errors_;

  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Remembered> cache_;  // raw SHA-256 -> verdict
};

}  // namespace infergate::auth
