// A client's HTTP/2 connection (server side of nghttp2). Creates a ProxyStream per
// request stream and relays the session's callbacks to it. Worker thread only.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "gateway/h2/h2_connection.h"
#include "gateway/h2/intrusive_list.h"
#include "gateway/h2/tls.h"
#include "gateway/stats.h"
#include "gateway/stream/proxy_stream.h"

namespace infergate::gateway {

class DownstreamConnection final : public H2Connection, public ClientLeg {
 public:
  // With `tls`, the connection speaks TLS (its handshake first).
  DownstreamConnection(Worker& worker, boost::asio::ip::tcp::socket socket,
                       std::shared_ptr<const TlsContext> tls = nullptr);
  ~DownstreamConnection() override;

  // Creates the session, queues SETTINGS and starts reading.
  void open();
  // Graceful shutdown: GOAWAY now, no new streams; closes when the last stream ends.
  void begin_drain();

  size_t stream_count() const { return streams_.size(); }

  // ClientLeg: what a stream's exchange asks of the client's connection.
  void send_headers(std::int32_t id, std::span<const nghttp2_nv> headers,
                    bool body_follows) override;
  void send_trailers(std::int32_t id, std::span<const nghttp2_nv> trailers) override;
  void resume_body(std::int32_t id) override;
  void reset(std::int32_t id, std::uint32_t error_code) override;
  void credit(std::int32_t id, size_t stream_bytes, size_t connection_bytes) override;
  void widen_window(std::int32_t id, std::uint32_t window) override;
  void flush_later() override { schedule_flush(); }
  int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body) override {
    return append_data_frame(framehd, length, body);
  }
  const std::string& peer() const override { return peer_; }
  const std::string& client_subject() const override { return client_subject_; }
  CredentialMemo* credential_memo() override { return &credential_memo_; }
  void detach(ProxyStream* stream) override { streams_.remove(stream); }

  // The worker's tick: the handshake, idle and write-stall deadlines, the control-frame
  // rate window, then each stream's own deadlines. Worker thread.
  void on_tick(std::chrono::steady_clock::time_point now);

  // Control frames a client may send per second before it is closed as a flood, and
  // streams it may reset before their answer began (rapid reset).
  static constexpr std::uint32_t kMaxPingsPerSecond = 1000;
  static constexpr std::uint32_t kMaxSettingsPerSecond = 100;
  static constexpr std::uint32_t kMaxPrematureResetsPerSecond = 2000;
  // From this many client connections on a worker, the flushes a client's read causes
  // wait for the end of the turn: many clients are then readable at once, and their
  // requests to one backend leave in one writev. With fewer, the wait costs more than
  // it saves (RESULTS.md), so each read flushes at once.
  static constexpr std::uint64_t kBatchingConnections = 64;

 protected:
  void on_teardown(std::string_view reason) override;
  void on_recv_error(int nghttp2_error) override;
  bool batch_flushes() const override;
  void on_tls_ready() override;
  void on_tls_failed() override;

 private:
  friend struct DownstreamCallbacks;

  // Closes the connection for abusing the protocol: GOAWAY with `error_code` (sent before
  // the socket closes), counted and logged at a limited rate. From nghttp2 callbacks too.
  void abuse(ProtocolError why, std::uint32_t error_code, std::string_view what);
  // Closes the connection for overstaying a bound (handshake, idle, write stall).
  void expire(ProtocolError why, std::string_view what);
  void warn(ProtocolError why, std::string_view what);
  // Counts a frame of a rate-limited kind; false (and the connection is closing) if the
  // client went past the rate.
  bool count_control(std::uint32_t& count, std::uint32_t max, ProtocolError why);

  IntrusiveList<ProxyStream, &ProxyStream::down_hook> streams_;
  bool draining_ = false;
  std::string peer_;
  std::shared_ptr<const TlsContext> tls_context_;
  std::string client_subject_;  // of a verified client certificate
  CredentialMemo credential_memo_;

  std::chrono::steady_clock::time_point opened_at_;
  bool settings_seen_ = false;  // the client's preface and first SETTINGS came
  bool counted_ = false;        // this connection's protocol error is already counted
  // When the gateway said GOAWAY for abuse or a timeout; closed regardless a second later.
  std::optional<std::chrono::steady_clock::time_point> goodbye_at_;
  // Idle: no stream open and none opened since idle_since_.
  std::uint64_t streams_opened_ = 0;
  std::uint64_t idle_mark_ = 0;
  bool idle_ = false;
  std::chrono::steady_clock::time_point idle_since_;
  // Control frames received in the current one-second window.
  std::chrono::steady_clock::time_point rate_window_start_;
  std::uint32_t pings_ = 0;
  std::uint32_t settings_ = 0;
  std::uint32_t premature_resets_ = 0;
};

}  // namespace infergate::gateway
