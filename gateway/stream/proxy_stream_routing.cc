// ProxyStream: from the request's headers and first message to a backend stream.
#include <boost/asio/post.hpp>

#include <algorithm>
#include <memory>
#include <string>

#include "gateway/stream/proxy_stream.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

// How much of a compressed message is inflated at first for the scan.
constexpr size_t kInitialInflateBytes = 64 * 1024;

std::string method_label(Method method) { return std::string(method_info(method).name); }

}  // namespace

void ProxyStream::start_routing() {
  if (down_ == nullptr) return;
  enter(Phase::kRouting);
  if (headers_too_large_) {
    return reply_local(GrpcCode::kResourceExhausted,
                       "infergate: request headers exceed 128 fields or 64 KiB");
  }
  if (request_headers_.find(":method") != "POST") return reply_http(405);
  if (!request_headers_.find("content-type").starts_with("application/grpc")) {
    return reply_http(415);
  }
  const std::string_view path = request_headers_.find(":path");
  method_ = method_from_path(path);
  const MethodInfo& info = method_info(method_);
  if (method_ == Method::kUnknown) {
    return reply_local(GrpcCode::kUnimplemented, "infergate: unknown method " + clip(path));
  }
  if (info.shared_memory) {
    return reply_local(GrpcCode::kFailedPrecondition,
                       "infergate: shared memory cannot cross the gateway: the client and the "
                       "Triton servers behind it are on different hosts; send tensors in the "
                       "request instead");
  }
  if (info.handling == Handling::kRefuse) {
    // grpc.health.v1.Health/Watch: Triton serves Check only, and so does the gateway.
    return reply_local(GrpcCode::kUnimplemented,
                       "infergate: " + std::string(path) +
                           " is not supported (as on Triton); poll grpc.health.v1.Health/Check");
  }
  if (!authenticate() || !admit_job()) return;
  try_route();
}

void ProxyStream::try_route() {
  if (phase_ >= Phase::kAdmission || down_ == nullptr || phase_ == Phase::kAnswered ||
      method_ == Method::kUnknown || job_pending_)
    return;
  // A client that sends unroutable stream messages but does not read their in-stream
  // answers is not served more answers than this (send_response_data resumes it).
  if (routing_blocked()) {
    routing_paused_ = true;  // maybe_resume_routing() lets it go on
    return;
  }
  const MethodInfo& info = method_info(method_);
  switch (info.handling) {
    case Handling::kForwardByModel:
      if (per_message()) {
        // One message after another, in a loop (never recursing per message); a
        // message forwarded or answered asks for the next one (route_again_).
        if (routing_loop_) {
          route_again_ = true;
          return;
        }
        routing_loop_ = true;
        do {
          route_again_ = false;
          if (routing_blocked()) {
            routing_paused_ = true;
            break;
          }
          scan_first_message();
        } while (route_again_ && phase_ == Phase::kRouting && down_ != nullptr && !routing_paused_);
        routing_loop_ = false;
        return;
      }
      return scan_first_message();
    case Handling::kForwardAny:
      return dispatch(RequestView{});
    case Handling::kFleetAnswer:
    case Handling::kFanOut:
      // Small unary requests the gateway reads whole: wait for the client's half-close.
      if (request_ended_) dispatch(RequestView{});
      return;
    case Handling::kRefuse:
      return;
  }
}

