// ProxyStream: ModelStreamInfer routed per message. Each message is routed as a unary
// request would be and moved, by reference, to the StreamLeg of its backend; the legs'
// answers are merged back into the client's stream at message boundaries. What a leg
// loses is answered in the stream, as Triton answers a request it cannot serve, and the
// stream goes on.
#include <algorithm>
#include <string>

#include "gateway/stream/admission_gate.h"
#include "gateway/stream/proxy_stream.h"
#include "gateway/worker.h"
#include "inference/grpc_service.pb.h"

namespace infergate::gateway {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Reads a protobuf varint at `p`; false if it does not end before `end`.
bool read_varint(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& out) {
  out = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    const std::uint8_t b = *p++;
    out |= std::uint64_t{b & 0x7fU} << shift;
    if ((b & 0x80U) == 0) return true;
  }
  return false;
}

// The request id an answer carries (ModelStreamInferResponse.infer_response.id), from the
// first bytes of its message; nullopt when those bytes do not reach it (fields in
// another order, or a long error message first).
std::optional<std::string_view> answer_id(std::span<const std::uint8_t> head) {
  const std::uint8_t* p = head.data();
  const std::uint8_t* end = p + head.size();
  bool nested = false;
  while (p < end) {
    std::uint64_t tag = 0;
    std::uint64_t length = 0;
    if (!read_varint(p, end, tag) || (tag & 7U) != 2 || !read_varint(p, end, length)) break;
    const std::uint64_t field = tag >> 3;
    if (!nested && field == 2) {
      nested = true;  // infer_response: its fields follow
      end = std::min(end, p + std::min<std::uint64_t>(length, static_cast<std::uint64_t>(end - p)));
      continue;
    }
    if (static_cast<std::uint64_t>(end - p) < length) break;
    if (nested && field == 3) {
      return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(length));
    }
    if (nested && field > 3) break;
    p += length;
  }
  return std::nullopt;
}

std::string format_duration(std::chrono::nanoseconds d) {
  const auto ms = duration_cast<milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

}  // namespace

// ------------------------------------------------------------------ requests

void ProxyStream::append_leg_headers(std::vector<nghttp2_nv>& out) const {
  request_headers_.append_forwardable(out, credential_header());
  // The client is told no grpc-encoding for the stream (the gateway's own HEADERS): the
  // backends must not compress what they answer.
  set_nv(out, "grpc-accept-encoding", "identity");
}

std::uint64_t ProxyStream::max_header_bytes() const { return worker_.options().max_header_bytes; }

int ProxyStream::home_of() const {
  for (const Home& h : homes_) {
    if (h.model != model_ || h.version != version_) continue;
    const int pos = fleet_->find(h.backend_id);
    if (pos < 0) return -1;
    const auto& serving = fleet_->candidates(model_, version_);
    const bool ready =
        std::find(serving.begin(), serving.end(), static_cast<std::uint32_t>(pos)) != serving.end();
    return ready ? pos : -1;
  }
  return -1;
}

StreamLeg* ProxyStream::leg_for(const routing::BackendInfo& b) {
  for (const auto& leg : legs_) {
    if (leg->backend_id() == b.id && leg->usable()) return leg.get();
  }
  auto leg = std::make_unique<StreamLeg>(*this, worker_.blocks(), b);
  if (!worker_.connector().open(b.id, *leg)) return nullptr;
  leg->progress_at = worker_.now();
  legs_.push_back(std::move(leg));
  return legs_.back().get();
}

