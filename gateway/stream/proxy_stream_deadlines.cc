// ProxyStream: what bounds a stream in time and in bytes. The worker's tick checks the
// deadlines; the byte caps are checked as the request arrives.
#include <string>

#include "gateway/h2/h2_connection.h"  // kMaxFrameBytes
#include "gateway/stream/proxy_stream.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string format_duration(std::chrono::nanoseconds d) {
  const auto ms = duration_cast<milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

// How long past its backend's usual latency an outstanding request weighs on that
// backend's score: four times its moving average, at least 50 ms; 100 ms before the
// backend has answered anything (a backend that never answers must not look idle).
std::chrono::nanoseconds overdue_after(const routing::BackendRuntime& runtime) {
  const std::uint64_t ewma = runtime.latency_ewma_ns.load(std::memory_order_relaxed);
  if (ewma == 0) return std::chrono::milliseconds(100);
  return std::max<std::chrono::nanoseconds>(std::chrono::nanoseconds(4 * ewma),
                                            std::chrono::milliseconds(50));
}

}  // namespace

bool ProxyStream::deadline_blames_backend(const routing::BackendRuntime& runtime,
                                          std::chrono::nanoseconds took) {
  // A client whose deadline is shorter than the backend's normal latency says nothing
  // about the backend; one far past it does.
  const std::uint64_t ewma = runtime.latency_ewma_ns.load(std::memory_order_relaxed);
  return ewma == 0 || took >= std::chrono::nanoseconds(4 * ewma);
}

std::uint64_t ProxyStream::unrouted_cap() const {
  const DataPlaneOptions& o = worker_.options();
  switch (method_info(method_).handling) {
    case Handling::kFleetAnswer:
    case Handling::kFanOut:
      return kGrpcPrefixBytes + o.max_control_message_bytes;
    case Handling::kForwardByModel:
      // In canonical order routing ends at the first tensor; one frame of it may have
      // come in with the fields.
      return kGrpcPrefixBytes + (whole_for_routing() ? o.max_reorder_buffer_bytes
                                                     : o.max_routing_fields_bytes + kMaxFrameBytes);
    case Handling::kForwardAny:
    case Handling::kRefuse:
      break;
  }
  return o.stream_window_bytes;
}

void ProxyStream::refuse_over_cap(std::string_view what, std::string_view key, std::uint64_t cap) {
  worker_.stats().count_refusal(key);
  reply_local(GrpcCode::kResourceExhausted, "infergate: " + std::string(what) + " exceed " +
                                                std::string(key) + " (" + std::to_string(cap) +
                                                " bytes)");
}

