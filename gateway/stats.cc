#include "gateway/stats.h"

#include <algorithm>

namespace infergate::gateway {

void WorkerStats::record(Method method, GrpcCode code, std::chrono::nanoseconds latency) {
  Series& s = series_[static_cast<size_t>(method)][static_cast<size_t>(code)];
  s.count.add(1);
  const std::int64_t ns = std::max<std::int64_t>(0, latency.count());
  s.sum_ns.add(static_cast<std::uint64_t>(ns));
  const double seconds = static_cast<double>(ns) * 1e-9;
  const auto it = std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), seconds);
  s.buckets[static_cast<size_t>(it - kLatencyBounds.begin())].add(1);
}

}  // namespace infergate::gateway
