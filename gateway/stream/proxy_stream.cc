#include "gateway/stream/proxy_stream.h"

#include <algorithm>

#include "gateway/logging.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

// Limits on one request's header fields (their bytes: frontend.max_header_bytes).
constexpr size_t kMaxRequestHeaderFields = 128;

std::string_view rcbuf_view(nghttp2_rcbuf* buf) {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

}  // namespace

ProxyStream::ProxyStream(Worker& worker, ClientLeg& down, std::int32_t down_id)
    : worker_(worker),
      down_(&down),
      down_id_(down_id),
      start_(worker_.now()),
      request_(worker.blocks()),
      response_(worker.blocks()),
      progress_at_(start_),
      own_answers_(worker.blocks()) {
  worker_.stream_opened();
}

ProxyStream::~ProxyStream() {
  set_load(Load::kNone);
  finish_attempt(false, false);  // never leave an outstanding count behind
  release_admission();
  for (const auto& leg : legs_) {
    for (StreamLeg::Pending& p : leg->pending()) release_message(p, *leg, false);
  }
  lifeline_.reset();  // nothing posted for this exchange runs after this
  worker_.stream_closed();
}

void ProxyStream::set_load(Load next) {
  if (model_slot_ < 0 || next == load_) return;
  WorkerStats& stats = worker_.stats();
  const size_t slot = static_cast<size_t>(model_slot_);
  if (load_ == Load::kWaiting) stats.model_waiting(slot, -1);
  if (load_ == Load::kInFlight) stats.model_inflight(slot, -1);
  if (next == Load::kWaiting) {
    stats.model_waiting(slot, 1);
    waiting_since_ = worker_.now();
  }
  if (next == Load::kInFlight) {
    stats.model_inflight(slot, 1);
    if (load_ == Load::kWaiting) stats.model_waited(slot, worker_.now() - waiting_since_);
  }
  load_ = next;
}

// ---------------------------------------------------------------- client leg

std::uint64_t ProxyStream::on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
  const std::uint64_t bytes = nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len;
  header_bytes_seen_ += bytes;
  if (headers_too_large_) return header_bytes_seen_;
  if (request_headers_.size() >= kMaxRequestHeaderFields ||
      request_headers_.bytes() + bytes > worker_.options().max_header_bytes) {
    headers_too_large_ = true;
    return header_bytes_seen_;
  }
  request_headers_.add(name, value);
  return header_bytes_seen_;
}

void ProxyStream::on_request_headers_done(bool end_stream) {
  ++events_;
  if (end_stream) {
    request_ended_ = true;
    request_.seal();
  }
  if (auto timeout = parse_grpc_timeout(request_headers_.find("grpc-timeout"))) {
    deadline_ = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout);
  }
  start_routing();
}

void ProxyStream::on_request_data(std::span<const std::uint8_t> data, const BlockRef* block) {
  request_received_ += data.size();
  if (at_.finished || phase_ == Phase::kAnswered) {
    // Nobody will send these bytes on: let the client's window go.
    request_window_.end();
    credit_request(request_received_);
    return;
  }
  // Bytes a widened window promised are never refused; the rest must fit the budget.
  if (const std::uint64_t uncovered = data.size() - request_window_.reserved.cover(data.size());
      uncovered > 0 && over_budget(uncovered)) {
    credit_request(request_received_);
    return refuse_over_budget();
  }
  request_.append(data, block);
  if (skip_request_bytes_ != 0) skip_refused_message();
  if (phase_ < Phase::kAdmission) {
    // Until a backend is chosen the bytes wait here, and the client is credited so the
    // scan can see what it needs; never past the cap for what may be read unrouted.
    // While routing is paused (the client does not read the gateway's in-stream
    // answers) nothing is credited: the stream's window bounds what waits.
    try_route();
    if (routing_paused_) return;
    credit_received();
    if (phase_ < Phase::kAdmission && phase_ != Phase::kAnswered &&
        request_received_ - unrouted_from_ > unrouted_cap()) {
      const MethodInfo& info = method_info(method_);
      if (info.handling == Handling::kForwardByModel) {
        const bool whole = whole_for_routing();
        refuse_over_cap("the request's bytes read before routing",
                        whole ? "limits.max_reorder_bytes" : "limits.max_routing_fields_bytes",
                        whole ? worker_.options().max_reorder_buffer_bytes
                              : worker_.options().max_routing_fields_bytes);
      } else {
        refuse_over_cap("the " + std::string(info.name) + " request",
                        "limits.max_control_message_bytes",
                        worker_.options().max_control_message_bytes);
      }
    }
  } else if (forwarding_to_ != nullptr) {
    forward_more();
  } else if (at_.up != nullptr) {
    at_.up->resume(at_.up_id);
  } else if (request_squeeze_ == RequestSqueeze::kHolding) {
    // Held whole to be compressed: the client is credited as it arrives.
    credit_request(request_received_);
    maybe_compress_request();
  } else if (parked_ || admission_ == Admission::kQueued) {
    release_connection_window();
  }
}

