#include "gateway/h2/listener.h"

#include "gateway/logging.h"

#include <boost/asio/post.hpp>

#include "gateway/worker.h"

namespace infergate::gateway {

using tcp = boost::asio::ip::tcp;

Listener::Listener(boost::asio::io_context& io, std::vector<Worker*> workers,
                   std::uint32_t max_connections)
    : io_(io),
      acceptor_(io),
      retry_(io),
      workers_(std::move(workers)),
      max_connections_(max_connections) {}

std::string Listener::listen(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) return ec.message();
  accept();
  return "";
}

tcp::endpoint Listener::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Listener::close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

Worker* Listener::pick_worker() {
  // Fewest connections; ties go round-robin so a burst spreads evenly.
  Worker* best = nullptr;
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[(next_ + i) % workers_.size()];
    if (best == nullptr || w->downstream_connections() < best->downstream_connections()) best = w;
  }
  ++next_;
  return best;
}

void Listener::accept() {
  Worker* worker = pick_worker();
  acceptor_.async_accept(
      worker->io(), [this, worker](boost::system::error_code ec, tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
          std::uint64_t dropped = 0;
          if (warnings_.allow(std::chrono::steady_clock::now(), &dropped)) {
            gateway_log().warn("accept_failed error=\"{}\" suppressed={}", ec.message(), dropped);
          }
          retry_.expires_after(std::chrono::milliseconds(100));
          retry_.async_wait([this](boost::system::error_code wait_ec) {
            if (!wait_ec) accept();
          });
          return;
        }
        std::uint64_t open = static_cast<std::uint64_t>(
            std::max<std::int64_t>(0, handing_over_->load(std::memory_order_relaxed)));
        for (const Worker* w : workers_) open += w->downstream_connections();
        if (open >= max_connections_) {
          // Closed at once (the socket goes with the handler); counted on its worker.
          boost::asio::post(worker->io(), [worker] {
            worker->stats().count_protocol_error(ProtocolError::kConnectionLimit);
          });
          std::uint64_t dropped = 0;
          if (warnings_.allow(std::chrono::steady_clock::now(), &dropped)) {
            gateway_log().warn("connection_refused open={} limit={} suppressed={}", open,
                               max_connections_, dropped);
          }
          return accept();
        }
        handing_over_->fetch_add(1, std::memory_order_relaxed);
        boost::asio::post(worker->io(), [worker, s = std::move(socket), handing = handing_over_,
                                         tls = tls_]() mutable {
          worker->adopt(std::move(s), std::move(tls));
          handing->fetch_sub(1, std::memory_order_relaxed);
        });
        accept();
      });
}

}  // namespace infergate::gateway
