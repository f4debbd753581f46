#include "benchmarks/sim/core/latency_model.h"

#include <algorithm>

namespace infergate::sim {

InstanceScheduler::InstanceScheduler(int instances, std::chrono::nanoseconds latency,
                                     std::chrono::nanoseconds per_mib)
    : latency_(latency), per_mib_(per_mib), free_at_(static_cast<size_t>(std::max(1, instances))) {}

std::chrono::nanoseconds InstanceScheduler::service_time(std::uint64_t request_bytes) const {
  constexpr double kMiB = 1024.0 * 1024.0;
  const double extra = static_cast<double>(per_mib_.count()) * (request_bytes / kMiB);
  return latency_ + std::chrono::nanoseconds(static_cast<std::int64_t>(extra + 0.5));
}

InstanceScheduler::Slot InstanceScheduler::schedule(TimePoint now, std::uint64_t request_bytes) {
  now = std::max(now, last_now_);
  last_now_ = now;
  auto earliest = std::min_element(free_at_.begin(), free_at_.end());
  Slot slot;
  slot.instance = static_cast<int>(earliest - free_at_.begin());
  slot.start = std::max(now, *earliest);
  slot.finish = slot.start + service_time(request_bytes);
  *earliest = slot.finish;
  if (slot.start > now) starts_.push_back(slot.start);
  return slot;
}

std::size_t InstanceScheduler::queued(TimePoint now) {
  while (!starts_.empty() && starts_.front() <= now) starts_.pop_front();
  return starts_.size();
}

InstanceScheduler::TimePoint InstanceScheduler::idle_at() const {
  return *std::max_element(free_at_.begin(), free_at_.end());
}

int InstanceScheduler::busy(TimePoint now) const {
  return static_cast<int>(
      std::count_if(free_at_.begin(), free_at_.end(), [now](TimePoint t) { return t > now; }));
}

}  // namespace infergate::sim
