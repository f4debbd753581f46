#include "auth/jwt_validator.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <ctime>
#include <optional>

#include <openssl/evp.h>
#include <scitokens/scitokens.h>
#include <yaml-cpp/yaml.h>

#include "auth/key_cache.h"
#include "config/jwks.h"

namespace infergate::auth {
namespace {

constexpr std::int64_t kRememberRefusalSeconds = 60;
constexpr int kMaxClaimsDepth = 8;
constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxEchoed = 96;  // of a client's own value, quoted back in a message
// WLCG Common JWT Profile: a token for any audience.
constexpr std::string_view kAnyAudience = "https://wlcg.cern.ch/jwt/v1/any";

// base64url without padding (RFC 7515 section 2); nullopt on any other byte.
std::optional<std::string> base64url_decode(std::string_view in) {
  static constexpr auto kTable = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < kAlphabet.size(); ++i) {
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
  }();
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t bits = 0;
  int held = 0;
  for (char c : in) {
    const std::int8_t v = kTable[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out.push_back(static_cast<char>((bits >> held) & 0xff));
    }
  }
  if (held >= 6) return std::nullopt;  // one character alone cannot end a group
  return out;
}

// A JWT segment's JSON object, or nullopt.
std::optional<YAML::Node> decode_object(std::string_view segment) {
  std::optional<std::string> json = base64url_decode(segment);
  if (!json || json->empty() || json->front() != '{' ||
      config::json_nesting_depth(*json) > kMaxClaimsDepth) {
    return std::nullopt;
  }
  try {
    YAML::Node node = YAML::Load(*json);
    if (!node.IsMap()) return std::nullopt;
    return node;
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

std::string text_of(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  return v && v.IsScalar() ? v.Scalar() : std::string();
}

std::string echo(std::string_view value) {
  std::string out(value.substr(0, kMaxEchoed));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (value.size() > kMaxEchoed) out += "...";
  return out;
}

std::string utc(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string raw_sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

// scitokens-cpp's C API hands out malloc'ed strings and lists.
struct Freed {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, Freed>;

struct TokenHandle {
  SciToken token = nullptr;
  ~TokenHandle() {
    if (token != nullptr) scitoken_destroy(token);
  }
};

// A claim that is a string or a list of strings; empty if neither.
std::vector<std::string> claim_strings(SciToken token, const char* claim) {
  std::vector<std::string> out;
  char* error = nullptr;
  char* value = nullptr;
  if (scitoken_get_claim_string(token, claim, &value, &error) == 0 && value != nullptr) {
    out.emplace_back(value);
    std::free(value);
    return out;
  }
  std::free(error);
  error = nullptr;
  char** list = nullptr;
  if (scitoken_get_claim_string_list(token, claim, &list, &error) == 0 && list != nullptr) {
    for (char** p = list; *p != nullptr; ++p) out.emplace_back(*p);
    scitoken_free_string_list(list);
  }
  std::free(error);
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

Verdict refused(Failure failure, std::string detail) {
  return {.failure = failure, .detail = std::move(detail)};
}

}  // namespace

JwtValidator::JwtValidator(const config::AuthConfig& config)
    : required_scope_(config.required_scope),
      job_claim_(config.job_claim),
      max_cached_(std::max<size_t>(1, config.max_cached_tokens)) {
  issuers_.reserve(config.issuers.size());
  for (const config::JwtIssuerConfig& c : config.issuers) {
    issuers_.push_back({.config = c, .kids = nullptr});
    if (c.jwks.empty()) continue;
    std::string error;
    if (!set_keys(c.issuer, c.jwks, error)) {
      load_errors_.push_back(c.issuer + " (" + c.jwks_file + "): " + error);
    }
  }
}

const JwtValidator::Issuer* JwtValidator::find_issuer(std::string_view iss) const {
  for (const Issuer& issuer : issuers_) {
    if (issuer.config.issuer == iss) return &issuer;
  }
  return nullptr;
}

std::shared_ptr<const std::vector<std::string>> JwtValidator::kids_of(const Issuer& issuer) const {
  std::lock_guard lock(mu_);
  return issuer.kids;
}

bool JwtValidator::set_keys(const std::string& issuer, const std::string& jwks,
                            std::string& error) {
  auto it = std::find_if(issuers_.begin(), issuers_.end(),
                         [&](const Issuer& i) { return i.config.issuer == issuer; });
  if (it == issuers_.end()) {
    error = "not a configured issuer";
    return false;
  }
  config::JwksKeys keys = config::parse_jwks(jwks);
  if (!keys.error.empty()) {
    error = keys.error;
    return false;
  }
  if (!store_issuer_keys(issuer, jwks, error)) return false;
  auto kids = std::make_shared<const std::vector<std::string>>(std::move(keys.kids));
  std::lock_guard lock(mu_);
  it->kids = std::move(kids);
  // A verdict may rest on keys that are gone now (a key the issuer withdrew).
  cache_.clear();
  return true;
}

std::vector<std::pair<std::string, std::string>> JwtValidator::key_urls() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Issuer& issuer : issuers_) {
    if (!issuer.config.jwks_url.empty()) {
      out.emplace_back(issuer.config.issuer, issuer.config.jwks_url);
    }
  }
  return out;
}

bool JwtValidator::has_keys(const std::string& issuer) const {
  const Issuer* i = find_issuer(issuer);
  return i != nullptr && kids_of(*i) != nullptr;
}

size_t JwtValidator::cached_tokens() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

Verdict JwtValidator::check(std::string_view bearer) const {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  std::string key = raw_sha256(bearer);
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (it->second.until > now) return it->second.verdict;
      cache_.erase(it);
    }
  }
  std::int64_t valid_until = 0;
  Verdict verdict = validate(bearer, now, valid_until);
  remember(std::move(key), verdict,
           verdict.accepted() ? valid_until : now + kRememberRefusalSeconds);
  return verdict;
}

void JwtValidator::remember(std::string key, Verdict verdict, std::int64_t until) const {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  std::lock_guard lock(mu_);
  if (cache_.size() >= max_cached_) {
    std::erase_if(cache_, [now](const auto& entry) { return entry.second.until <= now; });
    // Still full of live tokens: forget an arbitrary tenth (they are checked again).
    for (auto it = cache_.begin();
         cache_.size() >= max_cached_ - max_cached_ / 10 && it != cache_.end();) {
      it = cache_.erase(it);
    }
  }
  cache_[std::move(key)] = {std::move(verdict), until};
}

Verdict JwtValidator::validate(std::string_view token, std::int64_t now,
                               std::int64_t& valid_until) const {
  if (token.size() > kMaxTokenBytes) {
    return refused(Failure::kMalformed,
                   "the token is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refused(Failure::kMalformed, "the bearer token is not a JWT (header.payload.signature)");
  }
  std::optional<YAML::Node> header = decode_object(token.substr(0, dot1));
  std::optional<YAML::Node> claims = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!header || !claims) {
    return refused(Failure::kMalformed, "the token's header or claims are not base64url JSON");
  }
  const std::string alg = text_of(*header, "alg");
  if (alg != "RS256" && alg != "ES256") {
    return refused(Failure::kBadSignature,
                   "the token's algorithm \"" + echo(alg) + "\" is not accepted (RS256 or ES256)");
  }
  const std::string iss = text_of(*claims, "iss");
  if (iss.empty()) return refused(Failure::kMalformed, "the token has no iss (issuer) claim");
  const Issuer* issuer = find_issuer(iss);
  if (issuer == nullptr) {
    return refused(Failure::kUnknownIssuer,
                   "the token's issuer \"" + echo(iss) + "\" is not one of auth.issuers");
  }
  const std::shared_ptr<const std::vector<std::string>> kids = kids_of(*issuer);
  if (kids == nullptr) {
    return refused(Failure::kBadSignature, "no keys loaded yet for issuer " + iss);
  }
  // scitokens-cpp would go and fetch keys it does not know: only known ones get that far.
  const std::string kid = text_of(*header, "kid");
  if (std::find(kids->begin(), kids->end(), kid) == kids->end()) {
    return refused(Failure::kBadSignature,
                   "key \"" + echo(kid) + "\" is not one of issuer " + iss + "'s keys");
  }
  std::int64_t exp = 0;
  try {
    const YAML::Node e = (*claims)["exp"];
    if (!e || !e.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "no exp");
    exp = e.as<std::int64_t>();
  } catch (const YAML::Exception&) {
    return refused(Failure::kMalformed, "the token has no numeric exp (expiry) claim");
  }
  if (exp <= now) return refused(Failure::kExpired, "the token expired at " + utc(exp));

  // The signature, and the time claims, by scitokens-cpp.
  const std::string serialized(token);
  const char* allowed[] = {issuer->config.issuer.c_str(), nullptr};
  TokenHandle verified;
  char* raw_error = nullptr;
  int rc = 0;
  {
    std::lock_guard lock(key_cache_mutex());
    rc = scitoken_deserialize(serialized.c_str(), &verified.token, allowed, &raw_error);
  }
  if (rc != 0) {
    CString error(raw_error);
    const std::string why = error ? error.get() : "unknown error";
    if (why.find("expired") != std::string::npos) {
      return refused(Failure::kExpired, "the token expired (" + why + ")");
    }
    return refused(Failure::kBadSignature, "the token does not verify: " + why);
  }
  const config::JwtIssuerConfig& c = issuer->config;
  if (!c.audience.empty()) {
    const std::vector<std::string> aud = claim_strings(verified.token, "aud");
    const bool ours = std::any_of(aud.begin(), aud.end(), [&](const std::string& a) {
      return a == kAnyAudience ||
             std::find(c.audience.begin(), c.audience.end(), a) != c.audience.end();
    });
    if (!ours) {
      return refused(Failure::kWrongAudience,
                     "the token's audience (" + echo(aud.empty() ? "none" : joined(aud)) +
                         ") is not this gateway's (" + joined(c.audience) + ")");
    }
  }
  if (!required_scope_.empty()) {
    bool has = false;
    for (const std::string& scopes : claim_strings(verified.token, "scope")) {
      size_t start = 0;
      while (!has && start <= scopes.size()) {
        size_t end = scopes.find(' ', start);
        if (end == std::string::npos) end = scopes.size();
        has = std::string_view(scopes).substr(start, end - start) == required_scope_;
        start = end + 1;
      }
    }
    for (const std::string& group : claim_strings(verified.token, "wlcg.groups")) {
      has = has || group == required_scope_;
    }
    if (!has) {
      return refused(Failure::kMissingScope,
                     "the token does not grant " + required_scope_ + " (in scope or wlcg.groups)");
    }
  }
  const std::vector<std::string> job = claim_strings(verified.token, job_claim_.c_str());
  if (job.size() != 1 || job.front().empty()) {
    return refused(Failure::kMalformed,
                   "the token has no " + job_claim_ + " claim (auth.job_claim) to name its job");
  }
  valid_until = exp;
  return {.caller = job.front(), .group = c.group, .valid_until = exp};
}

}  // namespace infergate::auth
