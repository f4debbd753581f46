// A JWT issuer made by a test: an RSA and an EC key pair generated with OpenSSL when it is
// made (never committed), its public keys as a JWKS document, and tokens signed with
// scitokens-cpp (the library the gateway checks them with), or deliberately broken ones.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace infergate::testing {

class JwtIssuer {
 public:
  explicit JwtIssuer(std::string issuer);
  ~JwtIssuer();
  JwtIssuer(const JwtIssuer&) = delete;
  JwtIssuer& operator=(const JwtIssuer&) = delete;

  struct Claims {
    std::string sub = "alice";
    std::string aud = "infergate";                           // empty: no aud claim
    std::string scope = "compute.read";                      // empty: no scope claim
    int lifetime_seconds = 600;                              // negative: already expired
    std::string alg = "RS256";                               // or ES256
    std::vector<std::pair<std::string, std::string>> extra;  // more string claims
  };

  const std::string& issuer() const { return issuer_; }
  // {"keys": [the RSA key (kid "rsa-1"), the EC key (kid "ec-1")]}.
  std::string jwks() const;
  // Signed by this issuer's key for claims.alg.
  std::string token(const Claims& claims) const;
  // The same claims with {"alg": "none"} and no signature.
  std::string unsigned_token(const Claims& claims) const;

 private:
  struct Keys;
  std::string issuer_;
  Keys* keys_;
};

// `token` with one character of its signature changed.
std::string with_bad_signature(std::string token);

}  // namespace infergate::testing
