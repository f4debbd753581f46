#include "routing/backend_stats.h"

#include <algorithm>

namespace infergate::routing {

size_t latency_bucket(std::chrono::nanoseconds latency) {
  const double seconds = static_cast<double>(std::max<std::int64_t>(0, latency.count())) * 1e-9;
  return static_cast<size_t>(
      std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds) -
      kLatencyBounds.begin());
}

void BackendStats::record_answer(std::uint32_t code, std::chrono::nanoseconds latency) {
  answers[std::min<size_t>(code, kCodes - 1)].fetch_add(1, std::memory_order_relaxed);
  latency_buckets[latency_bucket(latency)].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count())),
                           std::memory_order_relaxed);
}

std::uint64_t BackendStats::answered() const {
  std::uint64_t n = 0;
  for (const auto& a : answers) n += a.load(std::memory_order_relaxed);
  return n;
}

}  // namespace infergate::routing
