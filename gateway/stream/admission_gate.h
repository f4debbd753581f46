// The gateway's one admission point: routing::AdmissionController behind a short lock,
// shared by all workers. A request that has to wait is parked here with a callback that
// is posted back to its own worker when the wait ends (admitted, timed out, or past its
// deadline). A steady_timer on the control io_context wakes the queue when time alone
// can let someone in (token refill) or out (timeouts); no thread of its own. Nothing here
// is touched when no limit is configured.
//
// Lifetime: the control io_context must outlive the gate. stop() (the destructor runs
// it too) cancels the timer and drops the parked callbacks; once it returns, the gate
// posts nothing to any io_context. Call it before the workers' io_contexts can die.
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/admission.h"

namespace infergate::gateway {

class AdmissionGate {
 public:
  using Clock = std::chrono::steady_clock;
  using Request = routing::AdmissionController::Request;
  using Outcome = routing::AdmissionController::Outcome;
  using Decision = routing::AdmissionController::Decision;
  // Runs on the waiting request's worker. When the request is gone by then the callback
  // must release() an admitted outcome itself (the gate cannot know).
  using Done = std::function<void(const Outcome&)>;

  // Upper bounds (seconds) of the queue-wait histogram.
  static constexpr std::array<double, 14> kWaitBounds = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  struct Stats {
    std::uint32_t inflight = 0;
    std::uint64_t bytes_in_flight = 0;
    size_t queued = 0;
    size_t active_jobs = 0;
    std::array<std::uint64_t, static_cast<size_t>(routing::Limit::kDeadline) + 1> rejected{};
    std::array<std::uint64_t, kWaitBounds.size() + 1> wait_buckets{};  // non-cumulative
    std::uint64_t wait_count = 0;
    double wait_sum_s = 0;
    std::uint64_t admitted_total = 0;
  };

  // `control`: the control plane's io_context, whose thread runs the gate's timer.
  AdmissionGate(boost::asio::io_context& control, const routing::AdmissionLimits& limits,
                bool enabled);
  ~AdmissionGate();
  AdmissionGate(const AdmissionGate&) = delete;
  AdmissionGate& operator=(const AdmissionGate&) = delete;

  // False: no limit is set and callers skip the gate altogether. Any thread.
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // A reloaded config's limits. Queued requests stay queued under the new ones.
  void set_limits(const routing::AdmissionLimits& limits, bool enabled);

  // Every RPC of a job of `group` ("": none): kNone, or the job cap that refuses it when
  // the job is new (max_jobs, or its group's).
  routing::Limit touch_job(std::string_view job, std::string_view group = {});
  // The same, where a cluster may decide a new job: nullopt when it was asked, and then
  // `done` is posted to `io` with the verdict later (exactly once, unless the gate is
  // stopped). Any thread.
  using JobDone = std::function<void(routing::Limit)>;
  std::optional<routing::Limit> touch_job(std::string_view job, std::string_view group,
                                          boost::asio::io_context& io, JobDone done);

  // Cluster mode (ClusterLimits). `ask` decides a job this replica does not know: it
  // answers (on any thread) the cap that refuses it, kNone, or nullopt for "decide here"
  // (Redis could not tell). Null: every job is decided here. Any thread.
  using JobAnswer = std::function<void(std::optional<routing::Limit>)>;
  using JobAsk =
      std::function<void(const std::string& job, const std::string& group, JobAnswer answer)>;
  void set_job_ask(JobAsk ask);
  // The limits this replica applies now (its shares of the configured ones); from now on
  // set_limits() only records the configured limits. Any thread.
  void set_shares(const routing::AdmissionLimits& shares);
  // The configured limits apply again (the cluster is gone from the config); jobs the
  // cluster was asked about are decided here.
  void leave_cluster();
  // The cluster found `job`'s lease gone and its cap full: the job is no longer active
  // here once its requests are done, and its next RPC asks again.
  void forget_job(std::string_view job);
  // What a cluster renews and weighs: the active jobs, and this replica's demand.
  struct Demand {
    std::uint32_t inflight = 0;
    std::uint64_t bytes_in_flight = 0;
    size_t queued = 0;
    std::uint64_t queued_bytes = 0;
    std::uint64_t admitted_bytes_total = 0;  // request bytes admitted since start
  };
  Demand demand() const;
  std::vector<std::pair<std::string, std::string>> active_jobs() const;
  // Admitted now, queued (then `done` is posted to `io` later, exactly once, unless
  // cancel() returns true first or the gate is stopped), or rejected. Any thread.
  Decision admit(const Request& request, boost::asio::io_context& io, Done done);
  // An admitted request is over: what it held returns, and waiters that now fit go.
  void release(const Request& request);
  // A queued request gave up; true if it was still queued (no callback will come).
  bool cancel(std::uint64_t id);

  // Shutdown: the timer is cancelled, parked callbacks are dropped (never called), and
  // once this returns nothing more is posted to any io_context; the counts stay usable.
  // Idempotent; any thread.
  void stop();

  std::uint64_t next_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  // The limits' configured values, for messages.
  routing::AdmissionLimits limits() const;
  Stats stats() const;

 private:
  // Everything the timer's handler touches: it holds a weak reference, so a handler
  // that comes up after the gate is gone does nothing.
  class State;

  std::shared_ptr<State> state_;
  std::atomic<bool> enabled_;
  std::atomic<std::uint64_t> next_id_{1};
};

}  // namespace infergate::gateway
