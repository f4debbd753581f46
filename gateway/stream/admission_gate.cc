#include "gateway/stream/admission_gate.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace infergate::gateway {
namespace {

// The timer never sleeps longer than this, whatever the queue says (a queue_timeout of
// years must not become a timer that asio cannot represent).
constexpr std::chrono::minutes kMaxTimerWait(1);

}  // namespace

// The gate's state. Every member is guarded by mutex_, the timer included: asio's timer
// is not safe for concurrent use, and the lock makes every use exclusive (it is armed
// from whichever thread changed the queue, and fires on the control thread).
class AdmissionGate::State : public std::enable_shared_from_this<State> {
 public:
  State(boost::asio::io_context& control, const routing::AdmissionLimits& limits)
      : controller_(limits), configured_(limits), timer_(control) {}

  void set_limits(const routing::AdmissionLimits& limits) {
    std::unique_lock lock(mutex_);
    configured_ = limits;
    if (clustered_) return;  // the cluster sets the shares of the new limits
    controller_.set_limits(limits);
    poll_and_dispatch(lock);
  }

  void set_shares(const routing::AdmissionLimits& shares) {
    std::unique_lock lock(mutex_);
    clustered_ = true;
    controller_.set_limits(shares);
    poll_and_dispatch(lock);
  }

  void leave_cluster() {
    std::vector<std::string> asked;
    {
      std::unique_lock lock(mutex_);
      clustered_ = false;
      job_ask_ = nullptr;
      controller_.set_limits(configured_);
      poll_and_dispatch(lock);
      for (const auto& [job, asking] : asking_) asked.push_back(job);
    }
    // Jobs the cluster was asked about and will not answer now: decided here.
    for (const std::string& job : asked) on_job_answer(job, std::nullopt);
  }

  void forget_job(std::string_view job) {
    std::lock_guard lock(mutex_);
    controller_.forget_job(job);
  }

  void set_job_ask(JobAsk ask) {
    std::lock_guard lock(mutex_);
    job_ask_ = std::move(ask);
  }

  routing::AdmissionLimits limits() const {
    std::lock_guard lock(mutex_);
    return configured_;
  }

  Demand demand() const {
    std::lock_guard lock(mutex_);
    return Demand{.inflight = controller_.inflight(),
                  .bytes_in_flight = controller_.bytes_in_flight(),
                  .queued = controller_.queued(),
                  .queued_bytes = controller_.queued_bytes(),
                  .admitted_bytes_total = admitted_bytes_};
  }

  std::vector<std::pair<std::string, std::string>> active_jobs() const {
    std::lock_guard lock(mutex_);
    return controller_.active_job_list(Clock::now());
  }

  std::optional<routing::Limit> touch_job(std::string_view job, std::string_view group,
                                          boost::asio::io_context& io, JobDone done) {
    std::unique_lock lock(mutex_);
    const Clock::time_point now = Clock::now();
    if (!job_ask_ || stopped_ || controller_.job_active(job, now)) {
      const routing::Limit limit = controller_.admit_job(job, group, now);
      if (limit != routing::Limit::kNone) count_rejection(limit);
      return limit;
    }
    // A new job, for the cluster to decide: its requests wait together for one answer.
    auto [it, first] = asking_.try_emplace(std::string(job));
    if (first && asking_.size() > controller_.limits().max_queue) {
      asking_.erase(it);
      count_rejection(routing::Limit::kQueueFull);
      return routing::Limit::kQueueFull;
    }
    it->second.group = std::string(group);
    it->second.waiting.push_back({&io, std::move(done)});
    if (!first) return std::nullopt;
    JobAsk ask = job_ask_;
    lock.unlock();
    ask(std::string(job), std::string(group),
        [weak = weak_from_this(), name = std::string(job)](std::optional<routing::Limit> verdict) {
          if (auto self = weak.lock()) self->on_job_answer(name, verdict);
        });
    return std::nullopt;
  }

  routing::Limit touch_job(std::string_view job, std::string_view group) {
    std::lock_guard lock(mutex_);
    const routing::Limit limit = controller_.admit_job(job, group, Clock::now());
    if (limit != routing::Limit::kNone) count_rejection(limit);
    return limit;
  }

