#include "benchmarks/bench/core/stability.h"

#include <cmath>

namespace infergate::bench {
namespace {

template <typename Get>
bool within(std::span<const WindowMetrics> last, double percentage, Get get) {
  double mean = 0;
  for (const WindowMetrics& w : last) mean += get(w);
  mean /= static_cast<double>(last.size());
  double allowed = std::abs(mean) * percentage / 100.0;
  for (const WindowMetrics& w : last) {
    if (std::abs(get(w) - mean) > allowed) return false;
  }
  return true;
}

}  // namespace

bool is_stable(std::span<const WindowMetrics> windows, double percentage) {
  if (windows.size() < static_cast<size_t>(kStableWindows)) return false;
  std::span<const WindowMetrics> last = windows.last(kStableWindows);
  for (const WindowMetrics& w : last) {
    if (w.completed == 0) return false;
  }
  return within(last, percentage, [](const WindowMetrics& w) { return w.throughput; }) &&
         within(last, percentage, [](const WindowMetrics& w) { return w.p99_us; });
}

}  // namespace infergate::bench
