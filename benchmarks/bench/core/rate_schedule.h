// When an open-loop run sends: constant gaps, or the exponential gaps of a Poisson
// process. Pure: the randomness is injected, and offsets are computed, not measured.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

namespace infergate::bench {

enum class Distribution { kConstant, kPoisson };

std::optional<Distribution> parse_distribution(std::string_view name);
std::string_view distribution_name(Distribution d);

// Used by the open-loop scheduler thread only.
class RateSchedule {
 public:
  // rate_per_second > 0. uniform01 returns values in [0, 1); only kPoisson calls it.
  RateSchedule(double rate_per_second, Distribution distribution,
               std::function<double()> uniform01);

  // The offset from the start of the run of the next send: 0 first, then each gap
  // added to the planned (never the actual) time, so lateness does not accumulate.
  std::chrono::nanoseconds next();

 private:
  double gap_ns();

  double mean_gap_ns_;
  Distribution distribution_;
  std::function<double()> uniform01_;
  double offset_ns_ = 0;
  bool first_ = true;
};

}  // namespace infergate::bench