void ProxyStream::on_request_end() {
  if (request_ended_) return;
  request_ended_ = true;
  request_.seal();
  request_window_.end();
  if (phase_ < Phase::kAdmission) {
    try_route();
  } else if (forwarding_to_ != nullptr) {
    forward_more();
  } else if (at_.up != nullptr) {
    at_.up->resume(at_.up_id);
  } else if (request_squeeze_ == RequestSqueeze::kHolding) {
    maybe_compress_request();
  }
}

void ProxyStream::on_downstream_closed(std::uint32_t error_code) {
  if (down_ == nullptr) return;
  if (!status_known_) {
    status_ = error_code == NGHTTP2_CANCEL ? GrpcCode::kCancelled : GrpcCode::kUnknown;
  }
  const auto elapsed = worker_.now() - start_;
  worker_.stats().record(method_, status_, elapsed);
  if (method_info(method_).scan_prefix && !model_.empty() && fleet_) {
    // The slot found when the request was routed: no second lookup of the model.
    if (model_slot_ >= 0) {
      worker_.stats().record_model(static_cast<size_t>(model_slot_), elapsed);
    } else {
      worker_.stats().record_model(fleet_->known(model_) ? std::string_view(model_) : "other",
                                   elapsed);
    }
  }
  if (method_ == Method::kModelInfer && status_ == GrpcCode::kOk && !tried_.empty()) {
    worker_.stats().record_overhead(elapsed - backend_time_ - waited_);
  }
  if (worker_.options().access_log) write_access_log(elapsed);
  down_->detach(this);
  // The client is gone; what it sent us and what we hold for it no longer matters.
  credit_request(request_received_);
  down_ = nullptr;
  request_.clear();
  discard_response();
  if (at_.up != nullptr && !at_.finished) {
    at_.reset_by_us = true;
    reset_upstream(NGHTTP2_CANCEL);
  }
  cancel_legs();
  maybe_destroy();
}

ssize_t ProxyStream::read_response(size_t length, std::uint32_t* data_flags) {
  if (response_held()) return NGHTTP2_ERR_DEFERRED;  // being compressed
  const size_t n = std::min(length, response_.size());
  if (n == 0 && phase_ != Phase::kAnswered) return NGHTTP2_ERR_DEFERRED;
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (phase_ == Phase::kAnswered && n == response_.size()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    std::vector<nghttp2_nv>& trailers = nv_scratch();
    if (!local_trailers_.empty()) {
      for (const auto& [name, value] : local_trailers_) trailers.push_back(make_nv(name, value));
    } else {
      at_.response_trailers.append_forwardable(trailers);
    }
    if (!trailers.empty()) {
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      down_->send_trailers(down_id_, trailers);
    }
  }
  return static_cast<ssize_t>(n);
}

int ProxyStream::send_response_data(const std::uint8_t* framehd, size_t length) {
  int rc = down_->send_body(framehd, length, response_);
  if (rc != 0) return rc;
  response_sent_ += length;
  worker_.stats().response_bytes_total.add(length);
  if (per_message()) {
    merge_answers();  // room for more of the backends' answers
  } else {
    credit_response(response_sent_);
  }
  // In-stream answers held back routing (try_route) until the client read them.
  maybe_resume_routing();
  return 0;
}

