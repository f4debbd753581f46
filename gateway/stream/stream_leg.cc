#include "gateway/stream/stream_leg.h"

#include <algorithm>

#include "gateway/stream/proxy_stream.h"
#include "gateway/wire/grpc_status.h"

namespace infergate::gateway {

StreamLeg::StreamLeg(ProxyStream& owner, BlockPool& blocks, const routing::BackendInfo& backend)
    : owner_(owner),
      backend_id_(backend.id),
      label_(backend.name + " (" + backend.address + ")"),
      max_inflight_(backend.max_inflight),
      runtime_(backend.runtime),
      outgoing_(blocks),
      incoming_(blocks) {}

void StreamLeg::append_upstream_headers(std::vector<nghttp2_nv>& out) const {
  owner_.append_leg_headers(out);
}

ssize_t StreamLeg::read_request(size_t length, std::uint32_t* data_flags) {
  return read_queued_body(outgoing_.size(), half_closed_, length, data_flags);
}

int StreamLeg::send_request_data(const std::uint8_t* framehd, size_t length) {
  const int rc = up_->send_body(framehd, length, outgoing_, nullptr);
  if (rc != 0) return rc;
  sent_ += length;
  if (runtime_) runtime_->request_wire_bytes.fetch_add(length, std::memory_order_relaxed);
  owner_.on_leg_sent(length);
  return 0;
}

std::uint64_t StreamLeg::on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, bool) {
  header_bytes_ += nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len;
  if (header_bytes_ <= owner_.max_header_bytes()) answer_.add(name, value);
  return header_bytes_;
}

void StreamLeg::on_response_headers_done(bool end_stream, bool) {
  if (end_stream) backend_finished_ = true;
  const std::optional<GrpcCode> code = parse_grpc_status(answer_.find("grpc-status"));
  if (code && *code != GrpcCode::kOk) status_error_ = true;
}

void StreamLeg::on_response_data(std::span<const std::uint8_t> data, const BlockRef* block) {
  received_ += data.size();
  if (runtime_) runtime_->response_wire_bytes.fetch_add(data.size(), std::memory_order_relaxed);
  incoming_.append(data, block);
  owner_.on_leg_data(*this);
}

void StreamLeg::on_upstream_closed(std::uint32_t error_code) {
  // No more will come: the backend's windows get back what still waits here, while the
  // stream id is valid.
  consume(incoming_.size());
  up_ = nullptr;
  if (!fail_reason_.empty() || reset_by_us_) return ended(fail_reason_);
  if (status_error_) {
    const std::string_view message = answer_.find("grpc-message");
    return ended("backend " + label_ + " ended the stream with " +
                 std::string(grpc_code_name(
                     parse_grpc_status(answer_.find("grpc-status")).value_or(GrpcCode::kUnknown))) +
                 (message.empty() ? "" : ": " + clip(message, 512)));
  }
  if (!backend_finished_ || error_code != NGHTTP2_NO_ERROR) {
    return ended("backend " + label_ + " reset the stream (HTTP/2 error " +
                 nghttp2_http2_strerror(error_code) + ")");
  }
  ended({});
}

void StreamLeg::on_upstream_lost(std::string_view reason) {
  up_ = nullptr;
  ended(fail_reason_.empty() ? "backend " + label_ + ": " + std::string(reason) : fail_reason_);
}

void StreamLeg::ended(std::string why) {
  fail_reason_ = std::move(why);
  // The owner may delete this leg (and itself): nothing of it is touched after.
  owner_.on_leg_closed(*this);
}

void StreamLeg::resume() {
  if (up_ != nullptr) up_->resume(up_id_);
}

void StreamLeg::half_close() {
  if (half_closed_) return;
  half_closed_ = true;
  resume();
}

void StreamLeg::cancel(std::string why) {
  if (up_ == nullptr) return;
  if (fail_reason_.empty()) fail_reason_ = std::move(why);
  reset_by_us_ = true;
  up_->reset_stream(up_id_, NGHTTP2_CANCEL);
}

void StreamLeg::consume(size_t bytes) {
  if (up_ != nullptr && bytes != 0) up_->consume(up_id_, bytes);
}

}  // namespace infergate::gateway