void ProxyStream::scan_first_message() {
  const DataPlaneOptions& options = worker_.options();
  const MethodInfo& info = method_info(method_);
  if (request_.size() < kGrpcPrefixBytes) {
    if (!request_ended_) return;
    if (request_.empty()) {
      if (per_message()) return end_of_messages();
      if (gateway_headers_) {
        // A stream whose messages were all answered by the gateway, half-closed: it
        // ends as Triton ends a stream, OK.
        return fail_after_upstream(GrpcCode::kOk, "", NGHTTP2_NO_ERROR);
      }
      return dispatch(RequestView{});  // the backend will judge it
    }
    return reply_local(GrpcCode::kInternal, "infergate: request ends inside a gRPC message prefix");
  }
  std::uint8_t raw[kGrpcPrefixBytes];
  request_.copy_out(0, raw);
  GrpcPrefix prefix;
  if (!decode_grpc_prefix(raw, prefix)) {
    return reply_local(GrpcCode::kInternal,
                       "infergate: malformed gRPC message prefix (compressed flag is not 0 or 1)");
  }
  if (prefix.length > kMaxGrpcMessageBytes) {
    return reply_local(GrpcCode::kResourceExhausted, "infergate: message of " +
                                                         std::to_string(prefix.length) +
                                                         " bytes exceeds the 2 GiB limit");
  }
  const size_t available = std::min<size_t>(request_.size() - kGrpcPrefixBytes, prefix.length);
  const bool complete = available == prefix.length;
  if (!complete && request_ended_) {
    return reply_local(GrpcCode::kInternal, "infergate: request ends inside its first message");
  }
  const bool whole_needed = need_whole_ || !info.scan_prefix;
  if (!complete) {
    if (whole_needed && prefix.length > options.max_reorder_buffer_bytes) {
      return refuse_over_cap(
          method_label(method_) + " request, out of canonical field order, and its bytes",
          "limits.max_reorder_bytes", options.max_reorder_buffer_bytes);
    }
    // Scan again once the prefix has doubled, and always once it reaches the cap.
    if (whole_needed ||
        (available < next_scan_at_ && available < options.max_routing_fields_bytes)) {
      return;
    }
  }

  ScanLayout layout{.model_field = info.model_field,
                    .version_field = info.model_field == 1 ? 2 : 0,
                    .infer_fields = info.scan_prefix,
                    .stop_field = info.scan_prefix ? 5 : 0};
  std::span<const std::uint8_t> body;
  bool body_complete = complete;
  if (prefix.compressed) {
    const Encoding encoding = parse_encoding(request_headers_.find("grpc-encoding"));
    if (encoding == Encoding::kIdentity) {
      return reply_local(GrpcCode::kInternal,
                         "infergate: compressed message without a grpc-encoding header");
    }
    if (encoding == Encoding::kUnsupported) {
      return reply_local(GrpcCode::kUnimplemented,
                         "infergate: grpc-encoding '" +
                             std::string(request_headers_.find("grpc-encoding")) +
                             "' is not supported (gzip, deflate)");
    }
    if (!inflater_) inflater_ = std::make_unique<PrefixInflater>();
    // Feed the compressed bytes not yet consumed; stop inflating once enough is out.
    const size_t from = inflater_->consumed();
    scratch_.resize(available - from);
    request_.copy_out(kGrpcPrefixBytes + from,
                      {reinterpret_cast<std::uint8_t*>(scratch_.data()), scratch_.size()});
    // Inflated only as far as the scan needs, never past the cap that applies.
    const size_t want =
        whole_needed
            ? options.max_reorder_buffer_bytes
            : std::min<size_t>(options.max_routing_fields_bytes,
                               std::max(kInitialInflateBytes, 2 * inflater_->output().size()));
    if (!inflater_->feed({reinterpret_cast<const std::uint8_t*>(scratch_.data()), scratch_.size()},
                         want)) {
      return reply_local(
          GrpcCode::kInternal,
          std::string("infergate: cannot inflate the request: ") + inflater_->error());
    }
    body = {reinterpret_cast<const std::uint8_t*>(inflater_->output().data()),
            inflater_->output().size()};
    body_complete = inflater_->finished();
    if (complete && !body_complete && inflater_->consumed() == available) {
      return reply_local(GrpcCode::kInternal,
                         "infergate: compressed message ends before its compressed stream");
    }
  } else {
    body = request_.contiguous(kGrpcPrefixBytes, available);
    if (body.size() != available) {
      scratch_.resize(available);
      request_.copy_out(kGrpcPrefixBytes,
                        {reinterpret_cast<std::uint8_t*>(scratch_.data()), scratch_.size()});
      body = {reinterpret_cast<const std::uint8_t*>(scratch_.data()), scratch_.size()};
    }
  }

  const ScanResult result = scan_request(body, body_complete, layout);
  // What the scan has seen, inflated or not; the caps apply to it.
  const size_t seen = body.size();
  switch (result.status) {
    case ScanStatus::kDone:
      return dispatch(result.view);
    case ScanStatus::kMalformed:
      return reply_local(GrpcCode::kInternal, "infergate: malformed " + method_label(method_) +
                                                  " request: " + result.error);
    case ScanStatus::kNeedWhole:
      need_whole_ = true;
      if (prefix.length > options.max_reorder_buffer_bytes ||
          (!body_complete && seen >= options.max_reorder_buffer_bytes)) {
        return refuse_over_cap(
            method_label(method_) + " request, out of canonical field order, and its bytes",
            "limits.max_reorder_bytes", options.max_reorder_buffer_bytes);
      }
      return;
    case ScanStatus::kNeedMore:
      if (seen >= options.max_routing_fields_bytes) {
        return refuse_over_cap("the " + method_label(method_) +
                                   " request's fields before its "
                                   "first tensor (model, version, id, parameters)",
                               "limits.max_routing_fields_bytes", options.max_routing_fields_bytes);
      }
      // Rescan once the prefix has doubled, not on every frame.
      next_scan_at_ = std::max<size_t>(2 * available, available + 4096);
      if (prefix.compressed && inflater_->consumed() < available) {
        next_scan_at_ = 0;  // inflating stopped early: there is more to inflate now
        return scan_first_message();
      }
      return;
  }
}

