// The gRPC frontend's listening socket, on the control io_context. Each accepted
// connection goes to the worker with the fewest open connections, for its whole life.
// Past frontend.max_connections a new connection is closed at once, so that the process
// keeps file descriptors for the connections it serves and for its admin port.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/h2/tls.h"
#include "gateway/log_limiter.h"

namespace infergate::gateway {

class Worker;

class Listener {
 public:
  Listener(boost::asio::io_context& io, std::vector<Worker*> workers,
           std::uint32_t max_connections);

  // Binds and starts accepting. Returns an error message, or "" on success.
  std::string listen(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting (drain). Control thread.
  void close();
  // Connections accepted from now on speak TLS with `tls` (nullptr: plaintext); those
  // open keep what they began with. Control thread.
  void set_tls(std::shared_ptr<const TlsContext> tls) { tls_ = std::move(tls); }

 private:
  void accept();
  Worker* pick_worker();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::vector<Worker*> workers_;
  std::uint32_t max_connections_;
  // Accepted connections on their way to a worker (not yet counted by it).
  std::shared_ptr<std::atomic<std::int64_t>> handing_over_ =
      std::make_shared<std::atomic<std::int64_t>>(0);
  size_t next_ = 0;
  LogLimiter warnings_;  // accept failures (EMFILE comes in bursts)
  std::shared_ptr<const TlsContext> tls_;
};

}  // namespace infergate::gateway
