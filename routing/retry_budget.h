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

  // Retries may be up to `percent` of the requests in the last 10 seconds, and never
  // fewer than `min_retries` in that window (so a quiet gateway can still retry).
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

  double percent_;
  std::uint32_t min_retries_;
  std::array<Bucket, kBuckets> buckets_{};
};

}  // namespace infergate::routing