void ProxyStream::write_access_log(std::chrono::nanoseconds elapsed) const {
  const std::string job = ticket_.job.empty() ? job_name() : ticket_.job;
  const routing::BackendInfo* b = backend();
  using ms = std::chrono::duration<double, std::milli>;
  // Client-supplied text: no quotes or control characters may break the line's format.
  auto clean = [](std::string s) {
    for (char& c : s) {
      if (c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
    }
    return s.size() > 128 ? s.substr(0, 128) : s;
  };
  access_log().info(
      "request method={} job=\"{}\" model=\"{}\" backend={} code={} request_bytes={} "
      "response_bytes={} gateway_ms={:.3f} backend_ms={:.3f} queue_ms={:.3f} attempts={}",
      method_info(method_).name, clean(job), clean(model_), b == nullptr ? "-" : b->name,
      grpc_code_name(status_), request_received_, response_sent_,
      ms(elapsed - backend_time_ - waited_).count(), ms(backend_time_).count(), ms(waited_).count(),
      tried_.size());
}

// ---------------------------------------------------------------- backend leg

void ProxyStream::set_upstream(BackendLeg* up, std::int32_t id) {
  at_.up = up;
  at_.up_id = id;
}

std::string_view ProxyStream::credential_header() const {
  // With auth on, the credential was the gateway's to check: backends never see it.
  return worker_.routing().auth ? "authorization" : "";
}

void ProxyStream::append_upstream_headers(std::vector<nghttp2_nv>& out) const {
  request_headers_.append_forwardable(out, credential_header());
  if (request_encoding_ != Encoding::kIdentity) {
    set_nv(out, "grpc-encoding", encoding_name(request_encoding_));
  }
}

std::uint64_t ProxyStream::on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                                              bool trailers) {
  at_.response_header_bytes += nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len;
  if (at_.response_header_bytes > worker_.options().max_header_bytes) {
    return at_.response_header_bytes;  // the connection fails the stream
  }
  (trailers ? at_.response_trailers : at_.response_headers).add(name, value);
  if (rcbuf_view(name) == "grpc-status") record_status(rcbuf_view(value));
  return at_.response_header_bytes;
}

void ProxyStream::on_response_headers_done(bool end_stream, bool trailers) {
  ++events_;
  if (end_stream) at_.backend_finished = true;
  if (down_ == nullptr) return;
  if (trailers || (response_started_ && !gateway_headers_)) {
    on_response_end();
    return;
  }
  if (gateway_headers_) {
    // The client has the gateway's HEADERS already (it answered an earlier message in
    // the stream): the backend's are not sent again. A Trailers-Only answer ends the
    // stream with its status.
    if (end_stream) {
      for (const char* name : {"grpc-status", "grpc-message"}) {
        const std::string_view value = at_.response_headers.find(name);
        if (!value.empty()) local_trailers_.emplace_back(name, std::string(value));
      }
      on_response_end();
    }
    return;
  }
  if (end_stream && status_known_ && status_ == GrpcCode::kUnavailable && retry_allowed()) {
    // A Trailers-Only UNAVAILABLE (a backend shutting down) before any response byte:
    // try another backend once this stream is over.
    at_.retry_pending = true;
    reset_upstream(NGHTTP2_CANCEL);
    return;
  }
  // The first response byte: the request can no longer be retried.
  at_.retain = false;
  at_.retained.clear();
  std::vector<nghttp2_nv>& headers = nv_scratch();
  at_.response_headers.append_forwardable(headers);
  if (!end_stream) plan_response_compression(headers);
  response_started_ = true;
  if (end_stream) {
    // Trailers-Only: the whole answer is this one HEADERS frame.
    enter(Phase::kAnswered);
    down_->send_headers(down_id_, headers, false);
  } else {
    down_->send_headers(down_id_, headers, true);
  }
  down_->flush_later();
}

void ProxyStream::on_response_data(std::span<const std::uint8_t> data, const BlockRef* block) {
  at_.response_received += data.size();
  if (down_ == nullptr) {
    at_.response_window.end();
    credit_response(at_.response_received);
    return;
  }
  if (at_.runtime)
    at_.runtime->response_wire_bytes.fetch_add(data.size(), std::memory_order_relaxed);
  if (const std::uint64_t uncovered = data.size() - at_.response_window.reserved.cover(data.size());
      uncovered > 0 && over_budget(uncovered)) {
    credit_response(at_.response_received);
    return refuse_over_budget();
  }
  at_.response_framer.feed(data);
  if (!at_.response_window_sized && at_.response_framer.messages_started() > 0) {
    at_.response_window_sized = true;
    // The first message's size: what came so far and what of its body is still to come.
    if (at_.response_framer.messages_completed() == 0) {
      widen_response_window(at_.response_received + at_.response_framer.body_left());
    }
  }
  response_.append(data, block);
  if (response_held()) {
    // Held whole to be compressed: the backend is credited as it arrives.
    credit_response(at_.response_received);
    maybe_compress_response();
    if (response_held()) return;
  }
  down_->resume_body(down_id_);
  down_->flush_later();
}

