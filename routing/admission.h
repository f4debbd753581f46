// Admission control: job caps, gateway-wide concurrency and bytes in flight, a token
// bucket on request bytes toward the backends, and a bounded queue served in fair
// (round-robin) order across jobs. Pure: time is passed in, nothing here blocks or
// reads a clock. Not thread-safe; the gateway serialises calls (one short lock per
// decision, never held across I/O).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace infergate::routing {

struct AdmissionLimits {
  std::uint32_t max_jobs = 0;  // 0: no cap (for every limit below too)
  std::chrono::nanoseconds job_idle_timeout = std::chrono::seconds(60);
  std::uint32_t max_inflight = 0;  // gateway-wide
  std::uint32_t per_job_max_inflight = 0;
  std::uint64_t max_bytes_in_flight = 0;    // request bytes of admitted requests
  std::uint64_t link_bytes_per_second = 0;  // token bucket rate
  std::uint64_t link_burst_bytes = 0;       // bucket size (0: one tenth of a second)
  std::uint32_t max_queue = 10000;
  std::chrono::nanoseconds queue_timeout = std::chrono::seconds(30);
};

// Which limit stopped a request (the RESOURCE_EXHAUSTED message and metric label).
enum class Limit : std::uint8_t {
  kNone,
  kMaxJobs,
  kMaxInflight,
  kPerJobInflight,
  kBytesInFlight,
  kLinkBandwidth,
  kQueueFull,
  kQueueTimeout,
  kDeadline,
};
std::string_view limit_name(Limit limit);  // "max_jobs", "max_inflight", ...

class AdmissionController {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  struct Request {
    std::uint64_t id = 0;  // unique per request
    std::string job;
    std::uint64_t bytes = 0;                // its request message bytes (charged to bytes and link)
    TimePoint deadline = TimePoint::max();  // the client's own deadline
  };

  enum class Verdict : std::uint8_t { kAdmitted, kQueued, kRejected };
  struct Decision {
    Verdict verdict = Verdict::kAdmitted;
    Limit limit = Limit::kNone;  // what held it back (queued) or refused it (rejected)
    Duration pushback{0};        // for grpc-retry-pushback-ms when rejected
  };

  // A queued request's outcome, from poll().
  struct Outcome {
    std::uint64_t id = 0;
    bool admitted = false;
    Limit limit = Limit::kNone;
    Duration waited{0};
    Duration pushback{0};
  };

  explicit AdmissionController(AdmissionLimits limits);
  void set_limits(const AdmissionLimits& limits);
  const AdmissionLimits& limits() const { return limits_; }

  // Any RPC of a job: false if the job is new and the job cap is full (refuse it).
  bool touch_job(std::string_view job, TimePoint now);

  // An inference request asks to go ahead.
  Decision admit(const Request& request, TimePoint now);
  // An admitted request finished (or was cancelled): its resources return.
  void release(const Request& request, TimePoint now);
  // A queued request gave up (cancelled or its stream died): removed at once.
  bool cancel(std::uint64_t id);

  // Admits queued requests that fit now, in fair order across jobs, and rejects those
  // whose wait ran out. Call after release(), and at next_wake().
  std::vector<Outcome> poll(TimePoint now);
  // When poll() should run next even if nothing is released (token refill, timeouts).
  std::optional<TimePoint> next_wake(TimePoint now) const;

  // Gauges.
  std::uint32_t inflight() const { return inflight_; }
  std::uint64_t bytes_in_flight() const { return bytes_in_flight_; }
  size_t queued() const { return queued_; }
  size_t active_jobs(TimePoint now) const;
  double tokens(TimePoint now);

 private:
  struct Job {
    std::uint32_t inflight = 0;
    TimePoint last_active{};
    std::deque<std::pair<Request, TimePoint>> waiting;  // with the time it was queued
    bool in_ring = false;
  };

  // The limit that holds `r` back now, or kNone if it fits.
  Limit blocking_limit(const Job& job, const Request& r, TimePoint now);
  void take(Job& job, const Request& r);
  void refill(TimePoint now);
  bool active(const Job& job, TimePoint now) const;
  Duration estimate_wait(Limit limit, const Request& r) const;
  void forget_idle(TimePoint now);

  AdmissionLimits limits_;
  std::unordered_map<std::string, Job> jobs_;
  std::list<std::string> ring_;  // jobs with waiting requests, in service order
  std::uint32_t inflight_ = 0;
  std::uint64_t bytes_in_flight_ = 0;
  size_t queued_ = 0;
  double tokens_ = 0;
  TimePoint refilled_{};
  bool bucket_started_ = false;
  TimePoint last_forget_{};
};

}  // namespace infergate::routing
