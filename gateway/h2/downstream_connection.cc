#include "gateway/h2/downstream_connection.h"

#include "gateway/logging.h"
#include "gateway/worker.h"

namespace infergate::gateway {

// nghttp2's C callbacks for the client leg, each relaying to the connection or stream.
struct DownstreamCallbacks {
  static DownstreamConnection* conn(void* user_data) {
    return static_cast<DownstreamConnection*>(user_data);
  }
  static ProxyStream* stream(nghttp2_session* session, std::int32_t id) {
    return static_cast<ProxyStream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    DownstreamConnection* c = conn(ud);
    if (c->closed() || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    auto* s = new ProxyStream(c->worker(), *c, frame->hd.stream_id);
    c->streams_.push_back(s);
    ++c->streams_opened_;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, std::uint8_t, void* ud) {
    DownstreamConnection* c = conn(ud);
    if (c->closed() || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;  // request trailers carry nothing gRPC uses
    }
    ProxyStream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr) return 0;
    // Past the limit the stream is refused; far past it (an HPACK bomb: a small block
    // that decodes to megabytes) nghttp2 must stop decoding, so the connection goes.
    if (s->on_request_header(name, value) > 4 * c->worker().options().max_header_bytes) {
      c->abuse(ProtocolError::kHeaderFlood, NGHTTP2_ENHANCE_YOUR_CALM,
               "a header block decodes past 4x frontend.max_header_bytes");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    DownstreamConnection* c = conn(ud);
    if (c->closed()) return 0;
    ProxyStream* s = frame->hd.stream_id != 0 ? stream(session, frame->hd.stream_id) : nullptr;
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) return 0;
        c->settings_seen_ = true;
        c->count_control(c->settings_, DownstreamConnection::kMaxSettingsPerSecond,
                         ProtocolError::kSettingsFlood);
        return 0;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
          c->count_control(c->pings_, DownstreamConnection::kMaxPingsPerSecond,
                           ProtocolError::kPingFlood);
        }
        return 0;
      case NGHTTP2_RST_STREAM:
        if (s != nullptr && !s->answered()) {
          c->count_control(c->premature_resets_, DownstreamConnection::kMaxPrematureResetsPerSecond,
                           ProtocolError::kRapidReset);
        }
        return 0;
      default:
        break;
    }
    if (s == nullptr) return 0;
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->on_request_headers_done(end_stream);
      } else if (end_stream) {
        s->on_request_end();
      }
    } else if (frame->hd.type == NGHTTP2_DATA && end_stream) {
      s->on_request_end();
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id,
                           const std::uint8_t* data, size_t len, void* ud) {
    ProxyStream* s = conn(ud)->closed() ? nullptr : stream(session, id);
    if (s == nullptr) {
      nghttp2_session_consume(session, id, len);  // nobody will read it: free the window
      return 0;
    }
    s->on_request_data({data, len}, conn(ud)->received_block(data, len));
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t error_code,
                             void* ud) {
    if (conn(ud)->closed()) return 0;
    if (ProxyStream* s = stream(session, id)) {
      nghttp2_session_set_stream_user_data(session, id, nullptr);
      s->on_downstream_closed(error_code);
    }
    return 0;
  }

  static ssize_t read_response(nghttp2_session*, std::int32_t, std::uint8_t*, size_t length,
                               std::uint32_t* flags, nghttp2_data_source* source, void*) {
    return static_cast<ProxyStream*>(source->ptr)->read_response(length, flags);
  }

  static int send_data(nghttp2_session*, nghttp2_frame*, const std::uint8_t* framehd, size_t length,
                       nghttp2_data_source* source, void*) {
    return static_cast<ProxyStream*>(source->ptr)->send_response_data(framehd, length);
  }

  static ssize_t frame_length(nghttp2_session* session, std::uint8_t, std::int32_t id,
                              std::int32_t session_window, std::int32_t stream_window,
                              std::uint32_t remote_max_frame, void*) {
    (void)session;
    (void)id;
    // Large frames mean fewer frame headers and iovecs; flow control still applies.
    const std::int64_t window = std::min<std::int64_t>(session_window, stream_window);
    return static_cast<ssize_t>(std::min<std::int64_t>(
        {window, std::int64_t{remote_max_frame}, std::int64_t{kMaxFrameBytes}}));
  }

  // A GOAWAY with an error that nghttp2 sent on its own (a flow-control or protocol
  // violation) is counted here; the gateway's own (abuse) were counted when made.
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    DownstreamConnection* c = conn(ud);
    if (frame->hd.type != NGHTTP2_GOAWAY || frame->goaway.error_code == NGHTTP2_NO_ERROR ||
        c->counted_) {
      return 0;
    }
    const ProtocolError why = frame->goaway.error_code == NGHTTP2_FLOW_CONTROL_ERROR
                                  ? ProtocolError::kFlowControl
                                  : ProtocolError::kProtocol;
    c->counted_ = true;
    c->worker().stats().count_protocol_error(why);
    c->warn(why, nghttp2_http2_strerror(frame->goaway.error_code));
    return 0;
  }

  static nghttp2_session_callbacks* make() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, frame_length);
    return cb;
  }
};

