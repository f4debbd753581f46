#include "gateway/h2/upstream_connection.h"

#include <algorithm>

#include <unistd.h>

#include <boost/asio/post.hpp>

#include "gateway/h2/upstream_pool.h"
#include "gateway/logging.h"
#include "gateway/worker.h"

namespace infergate::gateway {

// nghttp2's C callbacks for the backend leg, each relaying to the connection or stream.
struct UpstreamCallbacks {
  static UpstreamConnection* conn(void* user_data) {
    return static_cast<UpstreamConnection*>(user_data);
  }
  static BackendStream* stream(nghttp2_session* session, std::int32_t id) {
    return static_cast<BackendStream*>(nghttp2_session_get_stream_user_data(session, id));
  }
  static bool is_trailers(const nghttp2_frame* frame) {
    return frame->headers.cat == NGHTTP2_HCAT_HEADERS;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, std::uint8_t, void* ud) {
    UpstreamConnection* c = conn(ud);
    if (c->closed() || frame->hd.type != NGHTTP2_HEADERS) return 0;
    BackendStream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr) return 0;
    const std::uint64_t bytes = s->on_response_header(name, value, is_trailers(frame));
    const std::uint64_t limit = c->worker().options().max_header_bytes;
    // A backend's headers are bounded like a client's: past the limit the stream is
    // reset (the client gets UNAVAILABLE); far past it (an HPACK bomb) nghttp2 must stop
    // decoding, so the connection goes.
    if (bytes > 4 * limit) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (bytes > limit) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    UpstreamConnection* c = conn(ud);
    if (c->closed()) return 0;
    ++c->frames_received_;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
      c->ping_outstanding_ = false;
      return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      // Streams above last_stream_id are closed by nghttp2 as refused; the rest finish.
      c->goaway_received_ = true;
      return 0;
    }
    BackendStream* s = frame->hd.stream_id != 0 ? stream(session, frame->hd.stream_id) : nullptr;
    if (s == nullptr) return 0;
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      s->on_response_headers_done(end_stream, is_trailers(frame));
    } else if (frame->hd.type == NGHTTP2_DATA && end_stream) {
      s->on_response_end();
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id,
                           const std::uint8_t* data, size_t len, void* ud) {
    BackendStream* s = conn(ud)->closed() ? nullptr : stream(session, id);
    if (s == nullptr) {
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    s->on_response_data({data, len}, conn(ud)->received_block(data, len));
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t error_code,
                             void* ud) {
    UpstreamConnection* c = conn(ud);
    if (c->closed()) return 0;
    if (BackendStream* s = stream(session, id)) {
      nghttp2_session_set_stream_user_data(session, id, nullptr);
      c->streams_.remove(s);
      s->on_upstream_closed(error_code);
    }
    return 0;
  }

  static ssize_t read_request(nghttp2_session*, std::int32_t, std::uint8_t*, size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) {
    return static_cast<BackendStream*>(source->ptr)->read_request(length, flags);
  }

  static int send_data(nghttp2_session*, nghttp2_frame*, const std::uint8_t* framehd, size_t length,
                       nghttp2_data_source* source, void*) {
    return static_cast<BackendStream*>(source->ptr)->send_request_data(framehd, length);
  }

  static ssize_t frame_length(nghttp2_session*, std::uint8_t, std::int32_t,
                              std::int32_t session_window, std::int32_t stream_window,
                              std::uint32_t remote_max_frame, void*) {
    const std::int64_t window = std::min<std::int64_t>(session_window, stream_window);
    return static_cast<ssize_t>(std::min<std::int64_t>(
        {window, std::int64_t{remote_max_frame}, std::int64_t{kMaxFrameBytes}}));
  }

  static nghttp2_session_callbacks* make() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, frame_length);
    return cb;
  }
};

