// ProxyStream: admission control (job cap, concurrency and bandwidth limits, the fair
// queue) and waiting for a slot on a backend at its max_inflight.
#include <algorithm>
#include <optional>
#include <string>

#include "gateway/stream/admission_gate.h"
#include "gateway/stream/proxy_stream.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

using routing::Limit;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

AdmissionGate* gate_of(const Worker& worker) {
  AdmissionGate* gate = worker.shared().admission.get();
  return gate != nullptr && gate->enabled() ? gate : nullptr;
}

std::string format_duration(std::chrono::nanoseconds d) {
  const auto ms = duration_cast<milliseconds>(d).count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

// The "infergate: ..." message naming the limit that refused a request.
std::string refusal(Limit limit, const routing::AdmissionLimits& l, Limit held_by,
                    std::string_view group = {}) {
  switch (limit) {
    case Limit::kGroupJobs: {
      std::uint32_t cap = 0;
      for (const routing::GroupLimits& g : l.groups) {
        if (g.name == group) cap = g.max_jobs;
      }
      return "infergate: too many active jobs of group " + std::string(group) +
             " (limits.groups max_jobs = " + std::to_string(cap) +
             "); this job may start once another of the group's has been idle for " +
             format_duration(l.job_idle_timeout);
    }
    case Limit::kMaxJobs:
      return "infergate: too many active jobs (limits.max_jobs = " + std::to_string(l.max_jobs) +
             "); this job may start once another has been idle for " +
             format_duration(l.job_idle_timeout);
    case Limit::kJobTable:
      return "infergate: too many jobs tracked (limits.max_job_table_bytes = " +
             std::to_string(l.max_job_table_bytes) +
             " bytes, each job its name and 256 bytes); this job may start once another has been "
             "idle for " +
             format_duration(l.job_idle_timeout);
    case Limit::kQueueFull:
      return "infergate: admission queue full (limits.max_queue = " + std::to_string(l.max_queue) +
             "), held back by " + std::string(routing::limit_name(held_by));
    case Limit::kQueueTimeout:
      return "infergate: not admitted within limits.queue_timeout (" +
             format_duration(l.queue_timeout) + ")";
    case Limit::kDeadline:
      return "infergate: the request's deadline passed while it waited for admission";
    default:
      return "infergate: refused by limits." + std::string(routing::limit_name(limit));
  }
}

}  // namespace

Lifeline::Link ProxyStream::link() {
  if (!lifeline_) lifeline_ = std::make_unique<Lifeline>(worker_.io().get_executor());
  return lifeline_->link();
}

bool ProxyStream::authenticate() {
  const RoutingOptions& routing = worker_.routing();
  if (!routing.auth) return true;
  if (routing.allow_unauthenticated_health &&
      (method_ == Method::kServerLive || method_ == Method::kServerReady ||
       method_ == Method::kHealthCheck)) {
    return true;
  }
  const std::string_view header = request_headers_.find("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || !header.starts_with(kBearer)) {
    worker_.stats().auth_failures[auth::failure_index(auth::Failure::kNoToken)].add(1);
    reply_local(GrpcCode::kUnauthenticated,
                "infergate: no bearer token (metadata authorization: Bearer ...)");
    return false;
  }
  const std::string_view bearer = header.substr(kBearer.size());
  // A client sends the same token request after request: the connection remembers the
  // last one accepted (until it expires), so those cost a comparison.
  ClientLeg::CredentialMemo* memo = down_ != nullptr ? down_->credential_memo() : nullptr;
  if (memo != nullptr && memo->checked_by == routing.auth->id() && memo->bearer == bearer &&
      (memo->verdict.valid_until == 0 ||
       memo->verdict.valid_until > std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count())) {
    caller_ = memo->verdict.caller;
    caller_group_ = memo->verdict.group;
    return true;
  }
  auth::Verdict verdict = routing.auth->check(bearer);
  if (!verdict.accepted()) {
    worker_.stats().auth_failures[auth::failure_index(verdict.failure)].add(1);
    reply_local(verdict.denied() ? GrpcCode::kPermissionDenied : GrpcCode::kUnauthenticated,
                "infergate: " + verdict.detail);
    return false;
  }
  caller_ = verdict.caller;
  caller_group_ = verdict.group;
  if (memo != nullptr) *memo = {routing.auth->id(), std::string(bearer), std::move(verdict)};
  return true;
}

std::string ProxyStream::job_name() const {
  const std::string_view named = request_headers_.find(worker_.routing().job_header);
  // A credential (a token, else a verified client certificate) says who the job is, and
  // the header may only narrow it; without one the header names the job, else the IP.
  const std::string& caller = !caller_.empty() ? caller_ : down_->client_subject();
  if (!caller.empty()) return named.empty() ? caller : caller + "/" + std::string(named);
  return named.empty() ? down_->peer() : std::string(named);
}