DownstreamConnection::DownstreamConnection(Worker& worker, boost::asio::ip::tcp::socket socket,
                                           std::shared_ptr<const TlsContext> tls)
    : H2Connection(worker, std::move(socket)), tls_context_(std::move(tls)) {
  boost::system::error_code ec;
  const auto remote = this->socket().remote_endpoint(ec);
  peer_ = ec ? std::string("unknown") : remote.address().to_string();
  opened_at_ = rate_window_start_ = std::chrono::steady_clock::now();
}

DownstreamConnection::~DownstreamConnection() = default;

void DownstreamConnection::send_headers(std::int32_t id, std::span<const nghttp2_nv> headers,
                                        bool body_follows) {
  nghttp2_data_provider provider;
  provider.source.ptr = nghttp2_session_get_stream_user_data(session(), id);
  provider.read_callback = DownstreamCallbacks::read_response;
  nghttp2_submit_response(session(), id, headers.data(), headers.size(),
                          body_follows ? &provider : nullptr);
}

void DownstreamConnection::send_trailers(std::int32_t id, std::span<const nghttp2_nv> trailers) {
  nghttp2_submit_trailer(session(), id, trailers.data(), trailers.size());
}

void DownstreamConnection::resume_body(std::int32_t id) {
  nghttp2_session_resume_data(session(), id);
}

void DownstreamConnection::reset(std::int32_t id, std::uint32_t error_code) {
  nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, id, error_code);
}

void DownstreamConnection::credit(std::int32_t id, size_t stream_bytes, size_t connection_bytes) {
  if (stream_bytes != 0) nghttp2_session_consume_stream(session(), id, stream_bytes);
  if (connection_bytes != 0) nghttp2_session_consume_connection(session(), connection_bytes);
}

void DownstreamConnection::widen_window(std::int32_t id, std::uint32_t window) {
  nghttp2_session_set_local_window_size(session(), NGHTTP2_FLAG_NONE, id,
                                        static_cast<std::int32_t>(window));
}

void DownstreamConnection::open() {
  static nghttp2_session_callbacks* callbacks = DownstreamCallbacks::make();
  static nghttp2_option* option = [] {
    nghttp2_option* o = nullptr;
    nghttp2_option_new(&o);
    nghttp2_option_set_no_auto_window_update(o, 1);  // credit only what was forwarded
    // nghttp2's own guards, behind the gateway's rate checks: ACKs it owes a peer that
    // does not read, and CONTINUATION frames per header block.
    nghttp2_option_set_max_outbound_ack(o, 1000);
    nghttp2_option_set_max_continuations(o, 8);
    // Rapid reset is the gateway's to judge (kMaxPrematureResetsPerSecond, answered with
    // ENHANCE_YOUR_CALM); nghttp2's own limit stays only as a looser backstop.
    nghttp2_option_set_stream_reset_rate_limit(o, 4 * kMaxPrematureResetsPerSecond,
                                               4 * kMaxPrematureResetsPerSecond);
    return o;
  }();
  nghttp2_session* session = nullptr;
  nghttp2_session_server_new3(&session, callbacks, this, option,
                              worker().chunks().nghttp2_allocator());
  set_session(session);
  const DataPlaneOptions& o = worker().options();
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.stream_window_bytes},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, kMaxFrameBytes},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
  };
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(o.connection_window_bytes));
  if (tls_context_) {
    SSL* ssl = SSL_new(tls_context_->get());
    if (ssl == nullptr || SSL_set_fd(ssl, socket().native_handle()) != 1) {
      if (ssl != nullptr) SSL_free(ssl);
      return close("cannot set up TLS for the connection");
    }
    SSL_set_accept_state(ssl);
    use_tls(ssl);
  }
  start();
}

void DownstreamConnection::on_tls_ready() { client_subject_ = peer_subject(tls()); }

void DownstreamConnection::on_tls_failed() {
  std::string detail;
  const TlsFailure why = classify_tls_failure(tls(), &detail);
  counted_ = true;  // not also a handshake timeout
  worker().stats().tls_failures[static_cast<size_t>(why)].add(1);
  std::uint64_t dropped = 0;
  if (worker().client_warnings().allow(std::chrono::steady_clock::now(), &dropped)) {
    gateway_log().warn("tls_handshake_failed peer={} reason={} detail=\"{}\" suppressed={}", peer_,
                       tls_failure_name(why), detail, dropped);
  }
}

void DownstreamConnection::begin_drain() {
  if (draining_ || closed()) return;
  draining_ = true;
  nghttp2_submit_goaway(session(), NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session()), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  schedule_flush();
}

