// One HTTP/1.1 GET with Boost.Beast on an io_context: resolve, connect, send, read the
// answer, all within one deadline and with a cap on the body, never blocking the
// io_context's thread. The control plane's metrics scraper uses it; a new connection
// per fetch (a scrape every few seconds does not need keep-alive).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace infergate::health {

// Where a GET goes: http://host:port/target.
struct HttpEndpoint {
  std::string host;  // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string target = "/";  // path and query

  // "http://host:port/target", with brackets around an IPv6 literal.
  std::string url() const;
  bool operator==(const HttpEndpoint&) const = default;
};

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
  void send();
  void receive();
  void receive_body();
  void finish(FetchResult result);

  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::health
