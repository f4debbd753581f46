// Admission control: job caps, gateway-wide concurrency and bytes in flight, a token
// bucket on request bytes toward the backends, and a bounded queue served in fair
// (round-robin) order across jobs. Pure: time is passed in, nothing here blocks or
// reads a clock. Not thread-safe; the gateway serialises calls (one short lock per
// decision, never held across I/O).
//
// Cost per event, with n requests queued: admit O(log n); cancel O(log n); release O(1);
// poll O(log n) per request it admits or times out, plus O(1); next_wake O(1). Waiters are
// indexed by id, kept in a FIFO per job and in a min-heap of when their wait runs out;
// only jobs that could send a request now (they have waiters and are under their own
// cap) take turns in the round-robin ring.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace infergate::routing {

// What the callers of one group (an experiment) may take together.
struct GroupLimits {
  std::string name;
  std::uint32_t max_jobs = 0;  // 0: no cap (for each below too)
  std::uint32_t max_inflight = 0;
  double link_share = 0;  // of link_bytes_per_second: the group's own token bucket
  bool operator==(const GroupLimits&) const = default;
};

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
  std::vector<GroupLimits> groups;
  // What the jobs being tracked may hold (their names are the clients'): each is charged
  // its name plus AdmissionController::kJobOverhead. Always set (not an admission limit).
  std::uint64_t max_job_table_bytes = 64ull << 20;
  // Cluster mode: this replica holds no share of the concurrency or bandwidth limits
  // right now, so every request waits (for a share, or its queue_timeout).
  bool closed = false;
};

// Which limit stopped a request (the RESOURCE_EXHAUSTED message and metric label).
enum class Limit : std::uint8_t {
  kNone,
  kMaxJobs,
  kMaxInflight,
  kPerJobInflight,
  kBytesInFlight,
  kLinkBandwidth,
  kGroupJobs,      // limits.groups[].max_jobs
  kGroupInflight,  // limits.groups[].max_inflight
  kGroupLink,      // limits.groups[].link_bandwidth_share
  kJobTable,       // limits.max_job_table_bytes: a new job past what jobs may hold
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
    std::string group;                      // the caller's group ("": none)
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
  // The waiters point into jobs_ and at each other: no copies.
  AdmissionController(const AdmissionController&) = delete;
  AdmissionController& operator=(const AdmissionController&) = delete;
  // New limits apply to queued requests too (a changed queue_timeout or per-job cap
  // re-sorts the queue: O(n), on reload only).
  void set_limits(const AdmissionLimits& limits);
  const AdmissionLimits& limits() const { return limits_; }
  // The map node, the Job and its bookkeeping, as charged against max_job_table_bytes.
  static constexpr std::uint64_t kJobOverhead = 256;
  std::uint64_t job_table_bytes() const { return job_bytes_; }

  // Any RPC of a job of `group`: kNone, or the cap that refuses it (kMaxJobs, kGroupJobs,
  // kJobTable) when the job is new and that cap is full.
  Limit admit_job(std::string_view job, std::string_view group, TimePoint now);
  bool touch_job(std::string_view job, TimePoint now) {
    return admit_job(job, {}, now) == Limit::kNone;
  }

  // An inference request asks to go ahead.
  Decision admit(const Request& request, TimePoint now);
  // An admitted request finished (or was cancelled): its resources return.
  void release(const Request& request, TimePoint now);
  // A queued request gave up (cancelled or its stream died): removed at once. False if
  // it was not queued (never, or already admitted or timed out by poll()).
  bool cancel(std::uint64_t id);

  // Rejects the queued requests whose wait ran out (in the order their time ran out),
  // then admits those that fit now, in fair order across jobs. Call after release(),
  // cancel() and set_limits(), after admit() queued a request, and at next_wake().
  std::vector<Outcome> poll(TimePoint now);
  // When poll() should run next even if nothing is released (token refill, timeouts).
  std::optional<TimePoint> next_wake(TimePoint now) const;

  // Whether `job` is active (known, and not idle past job_idle_timeout).
  bool job_active(std::string_view job, TimePoint now) const;
  // The active jobs, with their groups ("" none): what a cluster renews.
  std::vector<std::pair<std::string, std::string>> active_job_list(TimePoint now) const;
  // Request bytes of the queued requests (a cluster's demand).
  std::uint64_t queued_bytes() const { return queued_bytes_; }
  // `job` no longer counts as active once its requests in flight and queued are done
  // (a cluster found its lease gone and the cap full): its next RPC asks again.
  void forget_job(std::string_view job);

