// Limits retries to a share of recent requests so that retrying cannot multiply the
// load on a fleet that is already failing. One per worker; time is passed in.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace infergate::routing {

class RetryBudget {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  static constexpr Duration kWindow = std::chrono::seconds(10);
  // The most floor retries a burst can take at once (a cold budget holds one).
  static constexpr std::uint32_t kFloorBurst = 2;

  // A retry is allowed while the retries of the last 10 seconds stay within `percent` of
  // the requests of the last 10 seconds. Beyond that share, a floor lets a quiet or cold
  // gateway still retry: `min_retries` per 10 s, paid out evenly (one every
  // 10 s / min_retries). The floor holds at most kFloorBurst retries and starts with one,
  // so a burst of failures right after start takes one floor retry, not the whole
  // window's, and the failures after it take theirs as the floor refills. Every retry
  // counts against the share, so the floor adds at most min_retries per 10 s (plus the
  // burst) to it. min_retries = 0: no floor.
  explicit RetryBudget(double percent, std::uint32_t min_retries = 3)
      : percent_(percent), min_retries_(min_retries) {}

  void on_request(TimePoint now);
  // True (and the retry is counted) if the budget allows one more retry now.
  bool try_retry(TimePoint now);

  std::uint64_t requests_in_window(TimePoint now);
  std::uint64_t retries_in_window(TimePoint now);
  void set_percent(double percent) { percent_ = percent; }

 private:
  static constexpr size_t kBuckets = 10;  // one per second
  struct Bucket {
    std::int64_t second = -1;
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
  };
  Bucket& current(TimePoint now);
  // Takes one retry from the floor if it holds one now.
  bool take_floor(TimePoint now);

  double percent_;
  std::uint32_t min_retries_;
  std::array<Bucket, kBuckets> buckets_{};
  // The floor as a rate limiter (GCRA): a retry may go when now >= floor_next_ -
  // (kFloorBurst - 1) * interval; each one moves floor_next_ on by the interval.
  bool floor_started_ = false;
  TimePoint floor_next_{};
};

}  // namespace infergate::routing
