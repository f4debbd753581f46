// Fakes for unit-testing an exchange (ProxyStream) without sockets: a client leg and
// backend legs that record what the exchange asks of them and replay what nghttp2 would
// do (pull bodies, deliver closes), a clock the test moves, and header fields made the
// way nghttp2 hands them to callbacks (reference-counted buffers).
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/h2/byte_queue.h"
#include "gateway/stream/legs.h"
#include "gateway/stream/proxy_stream.h"

namespace infergate::gateway::fakes {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Reference-counted name/value buffers, as a session's header callback receives them:
// a real client session's HEADERS, decoded by a real server session, all in memory.
// Buffers stay valid while this object lives.
class HeaderFields {
 public:
  HeaderFields();
  ~HeaderFields();
  HeaderFields(const HeaderFields&) = delete;
  HeaderFields& operator=(const HeaderFields&) = delete;

  std::vector<std::pair<nghttp2_rcbuf*, nghttp2_rcbuf*>> make(const Fields& fields);

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame*, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, std::uint8_t, void* user_data);

  nghttp2_session* client_ = nullptr;
  nghttp2_session* server_ = nullptr;
  std::vector<std::pair<nghttp2_rcbuf*, nghttp2_rcbuf*>> current_;
  std::vector<nghttp2_rcbuf*> kept_;
};

// The client's connection, for one exchange.
class FakeClient final : public ClientLeg {
 public:
  explicit FakeClient(BlockPool& blocks) : scratch_(blocks) {}

  void send_headers(std::int32_t, std::span<const nghttp2_nv> headers, bool body_follows) override;
  void send_trailers(std::int32_t, std::span<const nghttp2_nv> trailers) override;
  void resume_body(std::int32_t) override { ++resumes; }
  void reset(std::int32_t, std::uint32_t error_code) override { reset_code = error_code; }
  void widen_window(std::int32_t, std::uint32_t window) override { widened_to = window; }
  void credit(std::int32_t, size_t stream_bytes, size_t connection_bytes) override {
    credited += stream_bytes;
    connection_credited += connection_bytes;
  }
  void flush_later() override {}
  int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body) override;
  const std::string& peer() const override { return peer_; }
  void detach(ProxyStream*) override { detached = true; }

  // What nghttp2 does for a resumed body: reads the exchange's answer until it defers or
  // ends. True once the answer has ended (its EOF read).
  bool pull(ProxyStream& exchange);

  // The first value of `name` in the answer's headers (or trailers), or "".
  std::string header(const std::string& name) const;
  std::string trailer(const std::string& name) const;
  // The answer's grpc-status, from its trailers or (Trailers-Only) its headers.
  std::string grpc_status() const;
  std::string grpc_message() const;

  int headers_sent = 0;
  Fields headers;
  bool body_follows = false;
  Fields trailers;
  std::string body;
  bool ended = false;
  std::optional<std::uint32_t> reset_code;
  std::uint64_t credited = 0;             // stream level
  std::uint64_t connection_credited = 0;  // connection level
  std::uint32_t widened_to = 0;           // the last widen_window()
  int resumes = 0;
  bool detached = false;

 private:
  std::string peer_ = "192.0.2.7";
  OutputBuffer scratch_;
};

// Every backend's connections: opens streams for attempts and records them.
class FakeBackends final : public BackendLeg, public BackendConnector {
 public:
  struct Stream {
    std::uint32_t backend_id = 0;
    BackendStream* exchange = nullptr;
    Fields headers;
    std::string body;
    bool request_ended = false;
    std::optional<std::uint32_t> reset_code;
    std::uint64_t credited = 0;
    std::uint32_t widened_to = 0;  // the last widen_window()
    bool closed = false;
  };

  explicit FakeBackends(BlockPool& blocks) : scratch_(blocks) {}

  bool open(std::uint32_t backend_id, BackendStream& exchange) override;
  void resume(std::int32_t) override { ++resumes; }
  void reset_stream(std::int32_t id, std::uint32_t error_code) override;
  void consume(std::int32_t id, size_t bytes) override { streams.at(id).credited += bytes; }
  void widen_window(std::int32_t id, std::uint32_t window) override {
    streams.at(id).widened_to = window;
  }
  int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                SliceQueue* retain) override;

  // What nghttp2 does for a resumed request: reads the exchange's request until it
  // defers or ends.
  void pull(std::int32_t id);
  // The backend answers on stream `id`.
  void answer_headers(HeaderFields& make, std::int32_t id, const Fields& fields, bool end_stream);
  void answer_data(std::int32_t id, const std::string& bytes);
  void answer_trailers(HeaderFields& make, std::int32_t id, const Fields& fields);
  // The stream closes (after an answer, a reset from either side, with `error_code`).
  void close(std::int32_t id, std::uint32_t error_code);
  // The connection under stream `id` is lost.
  void lose(std::int32_t id, std::string_view reason);
  // Streams the exchange reset: nghttp2 closes them with that code.
  void deliver_resets();

  // The latest stream opened (-1 if none).
  std::int32_t last() const { return streams.empty() ? -1 : streams.rbegin()->first; }

  bool refuse = false;  // open() fails (no connection takes a stream)
  std::map<std::int32_t, Stream> streams;
  int resumes = 0;

 private:
  std::int32_t next_id_ = 1;
  std::int32_t pulling_ = -1;
  OutputBuffer scratch_;
};

// The first value of `name` in `fields`, or "".
std::string field(const Fields& fields, const std::string& name);

// The gRPC message framing of `body` (uncompressed).
std::string grpc_frame(const std::string& body);

}  // namespace infergate::gateway::fakes