bool ProxyStream::admit_job() {
  AdmissionGate* gate = gate_of(worker_);
  if (gate == nullptr || down_ == nullptr) return true;
  ticket_.job = job_name();
  ticket_.group = caller_group_;
  const std::optional<Limit> limit = gate->touch_job(ticket_.job, ticket_.group, worker_.io(),
                                                     [this, alive = link()](Limit verdict) {
                                                       if (!alive.alive()) return;
                                                       on_job_verdict(verdict);
                                                       worker_.flush_dirty();
                                                     });
  if (!limit) {
    // A new job that the cluster decides (cluster.redis): routing waits for its verdict.
    job_pending_ = true;
    return false;
  }
  if (*limit == Limit::kNone) return true;
  refuse_job(*limit);
  return false;
}

void ProxyStream::refuse_job(Limit limit) {
  const routing::AdmissionLimits limits = worker_.shared().admission->limits();
  reply_local(GrpcCode::kResourceExhausted, refusal(limit, limits, Limit::kNone, caller_group_),
              duration_cast<milliseconds>(limits.job_idle_timeout));
}

void ProxyStream::on_job_verdict(Limit verdict) {
  if (!job_pending_) return;
  job_pending_ = false;
  if (down_ == nullptr || phase_ == Phase::kAnswered) return;
  if (verdict != Limit::kNone) return refuse_job(verdict);
  try_route();
}

bool ProxyStream::admit_request() {
  AdmissionGate* gate = gate_of(worker_);
  if (gate == nullptr) return true;
  // Charged: the first message's bytes (a stream's later messages are not charged).
  std::uint64_t bytes = request_.size();
  if (request_.size() >= kGrpcPrefixBytes) {
    std::uint8_t raw[kGrpcPrefixBytes];
    request_.copy_out(0, raw);
    GrpcPrefix prefix;
    if (decode_grpc_prefix(raw, prefix)) bytes = kGrpcPrefixBytes + prefix.length;
  }
  ticket_.id = gate->next_id();
  ticket_.bytes = bytes;
  ticket_.deadline = routing::AdmissionController::TimePoint::max();
  if (auto timeout = parse_grpc_timeout(request_headers_.find("grpc-timeout"))) {
    ticket_.deadline = start_ + *timeout;
  }
  // Weak: a waiting callback must not keep the gate alive (the gate holds the callback).
  std::weak_ptr<AdmissionGate> weak_gate = worker_.shared().admission;
  // The gate posts the outcome to this worker, where the link says whether the exchange
  // is still there.
  const AdmissionGate::Decision d = gate->admit(
      ticket_, worker_.io(),
      [this, alive = link(), weak_gate, ticket = ticket_](const AdmissionGate::Outcome& outcome) {
        if (!alive.alive()) {
          // The stream ended while its grant was on the way: give the grant back.
          if (auto gate = weak_gate.lock(); gate && outcome.admitted) gate->release(ticket);
          return;
        }
        on_admission(outcome);
        worker_.flush_dirty();
      });
  switch (d.verdict) {
    case routing::AdmissionController::Verdict::kAdmitted:
      admission_ = Admission::kAdmitted;
      return true;
    case routing::AdmissionController::Verdict::kQueued:
      admission_ = Admission::kQueued;
      wait_start_ = worker_.now();
      release_connection_window();
      return false;
    case routing::AdmissionController::Verdict::kRejected:
      break;
  }
  reply_local(
      d.limit == Limit::kDeadline ? GrpcCode::kDeadlineExceeded : GrpcCode::kResourceExhausted,
      refusal(d.limit, gate->limits(), d.limit), duration_cast<milliseconds>(d.pushback));
  return false;
}

void ProxyStream::on_admission(const routing::AdmissionController::Outcome& outcome) {
  if (admission_ != Admission::kQueued) {
    // It stopped waiting after the grant was made: give the grant back.
    if (outcome.admitted) worker_.shared().admission->release(ticket_);
    return;
  }
  if (!outcome.admitted) {
    admission_ = Admission::kNone;
    AdmissionGate* gate = worker_.shared().admission.get();
    return reply_local(outcome.limit == Limit::kDeadline ? GrpcCode::kDeadlineExceeded
                                                         : GrpcCode::kResourceExhausted,
                       refusal(outcome.limit, gate->limits(), outcome.limit),
                       duration_cast<milliseconds>(outcome.pushback));
  }
  admission_ = Admission::kAdmitted;
  waited_ += worker_.now() - wait_start_;
  if (down_ == nullptr || phase_ == Phase::kAnswered) return release_admission();
  fleet_ = worker_.fleet();
  route_admitted();
}

void ProxyStream::release_admission() {
  AdmissionGate* gate = worker_.shared().admission.get();
  switch (admission_) {
    case Admission::kNone:
      return;
    case Admission::kQueued:
      // Still queued: leave at once. If the grant is already on its way, its callback
      // sees this stream gone and returns it.
      gate->cancel(ticket_.id);
      break;
    case Admission::kAdmitted:
      gate->release(ticket_);
      break;
  }
  admission_ = Admission::kNone;
}

void ProxyStream::park_for_backend() {
  if (parked_) return;
  parked_ = true;
  wait_start_ = worker_.now();
  // A stream woken that parks again keeps its place in time: backend_wait_timeout
  // counts from the first time it found no slot.
  if (parked_since_ == std::chrono::steady_clock::time_point{}) parked_since_ = wait_start_;
  worker_.park(this, link());
  release_connection_window();
}

}  // namespace infergate::gateway
