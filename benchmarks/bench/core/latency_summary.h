// Latency percentiles over a set of requests. Pure.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace infergate::bench {

// Latencies of one set of requests, in microseconds (rounded to the nearest).
struct LatencySummary {
  std::uint64_t count = 0;
  double avg_us = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

// The nearest-rank percentile (0 < p <= 100) of an ascending sequence: the smallest
// value with at least p% of the values at or below it. 0 for an empty sequence.
std::int64_t percentile_of_sorted(std::span<const std::int64_t> sorted_ns, double p);

// Sorts `latencies_ns` in place and summarizes it. All zero when it is empty.
LatencySummary summarize_latencies(std::vector<std::int64_t>& latencies_ns);

}  // namespace infergate::bench
