// Rate-limited warnings: at most `burst` lines per `window` for one kind of event, so a
// backend that refuses every connection cannot flood the log. The next line written
// after some were dropped says how many. Pure (time is passed in); one owner thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace infergate::gateway {

class LogLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit LogLimiter(std::uint32_t burst = 5,
                      std::chrono::nanoseconds window = std::chrono::seconds(10))
      : burst_(burst), window_(window) {}

  // True if a line may be written at `now`; then *suppressed holds how many were dropped
  // since the last line written (and the count restarts).
  bool allow(TimePoint now, std::uint64_t* suppressed);

 private:
  std::uint32_t burst_;
  std::chrono::nanoseconds window_;
  TimePoint window_start_{};
  std::uint32_t written_ = 0;
  std::uint64_t dropped_ = 0;
  bool started_ = false;
};

}  // namespace infergate::gateway
