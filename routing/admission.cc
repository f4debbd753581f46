#include "routing/admission.h"

#include <algorithm>

namespace infergate::routing {

std::string_view limit_name(Limit limit) {
  switch (limit) {
    case Limit::kNone:
      return "none";
    case Limit::kMaxJobs:
      return "max_jobs";
    case Limit::kMaxInflight:
      return "max_inflight";
    case Limit::kPerJobInflight:
      return "per_job_max_inflight";
    case Limit::kBytesInFlight:
      return "max_bytes_in_flight";
    case Limit::kLinkBandwidth:
      return "link_bandwidth";
    case Limit::kQueueFull:
      return "max_queue";
    case Limit::kQueueTimeout:
      return "queue_timeout";
    case Limit::kDeadline:
      return "deadline";
  }
  return "none";
}

AdmissionController::AdmissionController(AdmissionLimits limits) : limits_(limits) {}

void AdmissionController::set_limits(const AdmissionLimits& limits) { limits_ = limits; }

bool AdmissionController::active(const Job& job, TimePoint now) const {
  return job.inflight > 0 || !job.waiting.empty() ||
         now - job.last_active < limits_.job_idle_timeout;
}

size_t AdmissionController::active_jobs(TimePoint now) const {
  size_t n = 0;
  for (const auto& [name, job] : jobs_) n += active(job, now);
  return n;
}

void AdmissionController::forget_idle(TimePoint now) {
  if (now - last_forget_ < std::chrono::seconds(1)) return;
  last_forget_ = now;
  std::erase_if(jobs_, [&](const auto& kv) { return !active(kv.second, now); });
}

bool AdmissionController::touch_job(std::string_view name, TimePoint now) {
  forget_idle(now);
  auto it = jobs_.find(std::string(name));
  if (it != jobs_.end() && active(it->second, now)) {
    it->second.last_active = now;
    return true;
  }
  if (limits_.max_jobs != 0 && active_jobs(now) >= limits_.max_jobs) return false;
  Job& job = jobs_[std::string(name)];
  job.last_active = now;
  return true;
}

void AdmissionController::refill(TimePoint now) {
  if (limits_.link_bytes_per_second == 0) return;
  const double burst = limits_.link_burst_bytes != 0
                           ? static_cast<double>(limits_.link_burst_bytes)
                           : static_cast<double>(limits_.link_bytes_per_second) / 10;
  if (!bucket_started_) {
    bucket_started_ = true;
    tokens_ = burst;
    refilled_ = now;
    return;
  }
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  if (elapsed <= 0) return;
  tokens_ = std::min(burst, tokens_ + elapsed * static_cast<double>(limits_.link_bytes_per_second));
  refilled_ = now;
}

double AdmissionController::tokens(TimePoint now) {
  refill(now);
  return tokens_;
}

Limit AdmissionController::blocking_limit(const Job& job, const Request& r, TimePoint now) {
  if (limits_.per_job_max_inflight != 0 && job.inflight >= limits_.per_job_max_inflight) {
    return Limit::kPerJobInflight;
  }
  if (limits_.max_inflight != 0 && inflight_ >= limits_.max_inflight) return Limit::kMaxInflight;
  // One request larger than the whole budget may still go alone.
  if (limits_.max_bytes_in_flight != 0 && bytes_in_flight_ > 0 &&
      bytes_in_flight_ + r.bytes > limits_.max_bytes_in_flight) {
    return Limit::kBytesInFlight;
  }
  if (limits_.link_bytes_per_second != 0) {
    refill(now);
    // A request goes when the bucket is not in debt; it may then take it below zero,
    // and the next waits until the link has paid for it.
    if (tokens_ < 0) return Limit::kLinkBandwidth;
  }
  return Limit::kNone;
}

void AdmissionController::take(Job& job, const Request& r) {
  ++job.inflight;
  ++inflight_;
  bytes_in_flight_ += r.bytes;
  if (limits_.link_bytes_per_second != 0) tokens_ -= static_cast<double>(r.bytes);
}

AdmissionController::Duration AdmissionController::estimate_wait(Limit limit,
                                                                 const Request& r) const {
  using std::chrono::milliseconds;
  if (limit == Limit::kMaxJobs) return limits_.job_idle_timeout;
  if (limit == Limit::kLinkBandwidth && limits_.link_bytes_per_second != 0) {
    const double deficit = std::max(0.0, -tokens_) + static_cast<double>(r.bytes);
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
        deficit / static_cast<double>(limits_.link_bytes_per_second)));
  }
  return milliseconds(1000);
}

