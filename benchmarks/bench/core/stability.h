// perf_analyzer's stability criterion for a load level. Pure.
#pragma once

#include <cstdint>
#include <span>

namespace infergate::bench {

// What the criterion compares between measurement windows.
struct WindowMetrics {
  double throughput = 0;        // successful inferences per second
  double p99_us = 0;            // 99th percentile latency
  std::uint64_t completed = 0;  // requests finished in the window, errors included
};

// How many trailing windows the criterion looks at, and the level's result covers.
inline constexpr int kStableWindows = 3;

// True when there are at least kStableWindows windows and, over the last kStableWindows,
// each window's throughput and each window's p99 lies within +-percentage% of their
// mean, and every one of them saw some request finish (a stalled target is not stable).
// A mean of zero is within range only when every value is zero.
bool is_stable(std::span<const WindowMetrics> windows, double percentage);

}  // namespace infergate::bench