bool ProxyStream::over_budget(std::uint64_t bytes) const {
  const BufferBudget* budget = worker_.blocks().budget();
  return budget != nullptr && budget->would_exceed(bytes);
}

void ProxyStream::refuse_over_budget() {
  refuse_over_cap("the gateway's buffered bytes", "limits.max_buffered_bytes",
                  worker_.blocks().budget()->limit());
}

void ProxyStream::on_response_end() {
  at_.backend_finished = true;
  response_.seal();
  at_.response_window.end();
  if (phase_ == Phase::kAnswered || down_ == nullptr) return;
  if (response_squeeze_ == ResponseSqueeze::kRunning) {
    response_squeeze_ = ResponseSqueeze::kRunningEnded;  // ends once the message is in place
    return;
  }
  // A message still held never completed: what came goes as it is.
  if (response_squeeze_ == ResponseSqueeze::kHolding) response_squeeze_ = ResponseSqueeze::kNone;
  enter(Phase::kAnswered);
  down_->resume_body(down_id_);
  down_->flush_later();
}

void ProxyStream::on_upstream_closed(std::uint32_t error_code) {
  // Credit what the backend sent and we still hold, while its stream id is valid.
  credit_response(at_.response_received);
  at_.up = nullptr;
  if (at_.retry_pending) {
    const std::chrono::nanoseconds took = worker_.now() - at_.start;
    backend_time_ += took;
    if (at_.runtime) at_.runtime->stats.record_answer(static_cast<std::uint32_t>(status_), took);
    finish_attempt(/*failed=*/true, /*counts=*/true);
    if (retry("backend " + backend_label() + " answered UNAVAILABLE")) return;
    at_.retry_pending = false;
    at_.finished = true;
    release_admission();
    discard_request();
    fail_after_upstream(GrpcCode::kUnavailable,
                        "infergate: backend " + backend_label() + " is unavailable",
                        NGHTTP2_REFUSED_STREAM);
    return maybe_destroy();
  }
  if (at_.backend_finished) {
    // A complete answer: UNAVAILABLE and INTERNAL count against the backend, and so does
    // a request it let run into its deadline far past its usual latency (a backend that
    // stops answering); a cancellation says nothing about it.
    const std::chrono::nanoseconds took = worker_.now() - at_.start;
    const bool timed_out = status_ == GrpcCode::kDeadlineExceeded && at_.response_received == 0 &&
                           at_.runtime && deadline_blames_backend(*at_.runtime, took);
    const bool failed =
        status_ == GrpcCode::kUnavailable || status_ == GrpcCode::kInternal || timed_out;
    const bool counts =
        (status_ != GrpcCode::kDeadlineExceeded || timed_out) && status_ != GrpcCode::kCancelled;
    backend_time_ += took;
    if (at_.runtime) {
      at_.runtime->stats.record_answer(static_cast<std::uint32_t>(status_), took);
      // Latency-aware least-loaded learns how long this backend takes per request (what
      // never comes back in time weighs through the overdue count instead, and leaves
      // the usual latency that deadline_blames_backend() compares with as it was).
      if (status_ == GrpcCode::kOk && method_ == Method::kModelInfer) {
        at_.runtime->observe_latency(static_cast<std::uint64_t>(took.count()));
      }
    }
    finish_attempt(failed, counts);
  } else {
    backend_time_ += worker_.now() - at_.start;
    if (at_.runtime && !at_.reset_by_us) {
      at_.runtime->stats.transport_failures.fetch_add(1, std::memory_order_relaxed);
    }
    finish_attempt(/*failed=*/!at_.reset_by_us, /*counts=*/!at_.reset_by_us);
    if (!at_.reset_by_us && !response_started_ && error_code == NGHTTP2_REFUSED_STREAM &&
        retry("backend " + backend_label() + " refused the stream")) {
      return;
    }
  }
  at_.finished = true;
  release_admission();
  discard_request();
  if (phase_ != Phase::kAnswered && response_squeeze_ != ResponseSqueeze::kRunningEnded &&
      down_ != nullptr) {
    if (error_code == NGHTTP2_REFUSED_STREAM) {
      fail_after_upstream(
          GrpcCode::kUnavailable,
          "infergate: backend " + backend_label() + " refused the stream (shutting down)",
          NGHTTP2_REFUSED_STREAM);
    } else {
      fail_after_upstream(
          GrpcCode::kUnavailable,
          "infergate: backend " + backend_label() + " reset the stream (HTTP/2 error " +
              nghttp2_http2_strerror(error_code) + ")",
          error_code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : error_code);
    }
  }
  maybe_destroy();
}