  Decision admit(const Request& request, boost::asio::io_context& io, Done done) {
    std::unique_lock lock(mutex_);
    Decision d = controller_.admit(request, Clock::now());
    switch (d.verdict) {
      case routing::AdmissionController::Verdict::kAdmitted:
        count_wait(std::chrono::nanoseconds(0));
        admitted_bytes_ += request.bytes;
        break;
      case routing::AdmissionController::Verdict::kQueued:
        // After stop() no callback will come: the stream waits until its worker closes
        // it (and cancels).
        if (stopped_) break;
        waiters_.emplace(request.id, Waiter{&io, std::move(done), request.bytes});
        // It may go at once (the requests ahead of it are held by their own job's cap),
        // or its deadline may be the next thing to time. Its own outcome, if any, is the
        // answer rather than a callback.
        if (std::optional<Outcome> own = poll_and_dispatch(lock, request.id)) {
          d = own->admitted ? Decision{}
                            : Decision{.verdict = routing::AdmissionController::Verdict::kRejected,
                                       .limit = own->limit,
                                       .pushback = own->pushback};
        }
        break;
      case routing::AdmissionController::Verdict::kRejected:
        count_rejection(d.limit);
        break;
    }
    return d;
  }

  void on_job_answer(const std::string& job, std::optional<routing::Limit> verdict) {
    std::vector<JobWaiter> waiting;
    std::unique_lock lock(mutex_);
    auto it = asking_.find(job);
    if (it == asking_.end()) return;
    waiting = std::move(it->second.waiting);
    const std::string group = std::move(it->second.group);
    asking_.erase(it);
    if (stopped_) return;
    const Clock::time_point now = Clock::now();
    routing::Limit limit = verdict.value_or(routing::Limit::kNone);
    if (!verdict || limit == routing::Limit::kNone) {
      // Admitted by the cluster (registered here, with no cap of this replica's), or
      // decided here because Redis could not tell (this replica's split caps).
      limit = controller_.admit_job(job, group, now);
    }
    if (limit != routing::Limit::kNone) count_rejection(limit);
    ++dispatching_;
    lock.unlock();
    for (JobWaiter& w : waiting) {
      boost::asio::post(*w.io, [done = std::move(w.done), limit] { done(limit); });
    }
    lock.lock();
    if (--dispatching_ == 0 && stopped_) dispatched_.notify_all();
  }

  void release(const Request& request) {
    std::unique_lock lock(mutex_);
    controller_.release(request, Clock::now());
    poll_and_dispatch(lock);
  }

  bool cancel(std::uint64_t id) {
    Done dropped;  // destroyed after the lock: it may hold the last reference to the gate
    std::unique_lock lock(mutex_);
    if (!controller_.cancel(id)) return false;
    if (auto it = waiters_.find(id); it != waiters_.end()) {
      dropped = std::move(it->second.done);
      waiters_.erase(it);
    }
    // The request that held its turn may be gone: those behind it may fit now.
    poll_and_dispatch(lock);
    return true;
  }

  void stop() {
    std::unordered_map<std::uint64_t, Waiter> dropped;  // destroyed after the lock
    std::unordered_map<std::string, Asking> dropped_jobs;
    std::unique_lock lock(mutex_);
    stopped_ = true;
    armed_ = false;
    timer_.cancel();
    dropped.swap(waiters_);
    dropped_jobs.swap(asking_);
    job_ask_ = nullptr;
    // A dispatch that let go of the lock to post finishes first.
    dispatched_.wait(lock, [&] { return dispatching_ == 0; });
  }

  Stats stats() const {
    std::lock_guard lock(mutex_);
    Stats s = counters_;
    s.inflight = controller_.inflight();
    s.bytes_in_flight = controller_.bytes_in_flight();
    s.queued = controller_.queued();
    s.active_jobs = controller_.active_jobs(Clock::now());
    return s;
  }

 private:
  struct Waiter {
    boost::asio::io_context* io;
    Done done;
    std::uint64_t bytes = 0;
  };
  struct JobWaiter {
    boost::asio::io_context* io;
    JobDone done;
  };
  // A new job the cluster was asked about, and the RPCs that wait for its answer.
  struct Asking {
    std::string group;
    std::vector<JobWaiter> waiting;
  };

  void count_rejection(routing::Limit limit) { ++counters_.rejected[static_cast<size_t>(limit)]; }

  void count_wait(std::chrono::nanoseconds waited) {
    ++counters_.admitted_total;
    const double s = std::chrono::duration<double>(waited).count();
    const size_t b = static_cast<size_t>(
        std::lower_bound(kWaitBounds.begin(), kWaitBounds.end(), s) - kWaitBounds.begin());
    ++counters_.wait_buckets[b];
    ++counters_.wait_count;
    counters_.wait_sum_s += s;
  }

