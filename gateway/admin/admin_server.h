// The HTTP/1.1 admin endpoint (Boost.Beast) on the control io_context: /healthz and
// /metrics, and whatever pages are registered. Every step has a timeout; bodies and
// header sizes are bounded.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <string>

namespace infergate::gateway {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  using Handler = std::function<AdminResponse()>;

  explicit AdminServer(boost::asio::io_context& io);
  ~AdminServer();

  // Serves GET `path` with `handler` (called on the control thread).
  void route(std::string path, Handler handler);

  // Binds and starts accepting. Returns an error message, or "" on success.
  std::string listen(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void close();

 private:
  class Session;
  void accept();
  AdminResponse dispatch(const std::string& method, const std::string& target) const;

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::map<std::string, Handler> routes_;
};

}  // namespace infergate::gateway
