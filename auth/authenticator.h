// Who is calling: a bearer token checked against what auth: accepts. One interface for
// the modes (token: a table of token hashes; jwt: signed tokens from known issuers), so
// the data plane asks one question per request and never learns which mode answers it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace infergate::auth {

enum class Failure : std::uint8_t {
  kNone,
  kNoToken,
  kUnknownToken,   // mode token: not in tokens_file
  kMalformed,      // not a JWT, or one without the claims the gateway needs
  kBadSignature,   // signature does not verify, unknown key, or an algorithm refused (none)
  kUnknownIssuer,  // "iss" is not one of auth.issuers
  kWrongAudience,
  kExpired,
  kMissingScope,  // authenticated, but not allowed: PERMISSION_DENIED
};

// infergate_auth_failures_total{reason}: indexed by Failure minus one.
inline constexpr std::array<std::string_view, 8> kFailureNames = {
    "no_token",       "unknown_token",  "malformed_token", "bad_signature",
    "unknown_issuer", "wrong_audience", "expired",         "missing_scope"};

inline size_t failure_index(Failure f) { return static_cast<size_t>(f) - 1; }

struct Verdict {
  Failure failure = Failure::kNone;
  std::string caller;            // accepted: the job the credential names (a subject, "GROUP/hash")
  std::string group;             // accepted: the group whose limits apply (limits.groups)
  std::string detail;            // refused: why, for the client's message (never the token)
  std::int64_t valid_until = 0;  // accepted: unix seconds when the credential expires (0: never)

  bool accepted() const { return failure == Failure::kNone; }
  // A caller known but not allowed (PERMISSION_DENIED) rather than not known at all.
  bool denied() const { return failure == Failure::kMissingScope; }
};

class Authenticator {
 public:
  Authenticator() : id_(next_id_.fetch_add(1, std::memory_order_relaxed)) {}
  virtual ~Authenticator() = default;
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Unique in the process, never reused (unlike an address): what a verdict remembered
  // elsewhere names as the one that gave it.
  std::uint64_t id() const { return id_; }

  // `bearer`: what follows "Bearer " in the authorization metadata. Thread-safe: every
  // worker asks the same object.
  virtual Verdict check(std::string_view bearer) const = 0;

 private:
  static inline std::atomic<std::uint64_t> next_id_{1};
  const std::uint64_t id_;
};

}  // namespace infergate::auth