UpstreamConnection::UpstreamConnection(Worker& worker, UpstreamPool& pool, std::uint32_t backend)
    : H2Connection(worker, boost::asio::ip::tcp::socket(worker.io())),
      pool_(pool),
      backend_(backend),
      connect_timer_(worker.io()) {
  static nghttp2_session_callbacks* callbacks = UpstreamCallbacks::make();
  static nghttp2_option* option = [] {
    nghttp2_option* o = nullptr;
    nghttp2_option_new(&o);
    nghttp2_option_set_no_auto_window_update(o, 1);
    return o;
  }();
  nghttp2_session* session = nullptr;
  nghttp2_session_client_new3(&session, callbacks, this, option,
                              worker.chunks().nghttp2_allocator());
  set_session(session);
  const DataPlaneOptions& o = worker.options();
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.stream_window_bytes},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, kMaxFrameBytes},
  };
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // Streams of many clients share this connection: its window must hold every stream's
  // full window, or answers stalled behind one client that does not read would block
  // the others' (memory stays bounded per stream, and by limits.max_buffered_bytes).
  const std::uint64_t shared =
      std::max<std::uint64_t>(o.connection_window_bytes, std::uint64_t{o.stream_window_bytes} *
                                                             o.upstream_streams_per_connection);
  nghttp2_session_set_local_window_size(
      session, NGHTTP2_FLAG_NONE, 0,
      static_cast<std::int32_t>(std::min<std::uint64_t>(shared, 0x7fffffff)));
}

UpstreamConnection::~UpstreamConnection() = default;

void UpstreamConnection::connect() {
  const BackendTarget& target = worker().target(backend_);
  if (!target.tls_error.empty()) {
    hold();
    boost::asio::post(worker().io(), [this] {
      if (release()) close(worker().target(backend_).tls_error);
    });
    return;
  }
  if (!target.resolved) {
    hold();
    // Closed from a fresh handler so the caller's stream is attached first.
    boost::asio::post(worker().io(), [this] {
      if (release()) {
        const BackendTarget& t = worker().target(backend_);
        close("cannot resolve " + t.address + ": " + t.resolve_error);
      }
    });
    return;
  }
  connect_timer_.expires_after(worker().options().connect_timeout);
  hold();
  connect_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!release()) return;
    if (!ec && !connected_) close("connect timed out");
  });
  hold();
  socket().async_connect(target.endpoint, [this](const boost::system::error_code& ec) {
    if (!release()) return;
    connect_timer_.cancel();
    if (ec) {
      worker().stats().upstream_connect_failures_total.add(1);
      std::uint64_t dropped = 0;
      if (worker().backend_warnings().allow(std::chrono::steady_clock::now(), &dropped)) {
        const BackendTarget& t = worker().target(backend_);
        gateway_log().warn(
            "backend_connect_failed backend={} address={} worker={} error=\"{}\" "
            "suppressed={}",
            t.name, t.address, worker().index(), ec.message(), dropped);
      }
      if (const auto& failed = worker().shared().connect_failed) failed();
      return close("cannot connect: " + ec.message());
    }
    on_connected();
  });
}

void UpstreamConnection::on_connected() {
  connected_ = true;
  const BackendTarget& target = worker().target(backend_);
  quiet_since_ = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  socket().set_option(boost::asio::ip::tcp::no_delay(true), ec);  // not settable before connect
  // The connect's wait left the socket registered for writability for good: every later
  // read wait's re-arm would then report a writable socket nobody waits on (an event, and
  // often a wake-up of its own, per read). Registered afresh, it reports reads only.
  const boost::asio::ip::tcp protocol = target.endpoint.protocol();
  const int fd = socket().release(ec);
  if (ec) return close("cannot take over the connected socket: " + ec.message());
  socket().assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return close("cannot register the connected socket: " + ec.message());
  }
  socket().non_blocking(true, ec);
  worker().stats().upstream_connections_total.add(1);
  if (target.tls) {
    SSL* ssl = SSL_new(target.tls->get());
    if (ssl == nullptr || SSL_set_fd(ssl, socket().native_handle()) != 1 ||
        !set_client_name(ssl, target.tls_name)) {
      if (ssl != nullptr) SSL_free(ssl);
      return close("cannot set up TLS to " + target.address);
    }
    SSL_set_connect_state(ssl);
    use_tls(ssl);
    // The handshake gets upstream.connect_timeout of its own: a backend that accepts and
    // then says nothing must not hold the requests waiting for this connection.
    connect_timer_.expires_after(worker().options().connect_timeout);
    hold();
    connect_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!release()) return;
      if (!ec && !handshaken_) {
        worker().stats().upstream_connect_failures_total.add(1);
        close("TLS handshake timed out");
      }
    });
  }
  start();
}

