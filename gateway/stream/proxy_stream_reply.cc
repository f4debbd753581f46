// ProxyStream: the answers the gateway makes itself, and how a stream ends early.
#include <string>

#include "gateway/stream/proxy_stream.h"

namespace infergate::gateway {

void ProxyStream::record_status(std::string_view grpc_status) {
  if (std::optional<GrpcCode> code = parse_grpc_status(grpc_status)) {
    status_ = *code;
    status_known_ = true;
  }
}

void ProxyStream::reply_local(GrpcCode code, std::string_view message,
                              std::chrono::milliseconds pushback) {
  status_ = code;
  status_known_ = true;
  if (down_ == nullptr) return;
  const std::string status = std::to_string(static_cast<int>(code));
  const std::string encoded = percent_encode_grpc_message(message);
  if (response_started_) {
    fail_after_upstream(code, std::string(message), NGHTTP2_INTERNAL_ERROR);
    return;
  }
  // Trailers-Only: one HEADERS frame with END_STREAM carries the status.
  // grpc-retry-pushback-ms: when the client may try again (gRPC's retry pushback).
  const std::string pushback_ms = std::to_string(pushback.count());
  const nghttp2_nv headers[] = {
      make_nv(":status", "200"),
      make_nv("content-type", "application/grpc"),
      make_nv("grpc-status", status),
      make_nv("grpc-message", encoded),
      make_nv("grpc-retry-pushback-ms", pushback_ms),
  };
  const size_t count = pushback.count() >= 0 ? std::size(headers) : std::size(headers) - 1;
  down_->send_headers(down_id_, {headers, count}, false);
  response_started_ = true;
  enter(Phase::kAnswered);
  // No RST_STREAM(NO_ERROR) to stop the upload: nghttp2 may put it on the wire before the
  // HEADERS, and a gRPC client that sees the reset first reports INTERNAL. A client
  // that gets its status stops sending on its own; the rest is discarded and credited.
  discard_request();
  if (at_.up != nullptr && !at_.finished) reset_upstream(NGHTTP2_CANCEL);
  cancel_legs();
  down_->flush_later();
}

void ProxyStream::reply_http(int status) {
  status_ = GrpcCode::kUnknown;
  status_known_ = true;
  if (down_ == nullptr) return;
  const std::string code = std::to_string(status);
  const nghttp2_nv headers[] = {make_nv(":status", code)};
  down_->send_headers(down_id_, headers, false);
  response_started_ = true;
  enter(Phase::kAnswered);
  discard_request();
  down_->flush_later();
}

void ProxyStream::fail_after_upstream(GrpcCode code, const std::string& message,
                                      std::uint32_t rst_code) {
  if (down_ == nullptr || phase_ == Phase::kAnswered) return;
  if (!response_started_) {
    reply_local(code, message);
    return;
  }
  if (response_squeeze_ == ResponseSqueeze::kHolding) response_squeeze_ = ResponseSqueeze::kNone;
  status_ = code;
  status_known_ = true;
  cancel_legs();
  if (!mid_answer()) {
    // Between messages: end the response properly, with the gateway's status.
    local_trailers_ = {{"grpc-status", std::to_string(static_cast<int>(code))},
                       {"grpc-message", percent_encode_grpc_message(message)}};
    enter(Phase::kAnswered);
    down_->resume_body(down_id_);
    down_->flush_later();
  } else {
    // Inside a message: nothing valid can follow, so the stream is reset.
    reset_downstream(rst_code);
  }
}

void ProxyStream::reset_downstream(std::uint32_t error_code) {
  if (down_ == nullptr) return;
  cancel_legs();
  down_->reset(down_id_, error_code);
  enter(Phase::kAnswered);
  down_->flush_later();
}

void ProxyStream::reset_upstream(std::uint32_t error_code) {
  if (at_.up == nullptr) return;
  at_.reset_by_us = true;
  at_.up->reset_stream(at_.up_id, error_code);
}

}  // namespace infergate::gateway
