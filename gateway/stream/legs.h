// What an exchange (ProxyStream) needs of the two HTTP/2 connections it bridges, as small
// interfaces: the client's connection (ClientLeg), the backend connection that carries
// the current attempt (BackendLeg), and what opens a backend stream (BackendConnector).
// The data plane implements them with DownstreamConnection, UpstreamConnection and the
// worker's pools; unit tests with fakes that record what the exchange asked for, without
// sockets or nghttp2 sessions. BackendStream is the other direction: what a backend
// connection reports to the owner of one of its streams (a ProxyStream's attempt, or one
// backend stream of a ModelStreamInfer routed per message). Every method: the worker's
// thread only.
#pragma once

#include <nghttp2/nghttp2.h>

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.h"
#include "gateway/h2/intrusive_list.h"

namespace infergate::gateway {

class ByteQueue;
class SliceQueue;
class ProxyStream;
class BackendLeg;

// nghttp2's data-provider read for a request body of which `queued` bytes wait: up to
// `length` of them
// (sent by reference: NO_COPY), EOF once `ended` and all of it is out, DEFERRED while
// nothing waits.
inline ssize_t read_queued_body(size_t queued, bool ended, size_t length,
                                std::uint32_t* data_flags) {
  const size_t n = length < queued ? length : queued;
  if (n == 0 && !ended) return NGHTTP2_ERR_DEFERRED;
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (ended && n == queued) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

// The owner of one backend stream, as the backend connection sees it.
class BackendStream {
 public:
  ListHook up_hook;  // on the backend connection's list of its streams

  // The request's headers as they go to the backend.
  virtual void append_upstream_headers(std::vector<nghttp2_nv>& out) const = 0;
  // The connection opened the stream: `up` carries it as stream `id`.
  virtual void set_upstream(BackendLeg* up, std::int32_t id) = 0;
  virtual std::int32_t upstream_id() const = 0;
  // Request DATA: nghttp2's data-provider read and send callbacks.
  virtual ssize_t read_request(size_t length, std::uint32_t* data_flags) = 0;
  virtual int send_request_data(const std::uint8_t* framehd, size_t length) = 0;
  // The answer. on_response_header returns the decoded bytes of its headers and trailers
  // so far (past frontend.max_header_bytes the connection fails the stream).
  virtual std::uint64_t on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                                           bool trailers) = 0;
  virtual void on_response_headers_done(bool end_stream, bool trailers) = 0;
  // `block` holds the bytes when they lie in what the connection read (see
  // H2Connection::received_block), else null.
  virtual void on_response_data(std::span<const std::uint8_t> data, const BlockRef* block) = 0;
  virtual void on_response_end() = 0;
  // The stream closed (RST_STREAM or both ends done), or its connection failed or closed
  // under it; either is the last call.
  virtual void on_upstream_closed(std::uint32_t error_code) = 0;
  virtual void on_upstream_lost(std::string_view reason) = 0;

 protected:
  ~BackendStream() = default;
};

// The client's side of an exchange: one stream `id` of the client's connection.
class ClientLeg {
 public:
  // The answer's HEADERS. With `body_follows`, DATA follows from the exchange's
  // read_response()/send_response_data() (the leg resumes them on resume_body());
  // without, the HEADERS end the stream (Trailers-Only, or an HTTP error).
  virtual void send_headers(std::int32_t id, std::span<const nghttp2_nv> headers,
                            bool body_follows) = 0;
  // Trailers that end the stream after the body (called from read_response).
  virtual void send_trailers(std::int32_t id, std::span<const nghttp2_nv> trailers) = 0;
  // The exchange has more of the answer (or its end) to send.
  virtual void resume_body(std::int32_t id) = 0;
  // RST_STREAM with `error_code`.
  virtual void reset(std::int32_t id, std::uint32_t error_code) = 0;
  // Request bytes done with: the stream's window may grow by `stream_bytes`, the
  // connection's by `connection_bytes` (the same bytes, or earlier: see
  // ProxyStream::release_connection_window).
  virtual void credit(std::int32_t id, size_t stream_bytes, size_t connection_bytes) = 0;
  // The stream's receive window becomes `window` bytes (a WINDOW_UPDATE for the growth).
  virtual void widen_window(std::int32_t id, std::uint32_t window) = 0;
  // Writes what the calls above queued once the current event is over.
  virtual void flush_later() = 0;
  // Moves one DATA frame of `length` bytes of `body` (by reference) to the output, after
  // its 9-byte header; NGHTTP2_ERR_WOULDBLOCK when the output is full.
  virtual int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body) = 0;
  // The client's IP address.
  virtual const std::string& peer() const = 0;
  // The last credential this client's requests were accepted with, so that its next
  // requests with the same one cost a comparison (null: nothing is remembered).
  struct CredentialMemo {
    std::uint64_t checked_by = 0;  // the id() of the authenticator that accepted it
    std::string bearer;
    auth::Verdict verdict;
  };
  virtual CredentialMemo* credential_memo() { return nullptr; }
  // The verified client certificate's subject (mTLS), or empty.
  virtual const std::string& client_subject() const {
    static const std::string kNone;
    return kNone;
  }
  // The exchange is done with the client: the leg forgets it (no more callbacks).
  virtual void detach(ProxyStream* exchange) = 0;

 protected:
  ~ClientLeg() = default;
};

// The backend's side of one attempt: stream `id` of a backend connection. The leg calls
// the exchange's on_upstream_closed() or on_upstream_lost() before it lets go of it.
class BackendLeg {
 public:
  // The exchange has request bytes (or the request's end) to send.
  virtual void resume(std::int32_t id) = 0;
  // RST_STREAM with `error_code`; on_upstream_closed() follows.
  virtual void reset_stream(std::int32_t id, std::uint32_t error_code) = 0;
  // `bytes` of the answer are done with: the backend's windows may grow by that much.
  virtual void consume(std::int32_t id, size_t bytes) = 0;
  // The stream's receive window becomes `window` bytes (a WINDOW_UPDATE for the growth).
  virtual void widen_window(std::int32_t id, std::uint32_t window) = 0;
  // As ClientLeg::send_body; what leaves is also appended to `retain` when given (kept
  // for a retry elsewhere).
  virtual int send_body(const std::uint8_t* framehd, size_t length, ByteQueue& body,
                        SliceQueue* retain) = 0;

 protected:
  ~BackendLeg() = default;
};

// Opens a backend stream for an attempt.
class BackendConnector {
 public:
  // Opens a stream to backend `backend_id` for `stream`, which learns it through
  // stream.set_upstream(leg, stream id) before this returns true. False: no connection
  // to that backend would take a new stream.
  virtual bool open(std::uint32_t backend_id, BackendStream& stream) = 0;

 protected:
  ~BackendConnector() = default;
};

}  // namespace infergate::gateway