void UpstreamConnection::on_tls_ready() {
  handshaken_ = true;
  connect_timer_.cancel();
}

void UpstreamConnection::on_tls_failed() {
  std::uint64_t dropped = 0;
  const std::string why = tls_error_text(tls());
  if (worker().backend_warnings().allow(std::chrono::steady_clock::now(), &dropped)) {
    const BackendTarget& t = worker().target(backend_);
    gateway_log().warn(
        "backend_tls_failed backend={} address={} name={} worker={} error=\"{}\" suppressed={}",
        t.name, t.address, t.tls_name, worker().index(), why, dropped);
  }
}

std::uint32_t UpstreamConnection::stream_limit() const {
  const std::uint32_t remote =
      nghttp2_session_get_remote_settings(session(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return std::min(remote, worker().options().upstream_streams_per_connection);
}

bool UpstreamConnection::submit(BackendStream* stream) {
  std::vector<nghttp2_nv>& headers = nv_scratch();
  stream->append_upstream_headers(headers);
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = UpstreamCallbacks::read_request;
  const std::int32_t id =
      nghttp2_submit_request(session(), nullptr, headers.data(), headers.size(), &provider, stream);
  if (id < 0) {
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) retired_ = true;
    return false;
  }
  // Retired before the stream IDs run out (2^31 - 1, odd IDs only), or after the
  // configured number of streams; the pool opens a fresh connection for the next one.
  if (++streams_opened_ >= worker().options().upstream_max_streams_per_connection ||
      nghttp2_session_get_next_stream_id(session()) >= kLastStreamIds) {
    retired_ = true;
  }
  streams_.push_back(stream);
  stream->set_upstream(this, id);
  schedule_flush();
  return true;
}

void UpstreamConnection::reset_stream(std::int32_t id, std::uint32_t error_code) {
  if (closed()) return;
  nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, id, error_code);
  schedule_flush();
}

void UpstreamConnection::resume(std::int32_t id) {
  if (closed()) return;
  nghttp2_session_resume_data(session(), id);
  schedule_flush();
}

void UpstreamConnection::widen_window(std::int32_t id, std::uint32_t window) {
  if (closed()) return;
  nghttp2_session_set_local_window_size(session(), NGHTTP2_FLAG_NONE, id,
                                        static_cast<std::int32_t>(window));
  schedule_flush();
}

void UpstreamConnection::consume(std::int32_t id, size_t bytes) {
  if (closed() || bytes == 0) return;
  nghttp2_session_consume(session(), id, bytes);
  schedule_flush();
}

void UpstreamConnection::on_tick(std::chrono::steady_clock::time_point now) {
  if (closed() || !connected_) return;
  release_idle_receive_block();
  if ((retired_ || goaway_received_) && streams_.empty()) return close("retired");
  const DataPlaneOptions& o = worker().options();
  if (ping_outstanding_) {
    if (now - ping_sent_at_ >= o.keepalive_timeout) {
      std::uint64_t dropped = 0;
      if (worker().backend_warnings().allow(now, &dropped)) {
        const BackendTarget& t = worker().target(backend_);
        gateway_log().warn(
            "backend_keepalive_timeout backend={} address={} worker={} streams={} "
            "suppressed={}",
            t.name, t.address, worker().index(), streams_.size(), dropped);
      }
      return close("no PING answer within upstream.keepalive_timeout");
    }
    return;
  }
  if (frames_received_ != frames_seen_at_tick_) {
    frames_seen_at_tick_ = frames_received_;
    quiet_since_ = now;
  } else if (now - quiet_since_ >= o.keepalive_interval) {
    // Quiet for an interval: a PING tells a live backend from a dead or frozen one
    // before a request has to find out.
    nghttp2_submit_ping(session(), NGHTTP2_FLAG_NONE, nullptr);
    ping_outstanding_ = true;
    ping_sent_at_ = now;
    schedule_flush();
  }
}

void UpstreamConnection::on_teardown(std::string_view reason) {
  connect_timer_.cancel();
  pool_.forget(this);
  const std::string why(reason);
  while (BackendStream* s = streams_.pop_front()) {
    nghttp2_session_set_stream_user_data(session(), s->upstream_id(), nullptr);
    s->on_upstream_lost(why);
  }
}

}  // namespace infergate::gateway
