#include "health/http_fetch.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <variant>

namespace infergate::health {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string configure_client_tls(asio::ssl::context& context, const std::string& ca_file) {
  context.set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                      asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3);
  context.set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  if (ca_file.empty()) {
    context.set_default_verify_paths(ec);
  } else {
    context.load_verify_file(ca_file, ec);
  }
  return ec ? "the CAs (" + ca_file + ") do not load: " + ec.message() : "";
}

std::string HttpEndpoint::url() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port) + target;
}

struct HttpFetch::Impl {
  Impl(asio::io_context& io, HttpEndpoint e, std::chrono::nanoseconds t, std::uint64_t limit,
       Done d)
      : endpoint(std::move(e)),
        timeout(t),
        body_limit(limit),
        done(std::move(d)),
        resolver(io),
        tls_context(asio::ssl::context::tls_client),
        stream(make_stream(io)),
        deadline(io) {}

  using TlsStream = beast::ssl_stream<beast::tcp_stream>;
  std::variant<beast::tcp_stream, TlsStream> make_stream(asio::io_context& io) {
    if (!endpoint.tls) return beast::tcp_stream(io);
    setup_error = configure_client_tls(tls_context, endpoint.ca_file);
    return TlsStream(io, tls_context);
  }
  beast::tcp_stream& tcp() {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream)) return *plain;
    return beast::get_lowest_layer(std::get<TlsStream>(stream));
  }

  HttpEndpoint endpoint;
  std::chrono::nanoseconds timeout;
  std::uint64_t body_limit;
  Done done;
  tcp::resolver resolver;
  std::string setup_error;
  asio::ssl::context tls_context;
  std::variant<beast::tcp_stream, TlsStream> stream;
  asio::steady_timer deadline;
  tcp::resolver::results_type addresses;
  http::request<http::empty_body> request;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  bool finished = false;
};

namespace {

std::string timeout_text(std::chrono::nanoseconds t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

}  // namespace

std::shared_ptr<HttpFetch> HttpFetch::start(asio::io_context& io, HttpEndpoint endpoint,
                                            std::chrono::nanoseconds timeout,
                                            std::uint64_t body_limit_bytes, Done done) {
  std::shared_ptr<HttpFetch> fetch(new HttpFetch(
      std::make_unique<Impl>(io, std::move(endpoint), timeout, body_limit_bytes, std::move(done))));
  fetch->run();
  return fetch;
}

HttpFetch::HttpFetch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpFetch::~HttpFetch() = default;

void HttpFetch::run() {
  Impl& s = *impl_;
  s.deadline.expires_after(s.timeout);
  s.deadline.async_wait([self = shared_from_this()](const beast::error_code& ec) {
    if (!ec) self->finish({.error = "timed out after " + timeout_text(self->impl_->timeout)});
  });
  if (!s.setup_error.empty()) return finish({.error = s.setup_error});
  s.resolver.async_resolve(
      s.endpoint.host, std::to_string(s.endpoint.port), tcp::resolver::numeric_service,
      [self = shared_from_this()](const beast::error_code& ec, tcp::resolver::results_type r) {
        if (self->impl_->finished) return;
        if (ec) return self->finish({.error = "resolve: " + ec.message()});
        self->impl_->addresses = std::move(r);
        self->connect();
      });
}

void HttpFetch::connect() {
  impl_->tcp().async_connect(impl_->addresses,
                             [self = shared_from_this()](const beast::error_code& ec, const auto&) {
                               if (self->impl_->finished) return;
                               if (ec) return self->finish({.error = "connect: " + ec.message()});
                               if (self->impl_->endpoint.tls) return self->handshake();
                               self->send();
                             });
}

void HttpFetch::handshake() {
  Impl& s = *impl_;
  auto& tls = std::get<Impl::TlsStream>(s.stream);
  // SNI, and the certificate must name the host.
  SSL_set_tlsext_host_name(tls.native_handle(), s.endpoint.host.c_str());
  tls.set_verify_callback(asio::ssl::host_name_verification(s.endpoint.host));
  tls.async_handshake(asio::ssl::stream_base::client,
                      [self = shared_from_this()](const beast::error_code& ec) {
                        if (self->impl_->finished) return;
                        if (ec) return self->finish({.error = "tls: " + ec.message()});
                        self->send();
                      });
}

void HttpFetch::send() {
  Impl& s = *impl_;
  s.request = {http::verb::get, s.endpoint.target, 11};
  const bool v6 = s.endpoint.host.find(':') != std::string::npos;
  s.request.set(http::field::host, (v6 ? "[" + s.endpoint.host + "]" : s.endpoint.host) + ":" +
                                       std::to_string(s.endpoint.port));
  s.request.set(http::field::user_agent, "infergate");
  s.request.set(http::field::accept, "text/plain");
  s.request.set(http::field::connection, "close");
  std::visit(
      [&](auto& stream) {
        http::async_write(stream, s.request,
                          [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                            if (self->impl_->finished) return;
                            if (ec) return self->finish({.error = "send: " + ec.message()});
                            self->receive();
                          });
      },
      s.stream);
}

void HttpFetch::receive() {
  Impl& s = *impl_;
  s.parser.emplace();
  s.parser->body_limit(s.body_limit);
  // The header first: Beast 1.74 enforces body_limit on chunked and read-to-EOF bodies
  // but, reading eagerly, lets a Content-Length beyond it through; so that is checked
  // here, before any of the body is read.
  std::visit(
      [&](auto& stream) {
        http::async_read_header(
            stream, s.buffer, *s.parser,
            [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
              Impl& s = *self->impl_;
              if (s.finished) return;
              const auto length = ec ? boost::none : s.parser->content_length();
              if (ec == http::error::body_limit || (length && *length > s.body_limit)) {
                return self->finish(
                    {.error = "the answer is over " + std::to_string(s.body_limit) + " bytes"});
              }
              if (ec) return self->finish({.error = "receive: " + ec.message()});
              self->receive_body();
            });
      },
      s.stream);
}

void HttpFetch::receive_body() {
  std::visit(
      [&](auto& stream) {
        http::async_read(
            stream, impl_->buffer, *impl_->parser,
            [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
              Impl& s = *self->impl_;
              if (s.finished) return;
              if (ec == http::error::body_limit) {
                return self->finish(
                    {.error = "the answer is over " + std::to_string(s.body_limit) + " bytes"});
              }
              if (ec) return self->finish({.error = "receive: " + ec.message()});
              http::response<http::string_body> response = s.parser->release();
              self->finish({.ok = true,
                            .status = static_cast<int>(response.result_int()),
                            .body = std::move(response.body())});
            });
      },
      impl_->stream);
}

void HttpFetch::finish(FetchResult result) {
  Impl& s = *impl_;
  if (s.finished) return;
  s.finished = true;
  s.deadline.cancel();
  s.resolver.cancel();
  beast::error_code ignored;
  s.tcp().socket().close(ignored);
  Done done = std::move(s.done);
  if (done) done(std::move(result));
}

void HttpFetch::cancel() {
  impl_->done = nullptr;
  finish({});
}

}  // namespace infergate::health