void ProxyStream::forward_message(int position, bool reserved) {
  const routing::BackendInfo& b = fleet_->backends()[static_cast<size_t>(position)];
  // Another worker may have taken the last slot since the pick.
  if (!reserved && !b.runtime->try_acquire(b.max_inflight)) return park_for_backend();
  parked_since_ = {};
  awaiting_since_ = {};
  StreamLeg* leg = leg_for(b);
  if (leg == nullptr) {
    release_slot(*b.runtime, b.max_inflight);
    const std::string why =
        "infergate: backend " + b.name + " (" + b.address + "): no connection would take a stream";
    if (answer_in_stream(why)) return;
    return reply_local(GrpcCode::kUnavailable, why);
  }
  std::uint8_t raw[kGrpcPrefixBytes];
  GrpcPrefix prefix;
  request_.copy_out(0, raw);
  decode_grpc_prefix(raw, prefix);  // scanned before it was routed
  StreamLeg::Pending& p = leg->pending().emplace_back();
  p.id = pending_id_;
  p.sent_at = worker_.now();
  p.holds_slot = true;
  if (admission_ == Admission::kAdmitted) {
    // The message's ticket goes with it, given back when its answer comes.
    p.admitted = true;
    p.ticket = ticket_;
    admission_ = Admission::kNone;
  }
  enter(Phase::kForwarding);
  forwarding_to_ = leg;
  forward_left_ = kGrpcPrefixBytes + std::uint64_t{prefix.length};
  feed_leg();
}

void ProxyStream::feed_leg() {
  StreamLeg& leg = *forwarding_to_;
  const size_t n = static_cast<size_t>(std::min<std::uint64_t>(forward_left_, request_.size()));
  if (n != 0) {
    request_.transfer(n, leg.outgoing());
    forward_left_ -= n;
    leg.resume();
  }
  if (forward_left_ == 0) {
    forwarding_to_ = nullptr;
    return next_message();
  }
  if (request_ended_) {
    reply_local(GrpcCode::kInternal, "infergate: request ends inside a message");
  }
}

void ProxyStream::forward_more() {
  // A message completed here is followed by the next in try_route's loop, not by a
  // post per message.
  routing_loop_ = true;
  route_again_ = false;
  feed_leg();
  routing_loop_ = false;
  if (route_again_) try_route();
}

bool ProxyStream::routing_blocked() const {
  return own_unsent() > kMaxUnsentStreamAnswersBytes ||
         (per_message() && messages_in_flight() >= worker_.options().max_stream_messages_in_flight);
}

void ProxyStream::maybe_resume_routing() {
  if (!routing_paused_ || routing_blocked()) return;
  routing_paused_ = false;
  route_next_message();
}

size_t ProxyStream::messages_in_flight() const {
  size_t n = 0;
  for (const auto& leg : legs_) n += leg->pending().size();
  return n;
}

void ProxyStream::next_message() {
  enter(Phase::kRouting);
  model_.clear();
  version_.clear();
  sequence_ = false;
  need_whole_ = false;
  next_scan_at_ = 0;
  inflater_.reset();
  pending_id_.clear();
  unrouted_from_ = request_received_ - request_.size() + skip_request_bytes_;
  if (down_ != nullptr) down_->flush_later();
  route_next_message();
}

void ProxyStream::end_of_messages() {
  for (const auto& leg : legs_) leg->half_close();
  merge_answers();
}

void ProxyStream::on_leg_sent(size_t bytes) {
  legs_moved_ += bytes;
  worker_.stats().request_bytes_total.add(bytes);
  credit_request(request_received_ - request_held());
}

std::uint64_t ProxyStream::request_held() const {
  std::uint64_t held = request_.size();
  for (const auto& leg : legs_) held += leg->outgoing().size();
  return held;
}

// ------------------------------------------------------------------ answers

void ProxyStream::on_leg_data(StreamLeg& leg) {
  legs_moved_ += 1;
  if (down_ == nullptr || phase_ == Phase::kAnswered) {
    leg.consume(leg.incoming().size());
    leg.incoming().clear();
    return;
  }
  merge_answers();
}

void ProxyStream::queue_own_answer(const google::protobuf::Message& message) {
  // Inside a backend's answer it waits for the boundary (merge_answers).
  if (writer_ == nullptr && own_answers_.empty()) {
    append_response_message(message, response_);
    last_own_end_ = response_sent_ + response_.size();
  } else {
    append_response_message(message, own_answers_);
  }
  if (!response_started_) {
    send_own_headers();
    gateway_headers_ = true;
  }
  down_->resume_body(down_id_);
  down_->flush_later();
}