  // Gauges.
  std::uint32_t inflight() const { return inflight_; }
  std::uint64_t bytes_in_flight() const { return bytes_in_flight_; }
  size_t queued() const { return waiters_.size(); }
  size_t active_jobs(TimePoint now) const;
  double tokens(TimePoint now);

 private:
  struct Job;
  struct Group {
    GroupLimits limits;
    std::uint32_t inflight = 0;
    double tokens = 0;  // its share of the link's bucket
    TimePoint refilled{};
    bool bucket_started = false;
  };
  // A queued request. Lives in waiters_ (stable node), linked into its job's FIFO and
  // placed in heap_.
  struct Waiter {
    std::uint64_t id = 0;
    std::uint64_t bytes = 0;
    TimePoint deadline = TimePoint::max();
    TimePoint since{};      // when it was queued
    TimePoint expires{};    // min(deadline, since + queue_timeout): the heap's key
    std::uint64_t seq = 0;  // queue order, breaks ties in the heap
    Job* job = nullptr;
    Waiter* prev = nullptr;  // the job's FIFO
    Waiter* next = nullptr;
    size_t heap_index = 0;
  };
  struct Job {
    std::uint32_t inflight = 0;
    std::uint64_t charged = 0;  // against max_job_table_bytes
    TimePoint last_active{};
    Waiter* first = nullptr;  // FIFO of this job's waiters, oldest first
    Waiter* last = nullptr;
    // In the ring while it has waiters and is under per_job_max_inflight.
    Job* ring_prev = nullptr;
    Job* ring_next = nullptr;
    bool in_ring = false;
    Group* group = nullptr;  // its caller's, when limits.groups names it
  };

  // The limit that holds back `bytes` of `job` now, or kNone if it fits.
  Limit blocking_limit(const Job& job, std::uint64_t bytes, TimePoint now);
  bool under_job_cap(const Job& job) const;
  Group* find_group(std::string_view name);
  size_t active_jobs_of(const Group* group, TimePoint now) const;
  void refill_group(Group& group, TimePoint now);
  double group_rate(const Group& group) const;
  void take(Job& job, std::uint64_t bytes);
  void refill(TimePoint now);
  bool active(const Job& job, TimePoint now) const;
  Duration estimate_wait(Limit limit, std::uint64_t bytes) const;
  void forget_idle(TimePoint now);

  void enqueue(Job& job, const Request& r, TimePoint now);
  // Unlinks `w` from its job, the ring (if the job has no waiter left) and the heap, and
  // erases it.
  void remove(Waiter& w);
  void expire(TimePoint now, std::vector<Outcome>& out);
  void serve(TimePoint now, std::vector<Outcome>& out);
  // Puts `job` in the ring (at the back) or takes it out, as its waiters and cap say.
  void update_ring(Job& job);
  void ring_push_back(Job& job);
  void ring_erase(Job& job);
  // The min-heap of waiters by (expires, seq).
  bool heap_less(const Waiter* a, const Waiter* b) const;
  void heap_push(Waiter* w);
  void heap_erase(Waiter* w);
  void heap_sift_up(size_t i);
  void heap_sift_down(size_t i);
  void heap_place(size_t i, Waiter* w);

  AdmissionLimits limits_;
  // Looked up by string_view without building a string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Nodes are stable: waiters and the ring point into them.
  using JobMap = std::unordered_map<std::string, Job, NameHash, std::equal_to<>>;
  // A new entry for `name`, charged; jobs_.end() if the charge would pass the cap.
  JobMap::iterator new_job(std::string_view name);

  JobMap jobs_;
  std::uint64_t job_bytes_ = 0;  // what jobs_'s entries are charged, together
  std::unordered_map<std::uint64_t, Waiter> waiters_;
  // Never erased (jobs point at them): a group dropped from the config keeps no limit.
  std::unordered_map<std::string, Group, NameHash, std::equal_to<>> groups_;
  std::vector<Waiter*> heap_;
  Job* ring_head_ = nullptr;  // the job whose turn it is
  std::uint64_t next_seq_ = 0;
  std::uint32_t inflight_ = 0;
  std::uint64_t bytes_in_flight_ = 0;
  std::uint64_t queued_bytes_ = 0;
  double tokens_ = 0;
  TimePoint refilled_{};
  bool bucket_started_ = false;
  TimePoint last_forget_{};
};

}  // namespace infergate::routing