void ProxyStream::dispatch(const RequestView& view) {
  enter(Phase::kAdmission);
  fleet_ = worker_.fleet();
  const MethodInfo& info = method_info(method_);
  if (info.handling == Handling::kFleetAnswer || info.handling == Handling::kFanOut) {
    std::string message;
    if (!whole_message(message)) return;
    return info.handling == Handling::kFleetAnswer ? answer_from_fleet(message) : fan_out(message);
  }
  model_ = std::string(view.model_name);
  version_ = std::string(view.model_version);
  // Counted by model for autoscaling, if the fleet knows the model or routing.models
  // lists it (a bounded label set).
  const int slot = (fleet_ && fleet_->known(model_)) || listed_model(model_)
                       ? static_cast<int>(worker_.stats().model_slot(model_))
                       : -1;
  if (slot != model_slot_) {
    set_load(Load::kNone);
    model_slot_ = slot;
  }
  set_load(Load::kWaiting);
  // Kept (without views into the request bytes) in case the request has to wait.
  pending_sequence_text_ = std::string(view.sequence.text);
  pending_view_ = RequestView{.sequence = view.sequence,
                              .sequence_start = view.sequence_start,
                              .sequence_end = view.sequence_end,
                              .priority = view.priority};
  pending_view_.sequence.text = pending_sequence_text_;
  if (per_message()) pending_id_ = std::string(view.id.substr(0, kMaxKeptIdBytes));
  if (info.scan_prefix && !admit_request()) return;
  route_admitted();
}

void ProxyStream::route_admitted() {
  if (method_info(method_).scan_prefix && pending_view_.sequence.present()) {
    return route_sequence(pending_view_);
  }
  route_by_model(pending_view_);
}

void ProxyStream::resume_routing() {
  if (!parked_) return;  // it stopped waiting (a deadline) after it was listed
  parked_ = false;
  const bool awaited_model = awaiting_model_;
  awaiting_model_ = false;
  waited_ += worker_.now() - wait_start_;
  if (down_ == nullptr || phase_ == Phase::kAnswered) return;
  fleet_ = worker_.fleet();  // the newest view: backends may have come or gone
  // Admitted again after a wait for a model (it gave its grant back); on_admission()
  // routes it if it has to queue.
  if (awaited_model && method_info(method_).scan_prefix && !admit_request()) return;
  route_admitted();
}

