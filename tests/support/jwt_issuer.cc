#include "tests/support/jwt_issuer.h"

#include <cstdlib>
#include <ctime>
#include <memory>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <scitokens/scitokens.h>

namespace infergate::testing {
namespace {

std::string base64url(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int held = 0;
  for (unsigned char c : data) {
    bits = (bits << 8) | c;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out.push_back(kAlphabet[(bits >> held) & 63]);
    }
  }
  if (held > 0) out.push_back(kAlphabet[(bits << (6 - held)) & 63]);
  return out;
}

std::string pem(EVP_PKEY* key, bool private_key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  const int ok =
      private_key ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                  : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) throw std::runtime_error("PEM_write failed");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A big-endian parameter of `key`, left-padded to `width` bytes (0: as short as it is).
std::string parameter(EVP_PKEY* key, const char* name, int width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error(name);
  const int size = width > 0 ? width : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(size), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
  BN_free(bn);
  return base64url(out);
}

std::string claims_json(const std::string& issuer, const JwtIssuer::Claims& c) {
  const long long exp = static_cast<long long>(std::time(nullptr)) + c.lifetime_seconds;
  std::string json =
      "{\"iss\":\"" + issuer + "\",\"sub\":\"" + c.sub + "\",\"exp\":" + std::to_string(exp);
  if (!c.aud.empty()) json += ",\"aud\":\"" + c.aud + "\"";
  if (!c.scope.empty()) json += ",\"scope\":\"" + c.scope + "\"";
  for (const auto& [k, v] : c.extra) json += ",\"" + k + "\":\"" + v + "\"";
  return json + "}";
}

}  // namespace

struct JwtIssuer::Keys {
  EVP_PKEY* rsa = nullptr;
  EVP_PKEY* ec = nullptr;
  ~Keys() {
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
  }
};

JwtIssuer::JwtIssuer(std::string issuer) : issuer_(std::move(issuer)), keys_(new Keys) {
  keys_->rsa = EVP_RSA_gen(2048);
  keys_->ec = EVP_EC_gen("P-256");
  if (keys_->rsa == nullptr || keys_->ec == nullptr) throw std::runtime_error("keygen failed");
}

JwtIssuer::~JwtIssuer() { delete keys_; }

std::string JwtIssuer::jwks() const {
  return "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":"
         "\"" +
         parameter(keys_->rsa, OSSL_PKEY_PARAM_RSA_N, 0) + "\",\"e\":\"" +
         parameter(keys_->rsa, OSSL_PKEY_PARAM_RSA_E, 0) +
         "\"},{\"kty\":\"EC\",\"kid\":\"ec-1\",\"alg\":\"ES256\",\"use\":\"sig\",\"crv\":\"P-"
         "256\",\"x\":\"" +
         parameter(keys_->ec, OSSL_PKEY_PARAM_EC_PUB_X, 32) + "\",\"y\":\"" +
         parameter(keys_->ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + "\"}]}";
}

std::string JwtIssuer::token(const Claims& c) const {
  const bool rsa = c.alg == "RS256";
  EVP_PKEY* key = rsa ? keys_->rsa : keys_->ec;
  char* error = nullptr;
  SciTokenKey signer = scitoken_key_create(rsa ? "rsa-1" : "ec-1", c.alg.c_str(),
                                           pem(key, false).c_str(), pem(key, true).c_str(), &error);
  if (signer == nullptr) throw std::runtime_error(error != nullptr ? error : "key");
  SciToken t = scitoken_create(signer);
  scitoken_set_claim_string(t, "iss", issuer_.c_str(), &error);
  scitoken_set_claim_string(t, "sub", c.sub.c_str(), &error);
  if (!c.aud.empty()) scitoken_set_claim_string(t, "aud", c.aud.c_str(), &error);
  if (!c.scope.empty()) scitoken_set_claim_string(t, "scope", c.scope.c_str(), &error);
  for (const auto& [k, v] : c.extra) scitoken_set_claim_string(t, k.c_str(), v.c_str(), &error);
  scitoken_set_lifetime(t, c.lifetime_seconds);
  char* text = nullptr;
  const int rc = scitoken_serialize(t, &text, &error);
  scitoken_destroy(t);
  scitoken_key_destroy(signer);
  if (rc != 0) throw std::runtime_error(error != nullptr ? error : "serialize");
  std::string out(text);
  std::free(text);
  return out;
}

std::string JwtIssuer::unsigned_token(const Claims& c) const {
  return base64url("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." +
         base64url(claims_json(issuer_, c)) + ".";
}

std::string with_bad_signature(std::string token) {
  // A character in the middle of the signature: every bit of it counts.
  const size_t at = token.rfind('.') + 10;
  token[at] = token[at] == 'A' ? 'B' : 'A';
  return token;
}

}  // namespace infergate::testing
