#include "gateway/admission_gate.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <vector>

namespace infergate::gateway {

AdmissionGate::AdmissionGate(const routing::AdmissionLimits& limits, bool enabled)
    : controller_(limits), enabled_(enabled) {
  timer_ = std::thread([this] { timer_loop(); });
}

AdmissionGate::~AdmissionGate() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  timer_.join();
}

void AdmissionGate::set_limits(const routing::AdmissionLimits& limits, bool enabled) {
  std::unique_lock lock(mutex_);
  controller_.set_limits(limits);
  enabled_.store(enabled, std::memory_order_relaxed);
  poll_and_dispatch(lock);
}

routing::AdmissionLimits AdmissionGate::limits() const {
  std::lock_guard lock(mutex_);
  return controller_.limits();
}

bool AdmissionGate::touch_job(std::string_view job) {
  std::lock_guard lock(mutex_);
  if (controller_.touch_job(job, Clock::now())) return true;
  count_rejection(routing::Limit::kMaxJobs);
  return false;
}

AdmissionGate::Decision AdmissionGate::admit(const Request& request, boost::asio::io_context& io,
                                             Done done) {
  std::unique_lock lock(mutex_);
  const Decision d = controller_.admit(request, Clock::now());
  switch (d.verdict) {
    case routing::AdmissionController::Verdict::kAdmitted:
      ++counters_.admitted_total;
      ++counters_.wait_buckets[0];  // waited 0 s: in the first bucket
      ++counters_.wait_count;
      break;
    case routing::AdmissionController::Verdict::kQueued:
      waiters_.emplace(request.id, Waiter{&io, std::move(done)});
      lock.unlock();
      wake_.notify_one();  // the timer may need to wake earlier now
      break;
    case routing::AdmissionController::Verdict::kRejected:
      count_rejection(d.limit);
      break;
  }
  return d;
}

void AdmissionGate::release(const Request& request) {
  std::unique_lock lock(mutex_);
  controller_.release(request, Clock::now());
  poll_and_dispatch(lock);
}

bool AdmissionGate::cancel(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  if (!controller_.cancel(id)) return false;
  waiters_.erase(id);
  return true;
}

void AdmissionGate::count_rejection(routing::Limit limit) {
  ++counters_.rejected[static_cast<size_t>(limit)];
}

void AdmissionGate::poll_and_dispatch(std::unique_lock<std::mutex>& lock) {
  if (controller_.queued() == 0) return;
  std::vector<Outcome> outcomes = controller_.poll(Clock::now());
  if (outcomes.empty()) return;
  std::vector<std::pair<Waiter, Outcome>> ready;
  ready.reserve(outcomes.size());
  for (const Outcome& o : outcomes) {
    if (o.admitted) {
      ++counters_.admitted_total;
      const double s = std::chrono::duration<double>(o.waited).count();
      const size_t b = static_cast<size_t>(
          std::lower_bound(kWaitBounds.begin(), kWaitBounds.end(), s) - kWaitBounds.begin());
      ++counters_.wait_buckets[b];
      ++counters_.wait_count;
      counters_.wait_sum_s += s;
    } else {
      count_rejection(o.limit);
    }
    auto it = waiters_.find(o.id);
    if (it == waiters_.end()) continue;  // cannot happen: queued ids always have a waiter
    ready.emplace_back(std::move(it->second), o);
    waiters_.erase(it);
  }
  lock.unlock();
  for (auto& [waiter, outcome] : ready) {
    boost::asio::post(*waiter.io,
                      [done = std::move(waiter.done), outcome = outcome] { done(outcome); });
  }
  lock.lock();
}

void AdmissionGate::timer_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    std::optional<Clock::time_point> wake = controller_.next_wake(now);
    // Without anything queued there is nothing to time; check now and then anyway.
    const Clock::time_point until =
        wake ? std::min(*wake, now + std::chrono::seconds(1)) : now + std::chrono::seconds(1);
    wake_.wait_until(lock, until);
    if (stopping_) break;
    poll_and_dispatch(lock);
  }
}

AdmissionGate::Stats AdmissionGate::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = counters_;
  s.inflight = controller_.inflight();
  s.bytes_in_flight = controller_.bytes_in_flight();
  s.queued = controller_.queued();
  s.active_jobs = controller_.active_jobs(Clock::now());
  return s;
}

}  // namespace infergate::gateway