void ProxyStream::route_by_model(const RequestView& view) {
  (void)view;
  if (per_message()) {
    if (const int home = home_of(); home >= 0) return start_attempt(home);
  }
  const routing::PickResult r = worker_.picker().pick(
      *fleet_, {.model = model_, .version = version_, .exclude = {tried_.data(), tried_.size()}});
  if (r.status == routing::PickResult::Status::kFull) return park_for_backend();
  if (r.status != routing::PickResult::Status::kPicked) return reply_no_backend(r.status);
  if (per_message()) {
    const std::uint32_t id = fleet_->backends()[r.position].id;
    auto it = std::find_if(homes_.begin(), homes_.end(), [&](const Home& h) {
      return h.model == model_ && h.version == version_;
    });
    if (it == homes_.end()) {
      homes_.push_back({model_, version_, id});
    } else {
      it->backend_id = id;
    }
  }
  worker_.retry_budget().on_request(worker_.now());
  start_attempt(r.position);
}

void ProxyStream::route_sequence(const RequestView& view) {
  sequence_ = true;  // its state lives on one backend: never retried elsewhere
  routing::AffinityTable& table = *worker_.shared().affinity;
  const bool numeric = view.sequence.kind == SequenceId::Kind::kNumber;
  const std::string key =
      routing::AffinityTable::key(model_, numeric, view.sequence.number, view.sequence.text);
  const std::string shown =
      numeric ? std::to_string(view.sequence.number) : "'" + clip(view.sequence.text) + "'";
  const auto now = worker_.now();
  std::optional<routing::AffinityTable::Entry> entry = table.find(key, now);
  if (entry && !entry->lost) {
    const int pos = fleet_->find(entry->backend_id);
    const bool serving =
        pos >= 0 && (fleet_->backends()[pos].routable() ||
                     fleet_->backends()[pos].state == routing::BackendState::kDraining);
    if (serving && !view.sequence_start) {
      const routing::BackendInfo& owner = fleet_->backends()[pos];
      // Its backend is full: wait for a slot there (nowhere else has the state).
      if (!owner.runtime->try_acquire(owner.max_inflight)) return park_for_backend();
      if (view.sequence_end) table.erase(key);
      return start_attempt(pos, /*reserved=*/true);
    }
    if (!serving) entry->lost = true;
  }
  if (entry && entry->lost && !view.sequence_start) {
    if (view.sequence_end) table.erase(key);
    const std::string lost = "infergate: sequence " + shown + " of model '" + clip(model_) +
                             "' lived on backend " + entry->backend_name +
                             ", which is no longer serving; the sequence's state is lost";
    if (answer_in_stream(lost)) return;
    return reply_local(GrpcCode::kUnavailable, lost);
  }
  // A new sequence (or a restart), or one this gateway has not seen (its start went through
  // another replica): by rendezvous hash of its id, so that every replica with the same
  // fleet picks the same backend (or the least loaded, with sequence_placement load);
  // then pinned here.
  const routing::PickRequest request{.model = model_, .version = version_};
  const routing::PickResult r = worker_.routing().sequence_hash
                                    ? routing::Picker::pick_by_hash(*fleet_, request, key)
                                    : worker_.picker().pick(*fleet_, request);
  if (r.status == routing::PickResult::Status::kFull) return park_for_backend();
  if (r.status != routing::PickResult::Status::kPicked) return reply_no_backend(r.status);
  const routing::BackendInfo& b = fleet_->backends()[r.position];
  if (view.sequence_end) {
    table.erase(key);
  } else if (!table.assign(key, b.id, b.name, now)) {
    worker_.stats().count_refusal("limits.max_sequence_table_bytes");
    const std::string full = "infergate: sequence " + shown + " of model '" + clip(model_) +
                             "' refused: the live sequences exceed "
                             "limits.max_sequence_table_bytes (" +
                             std::to_string(table.max_bytes()) + " bytes)";
    if (answer_in_stream(full)) return;
    return reply_local(GrpcCode::kResourceExhausted, full);
  }
  start_attempt(r.position);
}

std::string ProxyStream::no_backend_message(routing::PickResult::Status status,
                                            std::string_view suffix) const {
  const std::string what =
      "model '" + clip(model_) + "'" + (version_.empty() ? "" : " version " + clip(version_));
  return (status == routing::PickResult::Status::kNotFound
              ? "infergate: no backend serves " + what
              : "infergate: no healthy backend has " + what + " ready") +
         std::string(suffix);
}

