#include "gateway/admin/admin_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>

namespace infergate::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// One HTTP connection: read a request, answer it, repeat while keep-alive.
class AdminServer::Session : public std::enable_shared_from_this<AdminServer::Session> {
 public:
  Session(tcp::socket socket, const AdminServer& server)
      : stream_(std::move(socket)), server_(server) {}

  void start() { read(); }

 private:
  void read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->shutdown();
                       self->request_ = self->parser_->release();
                       self->respond();
                     });
  }

  void respond() {
    AdminResponse r =
        server_.dispatch(std::string(request_.method_string()), std::string(request_.target()));
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), request_.version());
    res->set(http::field::server, "infergate");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(request_.keep_alive());
    if (request_.method() != http::verb::head) res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->shutdown();
                        self->read();
                      });
  }

  void shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  const AdminServer& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
};

AdminServer::AdminServer(boost::asio::io_context& io) : io_(io), acceptor_(io), retry_(io) {}

AdminServer::~AdminServer() { close(); }

void AdminServer::route(std::string path, Handler handler) {
  routes_[std::move(path)] = std::move(handler);
}

std::string AdminServer::listen(const tcp::endpoint& endpoint) {
  beast::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) return ec.message();
  accept();
  return "";
}

tcp::endpoint AdminServer::local_endpoint() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void AdminServer::close() {
  beast::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

void AdminServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      std::make_shared<Session>(std::move(socket), *this)->start();
      return accept();
    }
    // Out of descriptors or similar: try again shortly instead of spinning.
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
  });
}

AdminResponse AdminServer::dispatch(const std::string& method, const std::string& target) const {
  if (method != "GET" && method != "HEAD") {
    return AdminResponse{.status = 405, .body = "only GET and HEAD are served here\n"};
  }
  const std::string path = target.substr(0, target.find('?'));
  auto it = routes_.find(path);
  if (it == routes_.end()) {
    std::string body = "not found; try:";
    for (const auto& [p, h] : routes_) body += " " + p;
    return AdminResponse{.status = 404, .body = body + "\n"};
  }
  return it->second();
}

}  // namespace infergate::gateway
