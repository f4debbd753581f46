#include "benchmarks/sim/core/failure_plan.h"

namespace infergate::sim {

FailurePlan::Fate FailurePlan::next() {
  if (rates_.refuse <= 0 && rates_.hang <= 0 && rates_.error <= 0) return Fate::kServe;
  std::uint64_t bits;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bits = rng_();
  }
  // 53 random bits -> a uniform double in [0, 1), the same on every platform.
  const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
  if (u < rates_.refuse) return Fate::kRefuse;
  if (u < rates_.refuse + rates_.hang) return Fate::kHang;
  if (u < rates_.refuse + rates_.hang + rates_.error) return Fate::kError;
  return Fate::kServe;
}

}  // namespace infergate::sim