void ProxyStream::reply_no_backend(routing::PickResult::Status status) {
  const MethodInfo& info = method_info(method_);
  if (info.handling == Handling::kForwardAny || model_.empty()) {
    if (answer_in_stream("infergate: no healthy backend")) return;
    return reply_local(GrpcCode::kUnavailable, "infergate: no healthy backend");
  }
  if (worker_.routing().wait_for_backend) return await_backend(status);
  const std::string message = no_backend_message(status);
  if (answer_in_stream(message)) return;
  reply_local(status == routing::PickResult::Status::kNotFound ? GrpcCode::kNotFound
                                                               : GrpcCode::kUnavailable,
              message);
}

bool ProxyStream::listed_model(std::string_view model) const {
  const std::vector<std::string>& listed = worker_.routing().models;
  return std::find(listed.begin(), listed.end(), model) != listed.end();
}

void ProxyStream::await_backend(routing::PickResult::Status status) {
  if (parked_) return;
  parked_ = true;
  awaiting_model_ = true;
  awaiting_status_ = status;
  wait_start_ = worker_.now();
  // A stream that tries again and still finds none keeps its place in time.
  if (awaiting_since_ == std::chrono::steady_clock::time_point{}) awaiting_since_ = wait_start_;
  // The wait may be long (a pod starting): the request gives back what admission granted
  // it, so requests for served models go on, and asks again when a backend joins.
  release_admission();
  worker_.await_model(this, link(), ++wait_);
  release_connection_window();
}

const routing::BackendInfo* ProxyStream::backend() const {
  if (!fleet_ || at_.position < 0) return nullptr;
  return &fleet_->backends()[static_cast<size_t>(at_.position)];
}

std::string ProxyStream::backend_label() const {
  const routing::BackendInfo* b = backend();
  return b == nullptr ? "?" : b->name + " (" + b->address + ")";
}

void ProxyStream::start_attempt(int position, bool reserved) {
  if (position < 0 || static_cast<size_t>(position) >= fleet_->backends().size()) {
    return park_for_backend();  // never expected (the picker says kFull instead); safe
  }
  if (per_message()) return forward_message(position, reserved);
  const routing::BackendInfo& b = fleet_->backends()[static_cast<size_t>(position)];
  // Another worker may have taken the last slot since the pick.
  if (!reserved && !b.runtime->try_acquire(b.max_inflight)) return park_for_backend();
  enter(Phase::kForwarding);
  at_.position = position;
  at_.runtime = b.runtime;
  parked_since_ = {};
  awaiting_since_ = {};
  at_.start = at_.progress_at = worker_.now();
  tried_.push_back(b.id);
  if (tried_.size() == 1) widen_request_window();
  const MethodInfo& info = method_info(method_);
  at_.retain = !sequence_ && !info.client_streaming && worker_.routing().retries > 0 &&
               static_cast<int>(tried_.size()) <= worker_.routing().retries &&
               worker_.routing().retry_buffer_bytes > 0;
  submit_upstream();
}

void ProxyStream::widen_request_window() {
  // A request larger than the stream window, on its way to a backend: the client may
  // send the whole message (up to frontend.max_stream_window) without waiting for the
  // backend to take each half window first. Not while the buffers are short.
  if (down_ == nullptr || request_ended_ || request_.size() < kGrpcPrefixBytes) return;
  std::uint8_t raw[kGrpcPrefixBytes];
  request_.copy_out(0, raw);
  GrpcPrefix prefix;
  if (!decode_grpc_prefix(raw, prefix)) return;
  const std::uint32_t window =
      widened_window(kGrpcPrefixBytes + std::uint64_t{prefix.length}, request_window_);
  if (window == 0) return;
  down_->widen_window(down_id_, window);
  down_->flush_later();
}