AdmissionController::Decision AdmissionController::admit(const Request& r, TimePoint now) {
  Job& job = jobs_[r.job];
  job.last_active = now;
  const Limit limit = blocking_limit(job, r, now);
  if (limit == Limit::kNone && queued_ == 0) {
    take(job, r);
    return {};
  }
  if (r.deadline <= now) return {Verdict::kRejected, Limit::kDeadline, Duration(0)};
  if (queued_ >= limits_.max_queue) {
    return {Verdict::kRejected, Limit::kQueueFull, estimate_wait(limit, r)};
  }
  job.waiting.emplace_back(r, now);
  ++queued_;
  if (!job.in_ring) {
    job.in_ring = true;
    ring_.push_back(r.job);
  }
  return {Verdict::kQueued, limit == Limit::kNone ? Limit::kMaxInflight : limit, Duration(0)};
}

void AdmissionController::release(const Request& r, TimePoint now) {
  auto it = jobs_.find(r.job);
  if (it != jobs_.end()) {
    if (it->second.inflight > 0) --it->second.inflight;
    it->second.last_active = now;
  }
  if (inflight_ > 0) --inflight_;
  bytes_in_flight_ -= std::min(bytes_in_flight_, r.bytes);
}

bool AdmissionController::cancel(std::uint64_t id) {
  for (auto& [name, job] : jobs_) {
    for (auto it = job.waiting.begin(); it != job.waiting.end(); ++it) {
      if (it->first.id == id) {
        job.waiting.erase(it);
        --queued_;
        return true;
      }
    }
  }
  return false;
}

std::vector<AdmissionController::Outcome> AdmissionController::poll(TimePoint now) {
  std::vector<Outcome> out;
  if (queued_ == 0) return out;
  // Waits that ran out: the client's deadline, or the gateway's queue_timeout.
  for (auto& [name, job] : jobs_) {
    for (auto it = job.waiting.begin(); it != job.waiting.end();) {
      const Request& r = it->first;
      const bool deadline = r.deadline <= now;
      if (deadline || now - it->second >= limits_.queue_timeout) {
        const Limit limit = deadline ? Limit::kDeadline : Limit::kQueueTimeout;
        out.push_back({r.id, false, limit, now - it->second, estimate_wait(limit, r)});
        it = job.waiting.erase(it);
        --queued_;
      } else {
        ++it;
      }
    }
  }
  // Round-robin over jobs: each turn admits one request of the next job that can take
  // one, so a job's burst waits behind the other jobs' requests.
  bool progress = true;
  while (progress && queued_ > 0) {
    progress = false;
    for (size_t turns = ring_.size(); turns > 0 && !ring_.empty(); --turns) {
      const std::string name = ring_.front();
      ring_.pop_front();
      auto it = jobs_.find(name);
      if (it == jobs_.end() || it->second.waiting.empty()) {
        if (it != jobs_.end()) it->second.in_ring = false;
        continue;
      }
      Job& job = it->second;
      auto& [r, since] = job.waiting.front();
      const Limit limit = blocking_limit(job, r, now);
      if (limit != Limit::kNone && limit != Limit::kPerJobInflight) {
        // A gateway-wide limit: this job keeps its turn (a smaller request of another
        // job must not overtake it forever) and nobody else goes this round.
        ring_.push_front(name);
        return out;
      }
      if (limit == Limit::kNone) {
        take(job, r);
        out.push_back({r.id, true, Limit::kNone, now - since, Duration(0)});
        job.waiting.pop_front();
        --queued_;
        progress = true;
      }
      if (job.waiting.empty()) {
        job.in_ring = false;
      } else {
        ring_.push_back(name);
      }
    }
  }
  return out;
}

std::optional<AdmissionController::TimePoint> AdmissionController::next_wake(TimePoint now) const {
  if (queued_ == 0) return std::nullopt;
  std::optional<TimePoint> wake;
  auto consider = [&](TimePoint t) {
    if (!wake || t < *wake) wake = t;
  };
  for (const auto& [name, job] : jobs_) {
    for (const auto& [r, since] : job.waiting) {
      consider(std::min(r.deadline, since + limits_.queue_timeout));
    }
  }
  if (limits_.link_bytes_per_second != 0 && tokens_ < 0) {
    const double seconds = -tokens_ / static_cast<double>(limits_.link_bytes_per_second);
    consider(refilled_ +
             std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds)));
  }
  if (wake && *wake < now) wake = now;
  return wake;
}

}  // namespace infergate::routing
