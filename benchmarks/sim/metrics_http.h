// A small HTTP/1.1 server (Boost.Beast) for GET /metrics, like Triton's metrics port.
// Other paths answer 404. Runs one io_context on its own thread; every read and write has a
// timeout, and a request body is capped, so a slow or hostile client holds little.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/host_port.h"

namespace infergate::sim {

class MetricsHttpServer {
 public:
  // Produces the /metrics body; called on the server's thread.
  using Renderer = std::function<std::string()>;

  // Binds and starts serving. On failure returns nullptr and sets *error.
  static std::unique_ptr<MetricsHttpServer> start(const config::HostPort& address,
                                                  Renderer renderer, std::string* error);
  ~MetricsHttpServer();  // stop()

  std::uint16_t port() const { return port_; }

  // Stops accepting, drops open connections and joins the thread. Main thread.
  void stop();

  struct Impl;

 private:
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl, std::uint16_t port);

  std::unique_ptr<Impl> impl_;
  std::uint16_t port_;
};

}  // namespace infergate::sim