void ProxyStream::on_upstream_lost(std::string_view reason) {
  at_.up = nullptr;
  // The backend's session is going away: its windows need no credit.
  at_.response_credited = at_.response_received;
  if (at_.runtime) at_.runtime->stats.transport_failures.fetch_add(1, std::memory_order_relaxed);
  finish_attempt(/*failed=*/true, /*counts=*/true);
  if (!response_started_ && retry(std::string(reason))) return;
  at_.finished = true;
  release_admission();
  discard_request();
  if (phase_ != Phase::kAnswered && down_ != nullptr) {
    fail_after_upstream(GrpcCode::kUnavailable,
                        "infergate: backend " + backend_label() + ": " + std::string(reason),
                        NGHTTP2_INTERNAL_ERROR);
  }
  maybe_destroy();
}

ssize_t ProxyStream::read_request(size_t length, std::uint32_t* data_flags) {
  return read_queued_body(request_.size(), request_ended_, length, data_flags);
}

int ProxyStream::send_request_data(const std::uint8_t* framehd, size_t length) {
  if (at_.retain && at_.retained_bytes + length > worker_.routing().retry_buffer_bytes) {
    at_.retain = false;  // too large to keep for a retry
    at_.retained.clear();
  }
  int rc = at_.up->send_body(framehd, length, request_, at_.retain ? &at_.retained : nullptr);
  if (rc != 0) return rc;
  if (at_.runtime) at_.runtime->request_wire_bytes.fetch_add(length, std::memory_order_relaxed);
  if (at_.retain) at_.retained_bytes += length;
  at_.request_sent += length;
  worker_.stats().request_bytes_total.add(length);
  credit_request(at_.request_sent);
  return 0;
}

// ---------------------------------------------------------------- flow control

void ProxyStream::credit_request(std::uint64_t upto) {
  if (upto <= request_credited_ || down_ == nullptr) return;
  const std::uint64_t connection =
      upto > request_connection_credited_ ? upto - request_connection_credited_ : 0;
  down_->credit(down_id_, upto - request_credited_, connection);
  keep_window_reserved(upto - request_credited_, request_window_, /*request=*/true);
  request_credited_ = upto;
  request_connection_credited_ = std::max(request_connection_credited_, upto);
  down_->flush_later();
}

void ProxyStream::release_connection_window() {
  if (down_ == nullptr || request_received_ <= request_connection_credited_) return;
  down_->credit(down_id_, 0, request_received_ - request_connection_credited_);
  request_connection_credited_ = request_received_;
  down_->flush_later();
}

void ProxyStream::credit_response(std::uint64_t upto) {
  if (upto <= at_.response_credited || at_.up == nullptr) return;
  at_.up->consume(at_.up_id, upto - at_.response_credited);
  keep_window_reserved(upto - at_.response_credited, at_.response_window, /*request=*/false);
  at_.response_credited = upto;
}

void ProxyStream::keep_window_reserved(std::uint64_t credited, WidenedWindow& w, bool request) {
  // A widened window refills as it is credited: what the sender may now send beyond the
  // usual window is set aside again, so that it is never refused. When the budget has
  // no room for it, the window goes back to the usual size (what was already promised
  // stays reserved until it arrives).
  if (w.growth == 0) return;
  BufferBudget* budget = worker_.blocks().budget();
  if (budget == nullptr) return;
  const std::uint64_t missing = w.growth - std::min(w.growth, w.reserved.bytes());
  if (w.reserved.grow(*budget, std::min(credited, missing))) return;
  w.growth = 0;
  const std::uint32_t usual = worker_.options().stream_window_bytes;
  if (request) {
    down_->widen_window(down_id_, usual);
  } else {
    at_.up->widen_window(at_.up_id, usual);
  }
}

void ProxyStream::discard_request() {
  request_.clear();
  credit_request(request_received_);
}

void ProxyStream::discard_response() {
  response_.clear();
  credit_response(at_.response_received);
}

void ProxyStream::maybe_destroy() {
  if (down_ != nullptr || at_.up != nullptr) return;
  for (const auto& leg : legs_) {
    if (leg->open()) return;  // its backend connection still calls it
  }
  delete this;
}

}  // namespace infergate::gateway