bool ProxyStream::take_answer(StreamLeg& leg) {
  ByteQueue& in = leg.incoming();
  if (leg.message_left == 0) {
    // A new answer message: its prefix, and enough of its head to find its id.
    std::uint8_t raw[kGrpcPrefixBytes];
    GrpcPrefix prefix;
    if (!in.copy_out(0, raw)) return false;
    if (!decode_grpc_prefix(raw, prefix)) {
      // Nothing after it can be framed: the leg ends, and its messages are answered in
      // the stream.
      leg.cancel("backend " + leg.label() + " sent a malformed gRPC message");
      leg.consume(in.size());
      in.clear();
      return false;
    }
    if (!leg.open() && in.size() < kGrpcPrefixBytes + std::uint64_t{prefix.length}) {
      // Cut off by the leg's end: never whole. (Its request got an in-stream error.)
      in.clear();
      return false;
    }
    const size_t head = std::min<size_t>(prefix.length, kMaxAnswerHeadBytes);
    if (in.size() < kGrpcPrefixBytes + head) return false;
    scratch_.resize(head);
    in.copy_out(kGrpcPrefixBytes,
                {reinterpret_cast<std::uint8_t*>(scratch_.data()), scratch_.size()});
    settle(leg, {reinterpret_cast<const std::uint8_t*>(scratch_.data()), scratch_.size()});
    leg.message_left = kGrpcPrefixBytes + std::uint64_t{prefix.length};
    writer_ = &leg;
  }
  const size_t n = static_cast<size_t>(std::min<std::uint64_t>(leg.message_left, in.size()));
  if (n == 0) return false;
  in.transfer(n, response_);
  leg.consume(n);
  leg.message_left -= n;
  if (leg.message_left == 0) writer_ = nullptr;
  return true;
}

void ProxyStream::merge_answers() {
  if (down_ == nullptr || phase_ == Phase::kAnswered) return;
  const std::uint64_t cap = worker_.options().stream_window_bytes;
  bool moved = false;
  while (response_.size() < cap) {
    if (writer_ != nullptr) {
      if (!take_answer(*writer_)) break;
      moved = true;
      continue;
    }
    if (!own_answers_.empty()) {
      own_answers_.transfer(own_answers_.size(), response_);
      last_own_end_ = response_sent_ + response_.size();
      moved = true;
      continue;
    }
    // Whole messages, one leg after another (round robin).
    bool took = false;
    for (size_t i = 0; i < legs_.size() && !took; ++i) {
      StreamLeg& leg = *legs_[(next_writer_ + i) % legs_.size()];
      if (leg.incoming().size() >= kGrpcPrefixBytes && take_answer(leg)) {
        next_writer_ = (next_writer_ + i + 1) % legs_.size();
        took = true;
      }
    }
    if (!took) break;
    moved = true;
  }
  if (phase_ == Phase::kAnswered) return;  // a malformed answer ended it
  // Legs that are over and whose answers are all merged go.
  std::erase_if(legs_, [&](const std::unique_ptr<StreamLeg>& leg) {
    return !leg->open() && leg->incoming().size() < kGrpcPrefixBytes && leg.get() != writer_ &&
           leg.get() != forwarding_to_ && leg->pending().empty();
  });
  next_writer_ = legs_.empty() ? 0 : next_writer_ % legs_.size();
  if (moved) {
    if (!response_started_) {
      send_own_headers();
      gateway_headers_ = true;
    }
    down_->resume_body(down_id_);
    down_->flush_later();
  }
  // The stream ends, OK, once the client has half-closed and everything it sent is
  // answered.
  if (request_ended_ && request_.empty() && phase_ == Phase::kRouting && legs_.empty() &&
      own_answers_.empty() && writer_ == nullptr) {
    if (!response_started_) return reply_local(GrpcCode::kOk, "");
    status_ = GrpcCode::kOk;
    status_known_ = true;
    local_trailers_ = {{"grpc-status", "0"}};
    enter(Phase::kAnswered);
    down_->resume_body(down_id_);
    down_->flush_later();
  }
}

void ProxyStream::settle(StreamLeg& leg, std::span<const std::uint8_t> head) {
  auto& pending = leg.pending();
  if (pending.empty()) return;  // a decoupled model's further answers
  auto it = pending.begin();
  if (const std::optional<std::string_view> id = answer_id(head)) {
    const std::string_view kept = id->substr(0, kMaxKeptIdBytes);
    it = std::find_if(pending.begin(), pending.end(),
                      [&](const StreamLeg::Pending& p) { return p.id == kept; });
    if (it == pending.end()) it = pending.begin();
  }
  release_message(*it, leg, /*answered=*/true);
  pending.erase(it);
  maybe_resume_routing();
}