void DownstreamConnection::on_tick(std::chrono::steady_clock::time_point now) {
  if (closed()) return;
  release_idle_receive_block();
  if (goodbye_at_) {
    if (now - *goodbye_at_ >= std::chrono::seconds(1)) close("GOAWAY sent; the peer lingered");
    return;
  }
  const DataPlaneOptions& o = worker().options();
  if (!settings_seen_ && now - opened_at_ >= o.handshake_timeout) {
    constexpr std::string_view what =
        "no client preface and SETTINGS within frontend.handshake_timeout";
    if (bytes_read() == 0) return expire(ProtocolError::kHandshakeTimeout, what);
    // It spoke, but not enough: our SETTINGS went unanswered (SETTINGS_TIMEOUT).
    return abuse(ProtocolError::kHandshakeTimeout, NGHTTP2_SETTINGS_TIMEOUT, what);
  }
  if (write_blocked() && now - write_blocked_since() >= o.stream_idle_timeout) {
    return expire(ProtocolError::kWriteStalled,
                  "the client took no bytes for frontend.stream_idle_timeout");
  }
  if (now - rate_window_start_ >= std::chrono::seconds(1)) {
    rate_window_start_ = now;
    pings_ = settings_ = premature_resets_ = 0;
  }
  if (!streams_.empty() || streams_opened_ != idle_mark_) {
    idle_ = false;
    idle_mark_ = streams_opened_;
  } else if (!idle_) {
    idle_ = true;
    idle_since_ = now;
  } else if (now - idle_since_ >= o.idle_timeout && !draining_) {
    // Politely: GOAWAY(NO_ERROR) tells the client to reconnect when it needs to.
    worker().stats().count_protocol_error(ProtocolError::kIdleTimeout);
    counted_ = true;
    begin_drain();
    return;
  }
  // Each stream's own deadlines; one may end (and leave the list) as it is checked.
  streams_.for_each([now](ProxyStream* s) { s->on_tick(now); });
}

bool DownstreamConnection::count_control(std::uint32_t& count, std::uint32_t max,
                                         ProtocolError why) {
  if (++count <= max) return true;
  abuse(why, NGHTTP2_ENHANCE_YOUR_CALM, "more than " + std::to_string(max) + " per second");
  return false;
}

void DownstreamConnection::warn(ProtocolError why, std::string_view what) {
  std::uint64_t dropped = 0;
  if (worker().client_warnings().allow(std::chrono::steady_clock::now(), &dropped)) {
    gateway_log().warn("client_closed peer={} reason={} detail=\"{}\" suppressed={}", peer(),
                       kProtocolErrorNames[static_cast<size_t>(why)], what, dropped);
  }
}

void DownstreamConnection::abuse(ProtocolError why, std::uint32_t error_code,
                                 std::string_view what) {
  if (closed() || counted_) return;
  counted_ = true;
  worker().stats().count_protocol_error(why);
  warn(why, what);
  // nghttp2 stops reading and closes once this GOAWAY is out; a client that does not
  // read it is closed by the write-stall deadline.
  nghttp2_session_terminate_session(session(), error_code);
  goodbye_at_ = std::chrono::steady_clock::now();
  schedule_flush();
}

bool DownstreamConnection::batch_flushes() const {
  return worker().downstream_connections() >= kBatchingConnections;
}

void DownstreamConnection::on_recv_error(int nghttp2_error) {
  switch (nghttp2_error) {
    case NGHTTP2_ERR_CALLBACK_FAILURE:
      return;  // the gateway's own refusal (abuse), already counted
    case NGHTTP2_ERR_FLOODED:
      // ACKs owed to a peer that sends PINGs or SETTINGS and does not read them.
      return abuse(pings_ >= settings_ ? ProtocolError::kPingFlood : ProtocolError::kSettingsFlood,
                   NGHTTP2_ENHANCE_YOUR_CALM,
                   "control frames flood (nghttp2's outbound ACK limit)");
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
      return abuse(ProtocolError::kHeaderFlood, NGHTTP2_ENHANCE_YOUR_CALM,
                   "CONTINUATION flood (more than 8 CONTINUATION frames in a header block)");
    default:
      return abuse(ProtocolError::kProtocol, NGHTTP2_PROTOCOL_ERROR,
                   nghttp2_strerror(nghttp2_error));
  }
}

void DownstreamConnection::expire(ProtocolError why, std::string_view what) {
  if (!counted_) {
    counted_ = true;
    worker().stats().count_protocol_error(why);
  }
  warn(why, what);
  close(what);
}

void DownstreamConnection::on_teardown(std::string_view) {
  while (ProxyStream* s = streams_.pop_front()) {
    nghttp2_session_set_stream_user_data(session(), s->downstream_id(), nullptr);
    s->on_downstream_closed(NGHTTP2_CANCEL);
  }
}

}  // namespace infergate::gateway