  // Polls the controller, posts every outcome to its worker (except `own`'s, which is
  // returned) and re-arms the timer. Lock held on entry and on return; released while
  // posting.
  std::optional<Outcome> poll_and_dispatch(std::unique_lock<std::mutex>& lock,
                                           std::optional<std::uint64_t> own = std::nullopt) {
    std::optional<Outcome> own_outcome;
    if (stopped_) return own_outcome;
    const Clock::time_point now = Clock::now();
    std::vector<std::pair<Waiter, Outcome>> ready;
    if (controller_.queued() > 0) {
      for (const Outcome& o : controller_.poll(now)) {
        if (o.admitted) {
          count_wait(o.waited);
        } else {
          count_rejection(o.limit);
        }
        auto it = waiters_.find(o.id);
        if (it == waiters_.end()) continue;  // cannot happen: queued ids have a waiter
        if (o.admitted) admitted_bytes_ += it->second.bytes;
        if (own && o.id == *own) {
          own_outcome = o;
        } else {
          ready.emplace_back(std::move(it->second), o);
        }
        waiters_.erase(it);
      }
    }
    arm(now);
    if (ready.empty()) return own_outcome;
    ++dispatching_;
    lock.unlock();
    for (auto& [waiter, outcome] : ready) {
      boost::asio::post(*waiter.io,
                        [done = std::move(waiter.done), outcome = outcome] { done(outcome); });
    }
    ready.clear();  // destroys nothing that holds a reference: every callback moved out
    lock.lock();
    if (--dispatching_ == 0 && stopped_) dispatched_.notify_all();
    return own_outcome;
  }

  // Arms the timer for the queue's next wake, unless it is armed for that time or
  // earlier already (an early wake only polls and arms again). Lock held.
  void arm(Clock::time_point now) {
    const std::optional<Clock::time_point> wake = controller_.next_wake(now);
    if (stopped_ || !wake) return;
    const Clock::time_point at = std::min(*wake, now + kMaxTimerWait);
    if (armed_ && armed_at_ <= at) return;
    armed_ = true;
    armed_at_ = at;
    timer_.expires_at(at);  // the wait it replaces completes with operation_aborted
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (std::shared_ptr<State> self = weak.lock()) self->on_timer();
    });
  }

  // The control thread, when the armed time has come.
  void on_timer() {
    std::unique_lock lock(mutex_);
    armed_ = false;
    poll_and_dispatch(lock);
  }

  mutable std::mutex mutex_;
  routing::AdmissionController controller_;
  routing::AdmissionLimits configured_;  // as configured (controller_ has the shares)
  bool clustered_ = false;
  JobAsk job_ask_;
  std::unordered_map<std::string, Asking> asking_;
  std::uint64_t admitted_bytes_ = 0;
  std::unordered_map<std::uint64_t, Waiter> waiters_;
  Stats counters_;  // rejected, waits, admitted (the gauges come from the controller)
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  Clock::time_point armed_at_{};
  bool stopped_ = false;
  int dispatching_ = 0;  // poll_and_dispatch() calls posting without the lock
  std::condition_variable dispatched_;
};

AdmissionGate::AdmissionGate(boost::asio::io_context& control,
                             const routing::AdmissionLimits& limits, bool enabled)
    : state_(std::make_shared<State>(control, limits)), enabled_(enabled) {}

AdmissionGate::~AdmissionGate() { state_->stop(); }

void AdmissionGate::set_limits(const routing::AdmissionLimits& limits, bool enabled) {
  enabled_.store(enabled, std::memory_order_relaxed);
  state_->set_limits(limits);
}

routing::AdmissionLimits AdmissionGate::limits() const { return state_->limits(); }

std::optional<routing::Limit> AdmissionGate::touch_job(std::string_view job, std::string_view group,
                                                       boost::asio::io_context& io, JobDone done) {
  return state_->touch_job(job, group, io, std::move(done));
}

void AdmissionGate::set_job_ask(JobAsk ask) { state_->set_job_ask(std::move(ask)); }

void AdmissionGate::set_shares(const routing::AdmissionLimits& shares) {
  state_->set_shares(shares);
}

void AdmissionGate::leave_cluster() { state_->leave_cluster(); }

void AdmissionGate::forget_job(std::string_view job) { state_->forget_job(job); }

AdmissionGate::Demand AdmissionGate::demand() const { return state_->demand(); }

std::vector<std::pair<std::string, std::string>> AdmissionGate::active_jobs() const {
  return state_->active_jobs();
}

routing::Limit AdmissionGate::touch_job(std::string_view job, std::string_view group) {
  return state_->touch_job(job, group);
}

AdmissionGate::Decision AdmissionGate::admit(const Request& request, boost::asio::io_context& io,
                                             Done done) {
  return state_->admit(request, io, std::move(done));
}

void AdmissionGate::release(const Request& request) { state_->release(request); }

bool AdmissionGate::cancel(std::uint64_t id) { return state_->cancel(id); }

void AdmissionGate::stop() { state_->stop(); }

AdmissionGate::Stats AdmissionGate::stats() const { return state_->stats(); }

}  // namespace infergate::gateway
