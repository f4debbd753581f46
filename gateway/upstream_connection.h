// An HTTP/2 connection to one backend (client side of nghttp2), part of a worker's
// pool for that backend. Streams may be submitted while it is still connecting; they
// go out once it is up. Worker thread only.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include "gateway/h2_connection.h"
#include "gateway/intrusive_list.h"
#include "gateway/proxy_stream.h"

namespace infergate::gateway {

class UpstreamPool;

class UpstreamConnection : public H2Connection {
 public:
  UpstreamConnection(Worker& worker, UpstreamPool& pool, std::uint32_t backend);
  ~UpstreamConnection() override;

  // Starts connecting (with the configured timeout).
  void connect();

  // Opens a stream for `stream`; false if the session refused it.
  bool submit(ProxyStream* stream);
  void reset_stream(std::int32_t id, std::uint32_t error_code);
  // Tells the session that `id` has request bytes (or its end) to send.
  void resume(std::int32_t id);
  // Credits `bytes` of response data on `id` back to the backend's windows.
  void consume(std::int32_t id, size_t bytes);
  void detach(ProxyStream* stream) { streams_.remove(stream); }

  std::uint32_t backend() const { return backend_; }
  size_t stream_count() const { return streams_.size(); }
  // True while new streams may go here (not closing, no GOAWAY received).
  bool accepting() const { return !closed() && !goaway_received_; }
  // How many concurrent streams this connection should carry.
  std::uint32_t stream_limit() const;

 protected:
  void on_teardown(std::string_view reason) override;

 private:
  friend struct UpstreamCallbacks;
  void on_connected();

  UpstreamPool& pool_;
  std::uint32_t backend_;
  boost::asio::steady_timer connect_timer_;
  bool connected_ = false;
  bool goaway_received_ = false;
  IntrusiveList<ProxyStream, &ProxyStream::up_hook> streams_;
};

}  // namespace infergate::gateway
