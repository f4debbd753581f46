// The HTTP/1.1 admin endpoint (Boost.Beast) on the control io_context: /healthz and
// /metrics, and whatever pages are registered. Every request and answer has a deadline
// (admin.timeout); request headers (16 KiB) and bodies (64 KiB) are bounded; at most
// admin.max_connections are held: past it a new connection takes the place of the
// oldest one that has not begun a request (so idle connections cannot lock out a
// Kubernetes probe), or is closed at once when every one is busy. Control thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::gateway {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool ask_for_token = false;  // 401: WWW-Authenticate: Bearer
};

class AdminServer {
 public:
  using Handler = std::function<AdminResponse()>;

  struct Limits {
    std::uint32_t max_connections = 64;
    std::chrono::nanoseconds timeout = std::chrono::seconds(10);
    // admin.tokens_file: the SHA-256 (hex) of each bearer token that may read every page
    // but /healthz; empty: no token asked.
    std::vector<std::string> token_hashes;
    // admin.tls: new connections speak HTTPS with this context (null: plain HTTP).
    std::shared_ptr<boost::asio::ssl::context> tls;
  };
  // Connections turned away or displaced at admin.max_connections.
  struct Counters {
    std::uint64_t refused = 0;    // closed at once: every held connection was busy
    std::uint64_t displaced = 0;  // idle ones closed to make room for a new one
    size_t open = 0;
  };

  AdminServer(boost::asio::io_context& io, const Limits& limits);
  // admin.tls's pair as a server context (TLS 1.2+), or null with `error`.
  static std::shared_ptr<boost::asio::ssl::context> load_tls(const std::string& cert,
                                                             const std::string& key,
                                                             std::string& error);
  ~AdminServer();

  // A reloaded config's limits (for connections accepted from now on, and the cap at once).
  void set_limits(const Limits& limits);
  std::shared_ptr<boost::asio::ssl::context> tls() const { return registry_->limits.tls; }
  Counters counters() const;

  // Serves GET `path` with `handler` (called on the control thread).
  void route(std::string path, Handler handler);

  // Binds and starts accepting. Returns an error message, or "" on success.
  std::string listen(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void close();

 private:
  class Session;
  // What the sessions share with the server (they may outlive it by a handler).
  struct Registry {
    Limits limits;
    Counters counters;
    std::list<std::weak_ptr<Session>> sessions;  // oldest first
  };
  void accept();
  // Closes the oldest session that has not begun a request; false if none.
  bool displace_idle();
  AdminResponse dispatch(const std::string& method, const std::string& target,
                         std::string_view authorization) const;

  boost::asio::io_context& io_;
  std::shared_ptr<Registry> registry_ = std::make_shared<Registry>();
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::map<std::string, Handler> routes_;
};

}  // namespace infergate::gateway
