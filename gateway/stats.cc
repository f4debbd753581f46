#include "gateway/stats.h"

#include <algorithm>

namespace infergate::gateway {

namespace {

void add(WorkerStats::Series& s, std::chrono::nanoseconds latency,
         const std::array<double, 17>& bounds) {
  s.count.add(1);
  const std::int64_t ns = std::max<std::int64_t>(0, latency.count());
  s.sum_ns.add(static_cast<std::uint64_t>(ns));
  const double seconds = static_cast<double>(ns) * 1e-9;
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);
  s.buckets[static_cast<size_t>(it - bounds.begin())].add(1);
}

}  // namespace

void WorkerStats::record(Method method, GrpcCode code, std::chrono::nanoseconds latency) {
  add(series_[static_cast<size_t>(method)][static_cast<size_t>(code)], latency, kLatencyBounds);
}

void WorkerStats::record_model(std::string_view model, std::chrono::nanoseconds latency) {
  record_model(model_slot(model), latency);
}

void WorkerStats::record_model(size_t slot, std::chrono::nanoseconds latency) {
  add(models_[slot].series, latency, kLatencyBounds);
}

void WorkerStats::model_waited(size_t slot, std::chrono::nanoseconds waited) {
  add(models_[slot].queue_wait, waited, kLatencyBounds);
}

size_t WorkerStats::model_slot(std::string_view model) {
  auto it = model_slots_.find(model);
  if (it == model_slots_.end()) {
    // A new label: the last slot is kept for "other" once the others are taken.
    const size_t slot = std::min(model_slots_.size(), kMaxModels - 1);
    const std::string name = slot == kMaxModels - 1 ? "other" : std::string(model);
    if (models_[slot].name.load(std::memory_order_relaxed) == nullptr) {
      model_names_.push_back(std::make_unique<const std::string>(name));
      models_[slot].name.store(model_names_.back().get(), std::memory_order_release);
    }
    it = model_slots_.emplace(std::string(model), slot).first;
  }
  return it->second;
}

void WorkerStats::record_overhead(std::chrono::nanoseconds overhead) {
  add(overhead_, overhead, kOverheadBounds);
}

}  // namespace infergate::gateway