void ProxyStream::on_tick(std::chrono::steady_clock::time_point now) {
  if (down_ == nullptr) return;
  const DataPlaneOptions& o = worker_.options();
  if (const std::uint64_t p = progress();
      p != last_progress_ || parked_ || admission_ == Admission::kQueued) {
    // Waiting for admission or a backend slot is the gateway's doing, not idleness:
    // limits.queue_timeout and limits.backend_wait_timeout bound those waits.
    last_progress_ = p;
    progress_at_ = now;
  }
  if (phase_ != Phase::kAnswered && now >= deadline_) {
    return expire(
        Expiry::kDeadline, GrpcCode::kDeadlineExceeded,
        "infergate: deadline exceeded (grpc-timeout " + format_duration(deadline_ - start_) + ")",
        /*blame_backend=*/true, /*reset_client=*/false);
  }
  if (parked_ && awaiting_model_ &&
      now - awaiting_since_ >= worker_.routing().wait_for_backend_timeout) {
    const routing::PickResult::Status status = awaiting_status_;
    const std::string message =
        no_backend_message(status, " (waited limits.queue_timeout " +
                                       format_duration(worker_.routing().wait_for_backend_timeout) +
                                       " for one, routing.wait_for_backend)");
    if (per_message()) {
      // A stream's message is answered in the stream, which goes on (when the client
      // asked for in-stream errors).
      parked_ = awaiting_model_ = false;
      waited_ += now - wait_start_;
      awaiting_since_ = {};
      if (answer_in_stream(message)) {
        worker_.stats().count_expiry(static_cast<size_t>(Expiry::kBackendWait));
        return;
      }
    }
    return expire(Expiry::kBackendWait,
                  status == routing::PickResult::Status::kNotFound ? GrpcCode::kNotFound
                                                                   : GrpcCode::kUnavailable,
                  message, /*blame_backend=*/false, /*reset_client=*/false);
  }
  if (parked_ && !awaiting_model_ && now - parked_since_ >= o.backend_wait_timeout) {
    return expire(Expiry::kBackendWait, GrpcCode::kResourceExhausted,
                  "infergate: no backend for model '" + clip(model_) +
                      "' had a free slot within limits.backend_wait_timeout (" +
                      format_duration(o.backend_wait_timeout) + ")",
                  /*blame_backend=*/false, /*reset_client=*/false);
  }
  if (per_message()) check_legs(now);
  // The backend leg is idle only while the backend holds things up: nothing of its
  // answer waits here for the client.
  if (at_.up != nullptr && at_.runtime && !at_.finished && response_.empty() && !response_held()) {
    const std::uint64_t p = at_.response_received + at_.request_sent + events_;
    if (p != at_.last_progress) {
      at_.last_progress = p;
      at_.progress_at = now;
    } else if (now - at_.progress_at >= o.upstream_stream_idle_timeout) {
      return expire(Expiry::kBackendIdle, GrpcCode::kUnavailable,
                    "infergate: backend " + backend_label() + " sent nothing for " +
                        format_duration(o.upstream_stream_idle_timeout) +
                        " (upstream.stream_idle_timeout)",
                    /*blame_backend=*/true, /*reset_client=*/false);
    }
  } else {
    at_.progress_at = now;
  }
  if (now - progress_at_ >= o.stream_idle_timeout) {
    return expire(Expiry::kStreamIdle, GrpcCode::kDeadlineExceeded,
                  "infergate: no byte moved on the stream for " +
                      format_duration(o.stream_idle_timeout) + " (frontend.stream_idle_timeout)",
                  /*blame_backend=*/false, /*reset_client=*/true);
  }
  // A request outstanding far longer than its backend usually takes weighs on that
  // backend's score until it ends (a backend that stops answering is avoided).
  if (at_.runtime && !at_.overdue && !response_started_ && at_.up != nullptr &&
      now - at_.start >= overdue_after(*at_.runtime)) {
    at_.overdue = true;
    at_.runtime->overdue.fetch_add(1, std::memory_order_relaxed);
  }
}

void ProxyStream::expire(Expiry why, GrpcCode code, const std::string& message, bool blame_backend,
                         bool reset_client) {
  worker_.stats().count_expiry(static_cast<size_t>(why));
  if (at_.runtime && !at_.finished) {
    const std::chrono::nanoseconds took = worker_.now() - at_.start;
    const bool blamed =
        blame_backend && !response_started_ && deadline_blames_backend(*at_.runtime, took);
    if (blamed) {
      at_.runtime->stats.transport_failures.fetch_add(1, std::memory_order_relaxed);
      backend_time_ += took;
    }
    finish_attempt(blamed, blamed);
  }
  if (at_.up != nullptr && !at_.finished) reset_upstream(NGHTTP2_CANCEL);
  release_admission();
  if (parked_) {
    parked_ = awaiting_model_ = false;  // its entry in the worker's list is skipped
    waited_ += worker_.now() - wait_start_;
  }
  if (reset_client && response_started_) {
    status_ = code;
    status_known_ = true;
    discard_request();
    discard_response();
    reset_downstream(NGHTTP2_CANCEL);
    return;
  }
  if (phase_ != Phase::kAnswered) reply_local(code, message);
}

}  // namespace infergate::gateway
