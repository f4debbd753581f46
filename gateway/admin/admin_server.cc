#include "gateway/admin/admin_server.h"

#include <algorithm>

#include "auth/token_table.h"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <variant>

namespace infergate::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// One HTTP (or HTTPS) connection: read a request, answer it, repeat while keep-alive.
class AdminServer::Session : public std::enable_shared_from_this<AdminServer::Session> {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  Session(tcp::socket socket, const AdminServer& server, std::shared_ptr<Registry> registry)
      : tls_(registry->limits.tls),
        stream_(make_stream(std::move(socket))),
        server_(server),
        registry_(std::move(registry)) {}
  ~Session() { forget(); }

  // Listed with the server's sessions, then (after the TLS handshake, within
  // admin.timeout) reads the first request.
  void start() {
    registry_->sessions.push_back(weak_from_this());
    listed_ = std::prev(registry_->sessions.end());
    ++registry_->counters.open;
    auto* tls = std::get_if<TlsStream>(&stream_);
    if (tls == nullptr) return read();
    lowest().expires_after(registry_->limits.timeout);
    tls->async_handshake(boost::asio::ssl::stream_base::server,
                         [self = shared_from_this()](beast::error_code ec) {
                           if (ec) return self->shutdown();
                           self->read();
                         });
  }

  // Waiting for a request of which no byte has come.
  bool idle() const { return reading_ && buffer_.size() == 0 && parser_ && !parser_->got_some(); }

  // Closes the connection now (its pending operation ends, and with it the session); it
  // no longer counts against admin.max_connections.
  void close() {
    forget();
    beast::error_code ec;
    lowest().socket().close(ec);
  }

 private:
  std::variant<beast::tcp_stream, TlsStream> make_stream(tcp::socket socket) {
    if (tls_ == nullptr) return beast::tcp_stream(std::move(socket));
    return TlsStream(beast::tcp_stream(std::move(socket)), *tls_);
  }
  beast::tcp_stream& lowest() {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) return *plain;
    return beast::get_lowest_layer(std::get<TlsStream>(stream_));
  }

  void forget() {
    if (!listed_) return;
    registry_->sessions.erase(*listed_);
    listed_.reset();
    --registry_->counters.open;
  }

  void read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    lowest().expires_after(registry_->limits.timeout);
    reading_ = true;
    std::visit(
        [&](auto& stream) {
          http::async_read(stream, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->reading_ = false;
                             if (ec) return self->shutdown();
                             self->request_ = self->parser_->release();
                             self->respond();
                           });
        },
        stream_);
  }

  void respond() {
    AdminResponse r =
        server_.dispatch(std::string(request_.method_string()), std::string(request_.target()),
                         std::string_view(request_[http::field::authorization].data(),
                                          request_[http::field::authorization].size()));
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), request_.version());
    res->set(http::field::server, "infergate");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    if (r.ask_for_token) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(request_.keep_alive());
    if (request_.method() != http::verb::head) res->body() = std::move(r.body);
    res->prepare_payload();
    lowest().expires_after(registry_->limits.timeout);
    std::visit(
        [&](auto& stream) {
          http::async_write(stream, *res,
                            [self = shared_from_this(), res](beast::error_code ec, size_t) {
                              if (ec || !res->keep_alive()) return self->shutdown();
                              self->read();
                            });
        },
        stream_);
  }

  void shutdown() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  std::shared_ptr<boost::asio::ssl::context> tls_;  // kept while the stream uses it
  std::variant<beast::tcp_stream, TlsStream> stream_;
  const AdminServer& server_;
  std::shared_ptr<Registry> registry_;
  std::optional<std::list<std::weak_ptr<Session>>::iterator> listed_;
  bool reading_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
};

std::shared_ptr<boost::asio::ssl::context> AdminServer::load_tls(const std::string& cert,
                                                                 const std::string& key,
                                                                 std::string& error) {
  auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  context->set_options(boost::asio::ssl::context::default_workarounds |
                       boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                       boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
  beast::error_code ec;
  context->use_certificate_chain_file(cert, ec);
  if (!ec) context->use_private_key_file(key, boost::asio::ssl::context::pem, ec);
  if (!ec && SSL_CTX_check_private_key(context->native_handle()) != 1) {
    error = "admin.tls: the key does not match the certificate";
    return nullptr;
  }
  if (ec) {
    error = "admin.tls: " + ec.message() + " (" + cert + ", " + key + ")";
    return nullptr;
  }
  return context;
}

AdminServer::AdminServer(boost::asio::io_context& io, const Limits& limits)
    : io_(io), acceptor_(io), retry_(io) {
  registry_->limits = limits;
}

AdminServer::~AdminServer() { close(); }

void AdminServer::set_limits(const Limits& limits) { registry_->limits = limits; }

AdminServer::Counters AdminServer::counters() const { return registry_->counters; }

bool AdminServer::displace_idle() {
  for (const std::weak_ptr<Session>& weak : registry_->sessions) {
    if (std::shared_ptr<Session> s = weak.lock(); s && s->idle()) {
      s->close();
      ++registry_->counters.displaced;
      return true;
    }
  }
  return false;
}

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
      if (registry_->counters.open >= registry_->limits.max_connections && !displace_idle()) {
        // Every held connection is busy: this one is closed as it goes out of scope.
        ++registry_->counters.refused;
        return accept();
      }
      std::make_shared<Session>(std::move(socket), *this, registry_)->start();
      return accept();
    }
    // Out of descriptors or similar: try again shortly instead of spinning.
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
  });
}

AdminResponse AdminServer::dispatch(const std::string& method, const std::string& target,
                                    std::string_view authorization) const {
  if (method != "GET" && method != "HEAD") {
    return AdminResponse{.status = 405, .body = "only GET and HEAD are served here\n"};
  }
  const std::string path = target.substr(0, target.find('?'));
  const std::vector<std::string>& tokens = registry_->limits.token_hashes;
  if (!tokens.empty() && path != "/healthz" && path != "/readyz") {
    constexpr std::string_view kBearer = "Bearer ";
    const bool known =
        authorization.starts_with(kBearer) &&
        std::find(tokens.begin(), tokens.end(),
                  auth::sha256_hex(authorization.substr(kBearer.size()))) != tokens.end();
    if (!known) {
      return AdminResponse{.status = 401,
                           .body = "a bearer token listed in admin.tokens_file is required\n",
                           .ask_for_token = true};
    }
  }
  auto it = routes_.find(path);
  if (it == routes_.end()) {
    std::string body = "not found; try:";
    for (const auto& [p, h] : routes_) body += " " + p;
    return AdminResponse{.status = 404, .body = body + "\n"};
  }
  return it->second();
}

}  // namespace infergate::gateway
