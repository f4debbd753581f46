// The gRPC frontend's listening socket, on the control io_context. Each accepted
// connection goes to the worker with the fewest open connections, for its whole life.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <vector>

namespace infergate::gateway {

class Worker;

class Listener {
 public:
  Listener(boost::asio::io_context& io, std::vector<Worker*> workers);

  // Binds and starts accepting. Returns an error message, or "" on success.
  std::string listen(const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting (drain). Control thread.
  void close();

 private:
  void accept();
  Worker* pick_worker();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::vector<Worker*> workers_;
  size_t next_ = 0;
};

}  // namespace infergate::gateway
