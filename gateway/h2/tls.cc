#include "gateway/h2/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstring>

#include "gateway/stats.h"

namespace infergate::gateway {
namespace {

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

// ALPN: the gateway speaks h2 only. A client that offers ALPN without h2 is refused
// (no_application_protocol); one that offers no ALPN at all is left to the HTTP/2
// preface check.
int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
              unsigned int inlen, void*) {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 2 && std::memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::string name_of(const X509_NAME* name) {
  if (name == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string time_of(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Loads a certificate chain and its key into `ctx`; "" or what failed (with OpenSSL's
// words).
std::string use_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return "cannot load certificate " + cert + ": " + openssl_errors();
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return "cannot load key " + key + ": " + openssl_errors();
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return "key " + key + " does not match certificate " + cert + ": " + openssl_errors();
  }
  return "";
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::load(const TlsFiles& files, std::string* error) {
  ERR_clear_error();
  std::shared_ptr<TlsContext> c(new TlsContext());
  c->files_ = files;
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  auto fail = [&](const std::string& what) {
    *error = what + ": " + openssl_errors();
    return nullptr;
  };
  if (c->ctx_ == nullptr) return fail("cannot make a TLS context");
  SSL_CTX* ctx = c->ctx_;
  SSL_CTX_set_min_proto_version(ctx, files.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Partial writes: the frame pump hands over slices and takes back what was sent.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION | SSL_OP_ENABLE_KTLS);
  // HTTP/2 (RFC 9113 9.2.2) forbids the weak TLS 1.2 suites; these are its allowed set.
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set_alpn_select_cb(ctx, select_h2, nullptr);
  if (std::string e = use_pair(ctx, files.cert, files.key); !e.empty()) {
    *error = e;
    return nullptr;
  }
  if (!files.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, files.client_ca.c_str(), nullptr) != 1) {
      return fail("cannot load client CA " + files.client_ca);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (files.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  if (X509* leaf = SSL_CTX_get0_certificate(ctx)) {
    c->subject_ = name_of(X509_get_subject_name(leaf));
    c->not_after_ = time_of(X509_get0_notAfter(leaf));
  }
  return c;
}

std::shared_ptr<const TlsContext> TlsContext::load_client(const TlsClientFiles& files,
                                                          std::string* error) {
  ERR_clear_error();
  std::shared_ptr<TlsContext> c(new TlsContext());
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  auto fail = [&](const std::string& what) {
    *error = what + ": " + openssl_errors();
    return nullptr;
  };
  if (c->ctx_ == nullptr) return fail("cannot make a TLS context");
  SSL_CTX* ctx = c->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_ENABLE_KTLS);
  static const unsigned char kH2[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2);
  const bool loaded = files.ca.empty()
                          ? SSL_CTX_set_default_verify_paths(ctx) == 1
                          : SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) == 1;
  if (!loaded) return fail("cannot load CA " + (files.ca.empty() ? "(system)" : files.ca));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!files.cert.empty()) {
    if (std::string e = use_pair(ctx, files.cert, files.key); !e.empty()) {
      *error = e;
      return nullptr;
    }
  }
  return c;
}

bool set_client_name(SSL* ssl, const std::string& name) {
  const bool is_ip = name.find_first_not_of("0123456789.") == std::string::npos ||
                     name.find(':') != std::string::npos;
  if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (is_ip) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    return X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
  }
  return SSL_set1_host(ssl, name.c_str()) == 1;
}

TlsContext::~TlsContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

std::string_view tls_failure_name(TlsFailure why) {
  const auto i = static_cast<size_t>(why);
  return i < kTlsFailureNames.size() ? kTlsFailureNames[i] : "other";
}

TlsFailure classify_tls_failure(SSL* ssl, std::string* detail) {
  const unsigned long first = ERR_peek_error();
  const int reason = ERR_GET_REASON(first);
  *detail = first == 0 ? "connection closed during the handshake" : openssl_errors();
  const long verify = SSL_get_verify_result(ssl);
  switch (reason) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return TlsFailure::kPlaintext;
    case SSL_R_NO_APPLICATION_PROTOCOL:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return TlsFailure::kNoCommonProtocol;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return TlsFailure::kNoClientCert;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      if (verify != X509_V_OK) {
        *detail += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      return TlsFailure::kBadClientCert;
    default:
      break;
  }
  // A client that hangs up once it has the gateway's certificate, without a word: what
  // gRPC's own clients do when they do not trust it.
  if ((first == 0 || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) &&
      BIO_number_written(SSL_get_wbio(ssl)) > 0) {
    *detail =
        "the client closed the connection after the gateway's certificate (does it trust "
        "the CA?)";
    return TlsFailure::kClientRejected;
  }
  // A TLS alert the client sent (OpenSSL reports it as 1000 + the alert's number).
  if (reason >= SSL_AD_REASON_OFFSET) {
    return reason == SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL
               ? TlsFailure::kNoCommonProtocol
               : TlsFailure::kClientRejected;
  }
  return TlsFailure::kOther;
}

std::string tls_error_text(SSL* ssl) {
  std::string text =
      ERR_peek_error() == 0 ? "connection closed during the handshake" : openssl_errors();
  if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
    text += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
  }
  return text;
}

std::string peer_subject(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  return name_of(X509_get_subject_name(cert));
}

}  // namespace infergate::gateway
