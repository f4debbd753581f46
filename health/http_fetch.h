// One HTTP/1.1 GET with Boost.Beast on an io_context, over TCP or TLS: resolve, connect,
// (handshake,) send, read the answer, all within one deadline and with a cap on the body,
// never blocking the io_context's thread. The control plane's metrics scraper and the JWT
// key fetcher use it; a new connection per fetch (one every few seconds or minutes does
// not need keep-alive).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace infergate::health {

// Where a GET goes: http://host:port/target, or https://.
struct HttpEndpoint {
  std::string host;  // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string target = "/";  // path and query
  // https: TLS 1.2 or 1.3, the server's certificate verified for `host` against ca_file
  // (PEM), or against the system's CAs when ca_file is empty.
  bool tls = false;
  std::string ca_file;

  // "http://host:port/target" (or https), with brackets around an IPv6 literal.
  std::string url() const;
  bool operator==(const HttpEndpoint&) const = default;
};

// A TLS client context as the control plane's clients use it (HTTPS fetches, Redis):
// TLS 1.2 or later, the peer's certificate verified against `ca_file` (PEM), or the
// system's CAs when it is empty. Returns why the CAs did not load, or "".
std::string configure_client_tls(boost::asio::ssl::context& context, const std::string& ca_file);

struct FetchResult {
  bool ok = false;    // a complete answer arrived (any status)
  int status = 0;     // its HTTP status
  std::string body;   // at most the body limit
  std::string error;  // why not ok: "connect: Connection refused", "timed out after 2s"
};

class HttpFetch : public std::enable_shared_from_this<HttpFetch> {
 public:
  using Done = std::function<void(FetchResult)>;

  // Starts GET `endpoint` on `io`; `done` runs once, on io's thread, unless cancel()
  // came first. Call on io's thread.
  static std::shared_ptr<HttpFetch> start(boost::asio::io_context& io, HttpEndpoint endpoint,
                                          std::chrono::nanoseconds timeout,
                                          std::uint64_t body_limit_bytes, Done done);

  // Stops it; `done` will not run. io's thread.
  void cancel();

  ~HttpFetch();

 private:
  struct Impl;
  explicit HttpFetch(std::unique_ptr<Impl> impl);
  void run();
  void connect();
  void handshake();
  void send();
  void receive();
  void receive_body();
  void finish(FetchResult result);

  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::health
