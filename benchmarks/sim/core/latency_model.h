// The simulated GPU's timing: each model version has `instances` executors; a request
// takes latency + per_mib * bytes / MiB and starts on the executor that frees up first,
// so beyond `instances` concurrent requests they queue and throughput plateaus at
// instances / service time. Pure: time is passed in; not thread-safe (the caller locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

namespace infergate::sim {

class InstanceScheduler {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Where and when one request executes.
  struct Slot {
    int instance = 0;
    TimePoint start;   // when execution begins (>= arrival)
    TimePoint finish;  // when the response is due
  };

  InstanceScheduler(int instances, std::chrono::nanoseconds latency,
                    std::chrono::nanoseconds per_mib);

  // Execution time of a request carrying `request_bytes` of tensor data.
  std::chrono::nanoseconds service_time(std::uint64_t request_bytes) const;

  // Books the earliest-free instance for a request arriving at `now`. Time never goes
  // backwards: a `now` earlier than one already seen is treated as that one.
  Slot schedule(TimePoint now, std::uint64_t request_bytes);

  // Requests booked but not yet started at `now` (Triton's pending request count).
  std::size_t queued(TimePoint now);

  // Instances executing at `now`.
  int busy(TimePoint now) const;

  int instances() const { return static_cast<int>(free_at_.size()); }

  // When every booked request will have finished.
  TimePoint idle_at() const;

 private:
  std::chrono::nanoseconds latency_;
  std::chrono::nanoseconds per_mib_;
  std::vector<TimePoint> free_at_;  // per instance: when its last booked request ends
  std::deque<TimePoint> starts_;    // start times of requests not yet started; ascending
  TimePoint last_now_{};
};

}  // namespace infergate::sim
