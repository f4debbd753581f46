#include "benchmarks/bench/core/rate_schedule.h"

#include <cmath>

namespace infergate::bench {

std::optional<Distribution> parse_distribution(std::string_view name) {
  if (name == "constant") return Distribution::kConstant;
  if (name == "poisson") return Distribution::kPoisson;
  return std::nullopt;
}

std::string_view distribution_name(Distribution d) {
  return d == Distribution::kPoisson ? "poisson" : "constant";
}

RateSchedule::RateSchedule(double rate_per_second, Distribution distribution,
                           std::function<double()> uniform01)
    : mean_gap_ns_(1e9 / rate_per_second),
      distribution_(distribution),
      uniform01_(std::move(uniform01)) {}

double RateSchedule::gap_ns() {
  if (distribution_ == Distribution::kConstant) return mean_gap_ns_;
  // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
  return -std::log(1.0 - uniform01_()) * mean_gap_ns_;
}

std::chrono::nanoseconds RateSchedule::next() {
  if (first_) {
    first_ = false;
  } else {
    offset_ns_ += gap_ns();
  }
  return std::chrono::nanoseconds(std::llround(offset_ns_));
}

}  // namespace infergate::bench
