#include "benchmarks/bench/core/latency_summary.h"

#include <algorithm>
#include <cmath>

namespace infergate::bench {
namespace {

double to_us(double ns) { return std::round(ns / 1000.0); }

}  // namespace

std::int64_t percentile_of_sorted(std::span<const std::int64_t> sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted_ns.size()));
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted_ns[std::min(index, sorted_ns.size() - 1)];
}

LatencySummary summarize_latencies(std::vector<std::int64_t>& latencies_ns) {
  LatencySummary out;
  if (latencies_ns.empty()) return out;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  double sum = 0;
  for (std::int64_t v : latencies_ns) sum += static_cast<double>(v);
  out.count = latencies_ns.size();
  out.avg_us = to_us(sum / static_cast<double>(latencies_ns.size()));
  out.p50_us = to_us(static_cast<double>(percentile_of_sorted(latencies_ns, 50)));
  out.p90_us = to_us(static_cast<double>(percentile_of_sorted(latencies_ns, 90)));
  out.p99_us = to_us(static_cast<double>(percentile_of_sorted(latencies_ns, 99)));
  out.max_us = to_us(static_cast<double>(latencies_ns.back()));
  return out;
}

}  // namespace infergate::bench