void ProxyStream::release_message(StreamLeg::Pending& p, StreamLeg& leg, bool answered) {
  if (p.holds_slot && leg.runtime()) {
    p.holds_slot = false;
    release_slot(*leg.runtime(), leg.max_inflight());
    if (answered) {
      const std::chrono::nanoseconds took = worker_.now() - p.sent_at;
      leg.runtime()->stats.record_answer(0, took);
      leg.runtime()->observe_latency(static_cast<std::uint64_t>(took.count()));
    }
  }
  if (p.admitted) {
    p.admitted = false;
    if (AdmissionGate* gate = worker_.shared().admission.get()) gate->release(p.ticket);
  }
}

void ProxyStream::on_leg_closed(StreamLeg& leg) {
  const bool failed = !leg.failure().empty();
  const bool client_gone = down_ == nullptr || phase_ == Phase::kAnswered;
  if (failed && !client_gone && leg.runtime()) {
    leg.runtime()->stats.transport_failures.fetch_add(1, std::memory_order_relaxed);
    count_outcome(*leg.runtime(), leg.backend_id(), true);
  }
  const std::string why = "infergate: " + leg.failure();
  if (&leg == forwarding_to_) {
    // The message being sent there is lost with it: the rest of it is dropped as it
    // comes, and routing goes on after it.
    forwarding_to_ = nullptr;
    skip_request_bytes_ = forward_left_;
    forward_left_ = 0;
    skip_refused_message();
    if (!client_gone) next_message();
  }
  const bool statuses = request_headers_.find("triton_grpc_error") == "true";
  for (StreamLeg::Pending& p : leg.pending()) {
    release_message(p, leg, false);
    if (!failed || client_gone || statuses) continue;
    // Its answer will never come: the client gets an in-stream error in its place.
    inference::ModelStreamInferResponse r;
    r.set_error_message(why);
    r.mutable_infer_response()->set_id(p.id);
    queue_own_answer(r);
  }
  leg.pending().clear();
  leg.outgoing().clear();
  if (!client_gone) maybe_resume_routing();
  if (client_gone) {
    leg.incoming().clear();
    return maybe_destroy();
  }
  if (&leg == writer_ && leg.incoming().size() < leg.message_left) {
    // It ended inside an answer: nothing valid can follow in the client's stream (it is
    // reset, as writer_ says it is inside a message).
    fail_after_upstream(GrpcCode::kUnavailable, why, NGHTTP2_INTERNAL_ERROR);
    writer_ = nullptr;
    return;
  }
  if (failed && statuses) {
    // The client asked for statuses (triton_grpc_error): the stream ends with one, as
    // Triton ends it at the first error.
    GrpcCode code = GrpcCode::kUnavailable;
    if (leg.backend_status_error()) {
      code = parse_grpc_status(leg.backend_status()).value_or(GrpcCode::kUnknown);
    }
    return fail_after_upstream(code, why, NGHTTP2_INTERNAL_ERROR);
  }
  merge_answers();
}

void ProxyStream::cancel_legs() {
  forwarding_to_ = nullptr;
  for (const auto& leg : legs_) leg->cancel();
}

void ProxyStream::check_legs(std::chrono::steady_clock::time_point now) {
  const std::chrono::nanoseconds idle = worker_.options().upstream_stream_idle_timeout;
  for (const auto& leg : legs_) {
    // A leg is idle only while the backend holds things up: it owes answers and none
    // of them waits here for the client.
    if (!leg->open() || leg->pending().empty() || !leg->incoming().empty()) {
      leg->progress_at = now;
      continue;
    }
    if (leg->progress() != leg->last_progress) {
      leg->last_progress = leg->progress();
      leg->progress_at = now;
    } else if (now - leg->progress_at >= idle) {
      worker_.stats().count_expiry(static_cast<size_t>(Expiry::kBackendIdle));
      leg->cancel("backend " + leg->label() + " sent nothing for " + format_duration(idle) +
                  " (upstream.stream_idle_timeout)");
    }
  }
}

}  // namespace infergate::gateway
