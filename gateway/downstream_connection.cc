#include "gateway/downstream_connection.h"

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
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, std::uint8_t, void* ud) {
    if (conn(ud)->closed() || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;  // request trailers carry nothing gRPC uses
    }
    if (ProxyStream* s = stream(session, frame->hd.stream_id)) s->on_request_header(name, value);
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    if (conn(ud)->closed()) return 0;
    ProxyStream* s = stream(session, frame->hd.stream_id);
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
    s->on_request_data({data, len});
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
    return static_cast<ssize_t>(
        std::min<std::int64_t>({window, std::int64_t{remote_max_frame}, 256 * 1024}));
  }

  static nghttp2_session_callbacks* make() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
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

DownstreamConnection::DownstreamConnection(Worker& worker, boost::asio::ip::tcp::socket socket)
    : H2Connection(worker, std::move(socket)) {
  boost::system::error_code ec;
  const auto remote = this->socket().remote_endpoint(ec);
  peer_ = ec ? std::string("unknown") : remote.address().to_string();
}

DownstreamConnection::~DownstreamConnection() = default;

nghttp2_data_provider DownstreamConnection::response_provider(ProxyStream* stream) {
  nghttp2_data_provider p;
  p.source.ptr = stream;
  p.read_callback = DownstreamCallbacks::read_response;
  return p;
}

void DownstreamConnection::open() {
  static nghttp2_session_callbacks* callbacks = DownstreamCallbacks::make();
  static nghttp2_option* option = [] {
    nghttp2_option* o = nullptr;
    nghttp2_option_new(&o);
    nghttp2_option_set_no_auto_window_update(o, 1);  // credit only what was forwarded
    return o;
  }();
  nghttp2_session* session = nullptr;
  nghttp2_session_server_new2(&session, callbacks, this, option);
  set_session(session);
  const DataPlaneOptions& o = worker().options();
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.stream_window_bytes},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 256 * 1024},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
  };
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(o.connection_window_bytes));
  start();
}

void DownstreamConnection::begin_drain() {
  if (draining_ || closed()) return;
  draining_ = true;
  nghttp2_submit_goaway(session(), NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session()), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  schedule_flush();
}

void DownstreamConnection::on_teardown(std::string_view) {
  while (ProxyStream* s = streams_.pop_front()) {
    nghttp2_session_set_stream_user_data(session(), s->downstream_id(), nullptr);
    s->on_downstream_closed(NGHTTP2_CANCEL);
  }
}

}  // namespace infergate::gateway