void ProxyStream::widen_response_window(std::uint64_t message) {
  // The same for a large answer: the backend may send all of it (up to
  // max_stream_window) while the client reads at its own pace.
  if (at_.up == nullptr) return;
  if (const std::uint32_t window = widened_window(message, at_.response_window); window != 0) {
    at_.up->widen_window(at_.up_id, window);
  }
}

std::uint32_t ProxyStream::widened_window(std::uint64_t message, WidenedWindow& w) {
  const DataPlaneOptions& o = worker_.options();
  if (message <= o.stream_window_bytes || o.max_stream_window_bytes <= o.stream_window_bytes) {
    return 0;
  }
  const auto window =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(message, o.max_stream_window_bytes));
  const std::uint64_t growth = window - o.stream_window_bytes;
  if (BufferBudget* budget = worker_.blocks().budget(); budget != nullptr) {
    w.reserved = BudgetReservation::take(*budget, growth);
    if (!w.reserved) return 0;
  }
  w.growth = growth;
  return window;
}

void ProxyStream::finish_attempt(bool failed, bool counts) {
  at_.response_window.end();  // the backend sends no more on this attempt
  if (!at_.runtime) return;
  if (at_.overdue) {
    at_.overdue = false;
    at_.runtime->overdue.fetch_sub(1, std::memory_order_relaxed);
  }
  const routing::BackendInfo* b = backend();
  release_slot(*at_.runtime, b == nullptr ? 0 : b->max_inflight);
  if (counts && b != nullptr) count_outcome(*at_.runtime, b->id, failed);
  at_.runtime.reset();
}

void ProxyStream::release_slot(routing::BackendRuntime& runtime, std::uint32_t max_inflight) {
  runtime.outstanding.fetch_sub(1, std::memory_order_relaxed);
  // A capped backend's slot is free: one parked stream may go, here if any waits here
  // (after this event, never inside it), else on another worker.
  if (max_inflight != 0 && worker_.shared().parked->load(std::memory_order_relaxed) > 0) {
    if (worker_.parked_here() > 0) {
      Worker* worker = &worker_;
      boost::asio::post(worker_.io(), [worker] { worker->wake_one_parked(); });
    } else if (worker_.shared().wake_parked_elsewhere) {
      worker_.shared().wake_parked_elsewhere(&worker_);
    }
  }
}

void ProxyStream::count_outcome(routing::BackendRuntime& runtime, std::uint32_t id, bool failed) {
  std::atomic<std::uint32_t>& streak = runtime.consecutive_failures;
  if (failed) {
    const std::uint32_t n = streak.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n == worker_.routing().consecutive_failures && worker_.shared().report_outliers) {
      worker_.shared().report_outliers(id);
    }
  } else if (streak.load(std::memory_order_relaxed) != 0) {
    streak.store(0, std::memory_order_relaxed);
  }
}

bool ProxyStream::retry_allowed() const {
  return at_.retain && down_ != nullptr && !response_started_ && !sequence_ &&
         static_cast<int>(tried_.size()) <= worker_.routing().retries;
}

bool ProxyStream::retry(const std::string& reason) {
  if (!retry_allowed()) return false;
  const routing::PickResult r = worker_.picker().pick(
      *fleet_, {.model = model_, .version = version_, .exclude = {tried_.data(), tried_.size()}});
  if (r.status != routing::PickResult::Status::kPicked) return false;
  if (!worker_.retry_budget().try_retry(worker_.now())) return false;
  worker_.stats().retries_total.add(1);
  if (const int failed = fleet_->find(tried_.back()); failed >= 0) {
    fleet_->backends()[failed].runtime->stats.retries.fetch_add(1, std::memory_order_relaxed);
  }
  (void)reason;
  // The request starts over from its first byte on a fresh stream, as a new attempt;
  // the failed one's answer and counters go with it.
  request_.prepend(std::move(at_.retained));
  // In place (no allocation per retry): the old attempt is destroyed, a new one made.
  std::destroy_at(&at_);
  std::construct_at(&at_);
  response_sent_ = 0;
  status_known_ = false;  // the failed attempt's status is not the exchange's
  status_ = GrpcCode::kUnknown;
  start_attempt(r.position);
  return true;
}

}  // namespace infergate::gateway
