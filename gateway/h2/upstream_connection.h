// An HTTP/2 connection to one backend (client side of nghttp2), part of a worker's
// pool for that backend. Streams may be submitted while it is still connecting; they
// go out once it is up. Worker thread only.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "gateway/h2/h2_connection.h"
#include "gateway/h2/intrusive_list.h"
#include "gateway/h2/tls.h"
#include "gateway/stream/proxy_stream.h"

namespace infergate::gateway {

class UpstreamPool;

class UpstreamConnection final : public H2Connection, public BackendLeg {
 public:
  UpstreamConnection(Worker& worker, UpstreamPool& pool, std::uint32_t backend);
  ~UpstreamConnection() override;

  // Starts connecting (with the configured timeout).
  void connect();

  // Opens a stream for `stream`; false if the session refused it.
  bool submit(BackendStream* stream);
  // BackendLeg: what an attempt's exchange asks of its backend stream.
  void reset_stream(std::int32_t id, std::uint32_t error_code) override;
  void resume(std::int32_t id) override;
  void consume(std::int32_t id, size_t bytes) override;
  void widen_window(std::int32_t id, std::uint32_t window) override;
  int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                SliceQueue* retain) override {
    return append_data_frame(framehd, length, body, retain);
  }
  void detach(BackendStream* stream) { streams_.remove(stream); }

  std::uint32_t backend() const { return backend_; }
  // Stream IDs past this retire the connection (2^31 - 1 is the last; margin for the
  // streams submitted before the next tick).
  static constexpr std::int32_t kLastStreamIds = 0x7fff0000;
  size_t stream_count() const { return streams_.size(); }
  // True while new streams may go here (not closing, no GOAWAY received, not retired).
  bool accepting() const { return !closed() && !goaway_received_ && !retired_; }
  // The worker's tick: keepalive PINGs and their deadline, and closing a retired
  // connection once its last stream is done. Worker thread.
  void on_tick(std::chrono::steady_clock::time_point now);
  // How many concurrent streams this connection should carry.
  std::uint32_t stream_limit() const;

 protected:
  void on_teardown(std::string_view reason) override;
  void on_tls_failed() override;
  void on_tls_ready() override;

 private:
  friend struct UpstreamCallbacks;
  void on_connected();

  UpstreamPool& pool_;
  std::uint32_t backend_;
  boost::asio::steady_timer connect_timer_;
  bool connected_ = false;
  bool handshaken_ = false;  // TLS: the handshake is done (plaintext: unused)
  bool goaway_received_ = false;
  // No new streams: it opened upstream.max_streams_per_connection, or its stream IDs are
  // nearly spent. It closes when its last stream ends.
  bool retired_ = false;
  std::uint64_t streams_opened_ = 0;
  // Keepalive: frames received (a change means the backend is alive), and the PING in
  // flight, if any.
  std::uint64_t frames_received_ = 0;
  std::uint64_t frames_seen_at_tick_ = 0;
  std::chrono::steady_clock::time_point quiet_since_{};
  bool ping_outstanding_ = false;
  std::chrono::steady_clock::time_point ping_sent_at_{};
  IntrusiveList<BackendStream, &BackendStream::up_hook> streams_;
};

}  // namespace infergate::gateway
