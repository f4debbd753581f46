#include "tests/unit/gateway/exchange_fakes.h"

#include <stdexcept>

#include "gateway/h2/header_block.h"
#include "gateway/wire/grpc_framing.h"

namespace infergate::gateway::fakes {
namespace {

Fields to_fields(std::span<const nghttp2_nv> nva) {
  Fields out;
  for (const nghttp2_nv& nv : nva) {
    out.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                     std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
  }
  return out;
}

// Moves `length` bytes of `body` out as a leg's output would, and returns them.
std::string take(ByteQueue& body, size_t length, OutputBuffer& scratch, SliceQueue* retain) {
  std::string bytes(length, '\0');
  if (!body.copy_out(0, {reinterpret_cast<std::uint8_t*>(bytes.data()), length})) {
    throw std::logic_error("the exchange sent more than it holds");
  }
  body.take(length, scratch, retain);
  scratch.clear();
  return bytes;
}

}  // namespace

// ------------------------------------------------------------------ HeaderFields

HeaderFields::HeaderFields() {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback2(callbacks, &HeaderFields::on_header);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_http_messaging(option, 1);  // any field, responses' too
  nghttp2_session_server_new2(&server_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  nghttp2_session_callbacks* none = nullptr;
  nghttp2_session_callbacks_new(&none);
  nghttp2_session_client_new(&client_, none, nullptr);
  nghttp2_session_callbacks_del(none);
  nghttp2_submit_settings(client_, NGHTTP2_FLAG_NONE, nullptr, 0);
}

HeaderFields::~HeaderFields() {
  for (nghttp2_rcbuf* buf : kept_) nghttp2_rcbuf_decref(buf);
  nghttp2_session_del(client_);
  nghttp2_session_del(server_);
}

std::vector<std::pair<nghttp2_rcbuf*, nghttp2_rcbuf*>> HeaderFields::make(const Fields& fields) {
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : fields) nva.push_back(make_nv(name, value));
  nghttp2_submit_headers(client_, NGHTTP2_FLAG_END_STREAM, -1, nullptr, nva.data(), nva.size(),
                         nullptr);
  current_.clear();
  const std::uint8_t* data = nullptr;
  for (ssize_t n; (n = nghttp2_session_mem_send(client_, &data)) > 0;) {
    if (nghttp2_session_mem_recv(server_, data, static_cast<size_t>(n)) != n) {
      throw std::logic_error("the in-memory server session refused the header block");
    }
  }
  if (current_.size() != fields.size()) throw std::logic_error("header fields were lost");
  return current_;
}

int HeaderFields::on_header(nghttp2_session*, const nghttp2_frame*, nghttp2_rcbuf* name,
                            nghttp2_rcbuf* value, std::uint8_t, void* user_data) {
  auto* self = static_cast<HeaderFields*>(user_data);
  nghttp2_rcbuf_incref(name);
  nghttp2_rcbuf_incref(value);
  self->kept_.push_back(name);
  self->kept_.push_back(value);
  self->current_.emplace_back(name, value);
  return 0;
}

// ------------------------------------------------------------------ FakeClient

void FakeClient::send_headers(std::int32_t, std::span<const nghttp2_nv> nva, bool follows) {
  ++headers_sent;
  headers = to_fields(nva);
  body_follows = follows;
  if (!follows) ended = true;
}

void FakeClient::send_trailers(std::int32_t, std::span<const nghttp2_nv> nva) {
  trailers = to_fields(nva);
}

int FakeClient::send_body(const std::uint8_t*, size_t length, ByteQueue& bytes) {
  body += take(bytes, length, scratch_, nullptr);
  return 0;
}

bool FakeClient::pull(ProxyStream& exchange) {
  if (!body_follows || ended) return ended;
  for (;;) {
    std::uint32_t flags = 0;
    const ssize_t n = exchange.read_response(16384, &flags);
    if (n == NGHTTP2_ERR_DEFERRED) return false;
    if (n < 0) throw std::logic_error("read_response failed");
    static const std::uint8_t kFrameHeader[9] = {};
    if (n > 0 && exchange.send_response_data(kFrameHeader, static_cast<size_t>(n)) != 0) {
      return false;
    }
    if ((flags & NGHTTP2_DATA_FLAG_EOF) != 0) {
      ended = true;
      return true;
    }
  }
}

std::string FakeClient::header(const std::string& name) const { return field(headers, name); }
std::string FakeClient::trailer(const std::string& name) const { return field(trailers, name); }

std::string FakeClient::grpc_status() const {
  const std::string s = trailer("grpc-status");
  return s.empty() ? header("grpc-status") : s;
}

std::string FakeClient::grpc_message() const {
  const std::string s = trailer("grpc-message");
  return s.empty() ? header("grpc-message") : s;
}

// ------------------------------------------------------------------ FakeBackends

bool FakeBackends::open(std::uint32_t backend_id, BackendStream& exchange) {
  if (refuse) return false;
  const std::int32_t id = next_id_;
  next_id_ += 2;
  Stream& s = streams[id];
  s.backend_id = backend_id;
  s.exchange = &exchange;
  std::vector<nghttp2_nv> nva;
  exchange.append_upstream_headers(nva);
  s.headers = to_fields(nva);
  exchange.set_upstream(this, id);
  return true;
}

void FakeBackends::reset_stream(std::int32_t id, std::uint32_t error_code) {
  Stream& s = streams.at(id);
  if (!s.reset_code) s.reset_code = error_code;
}

int FakeBackends::send_body(const std::uint8_t*, size_t length, ByteQueue& bytes,
                            SliceQueue* retain) {
  // The stream being read is the one pull() named.
  streams.at(pulling_).body += take(bytes, length, scratch_, retain);
  return 0;
}

void FakeBackends::pull(std::int32_t id) {
  Stream& s = streams.at(id);
  if (s.closed || s.request_ended || s.reset_code) return;
  pulling_ = id;
  for (;;) {
    std::uint32_t flags = 0;
    const ssize_t n = s.exchange->read_request(16384, &flags);
    if (n == NGHTTP2_ERR_DEFERRED) return;
    if (n < 0) throw std::logic_error("read_request failed");
    static const std::uint8_t kFrameHeader[9] = {};
    if (n > 0 && s.exchange->send_request_data(kFrameHeader, static_cast<size_t>(n)) != 0) return;
    if ((flags & NGHTTP2_DATA_FLAG_EOF) != 0) {
      s.request_ended = true;
      return;
    }
  }
}

void FakeBackends::answer_headers(HeaderFields& make, std::int32_t id, const Fields& fields,
                                  bool end_stream) {
  Stream& s = streams.at(id);
  for (auto [name, value] : make.make(fields)) s.exchange->on_response_header(name, value, false);
  s.exchange->on_response_headers_done(end_stream, /*trailers=*/false);
}

void FakeBackends::answer_data(std::int32_t id, const std::string& bytes) {
  streams.at(id).exchange->on_response_data(
      {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, nullptr);
}

void FakeBackends::answer_trailers(HeaderFields& make, std::int32_t id, const Fields& fields) {
  Stream& s = streams.at(id);
  for (auto [name, value] : make.make(fields)) s.exchange->on_response_header(name, value, true);
  s.exchange->on_response_headers_done(/*end_stream=*/true, /*trailers=*/true);
}

void FakeBackends::close(std::int32_t id, std::uint32_t error_code) {
  Stream& s = streams.at(id);
  if (s.closed) return;
  s.closed = true;
  s.exchange->on_upstream_closed(error_code);  // may delete the exchange
}

void FakeBackends::lose(std::int32_t id, std::string_view reason) {
  Stream& s = streams.at(id);
  if (s.closed) return;
  s.closed = true;
  s.exchange->on_upstream_lost(reason);
}

void FakeBackends::deliver_resets() {
  for (auto& [id, s] : streams) {
    if (s.reset_code && !s.closed) close(id, *s.reset_code);
  }
}

// ------------------------------------------------------------------ framing

std::string field(const Fields& fields, const std::string& name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return "";
}

std::string grpc_frame(const std::string& body) {
  std::uint8_t prefix[kGrpcPrefixBytes];
  encode_grpc_prefix({.compressed = false, .length = static_cast<std::uint32_t>(body.size())},
                     prefix);
  return std::string(reinterpret_cast<const char*>(prefix), kGrpcPrefixBytes) + body;
}

}  // namespace infergate::gateway::fakes
