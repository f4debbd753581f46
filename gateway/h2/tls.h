// TLS for the gRPC frontend, with OpenSSL 3 under the frame pump: a connection's SSL
// reads and writes its socket directly (so kernel TLS can take over where the kernel
// has it). A TlsContext is made whole from PEM files and never changed: a reload makes
// a new one for new connections, and each connection keeps the one it began with.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace infergate::gateway {

struct TlsFiles {
  std::string cert;       // PEM certificate chain (leaf first)
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CAs that client certificates must chain to ("": none asked)
  bool require_client_cert = false;
  std::string min_version = "1.2";  // "1.2" or "1.3"

  bool operator==(const TlsFiles&) const = default;
};

// What a backend connection verifies and presents.
struct TlsClientFiles {
  std::string ca;    // PEM CAs the backend's certificate must chain to ("": the system's)
  std::string cert;  // the gateway's client certificate (mutual TLS), with `key`
  std::string key;

  bool operator==(const TlsClientFiles&) const = default;
};

class TlsContext {
 public:
  // Loads the files; nullptr and `error` (naming the file and OpenSSL's reason) if they
  // do not make a usable server context (a key that does not match the certificate, say).
  static std::shared_ptr<const TlsContext> load(const TlsFiles& files, std::string* error);
  // A client context for backend connections: TLS 1.2+, ALPN h2, the backend's
  // certificate verified (its name is checked per connection: set_client_name).
  static std::shared_ptr<const TlsContext> load_client(const TlsClientFiles& files,
                                                       std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  const TlsFiles& files() const { return files_; }
  // The leaf certificate's subject and notAfter, for logs.
  const std::string& subject() const { return subject_; }
  const std::string& not_after() const { return not_after_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  TlsFiles files_;
  std::string subject_;
  std::string not_after_;
};

// Why a TLS handshake failed: the `reason` label of
// infergate_tls_handshake_failures_total (kTlsFailureNames, in this order).
enum class TlsFailure : std::uint8_t {
  kPlaintext,         // the client spoke plaintext (HTTP/2 or HTTP/1) to the TLS port
  kNoCommonProtocol,  // no TLS version, cipher or ALPN protocol (h2) in common
  kNoClientCert,      // a client certificate is required and none was sent
  kBadClientCert,     // the client's certificate did not verify (unknown CA, expired, ...)
  kClientRejected,    // the client refused the gateway's certificate (its alert)
  kOther,             // anything else (a connection closed mid-handshake, ...)
  kCount,
};
std::string_view tls_failure_name(TlsFailure why);

// Classifies the failed handshake of `ssl` from OpenSSL's error queue (which it clears)
// and the verify result; `detail` gets OpenSSL's own words for the log.
TlsFailure classify_tls_failure(SSL* ssl, std::string* detail);

// Readies `ssl` (made from a client context) to connect to `name`: SNI (unless `name` is
// an IP address) and the name its certificate must carry. False if OpenSSL refuses.
bool set_client_name(SSL* ssl, const std::string& name);

// OpenSSL's words for a failed handshake of `ssl` (clears its error queue), with the
// certificate verification result when that failed.
std::string tls_error_text(SSL* ssl);

// The verified client certificate's subject (RFC 2253), or "" if there is none.
std::string peer_subject(SSL* ssl);

}  // namespace infergate::gateway
