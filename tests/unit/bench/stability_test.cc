#include "benchmarks/bench/core/stability.h"

#include <gtest/gtest.h>

#include <vector>

namespace infergate::bench {
namespace {

WindowMetrics m(double throughput, double p99_us, std::uint64_t completed = 100) {
  return {.throughput = throughput, .p99_us = p99_us, .completed = completed};
}

TEST(Stability, NeedsThreeWindows) {
  std::vector<WindowMetrics> w{m(100, 20000), m(100, 20000)};
  EXPECT_FALSE(is_stable(w, 10));
  w.push_back(m(100, 20000));
  EXPECT_TRUE(is_stable(w, 10));
}

TEST(Stability, EachOfTheLastThreeWithinPercentOfTheirMean) {
  // mean throughput 100: 91 and 109 are within 10%, 88 and 112 are not.
  EXPECT_TRUE(is_stable(std::vector{m(91, 100), m(100, 100), m(109, 100)}, 10));
  EXPECT_FALSE(is_stable(std::vector{m(88, 100), m(100, 100), m(112, 100)}, 10));
  EXPECT_TRUE(is_stable(std::vector{m(88, 100), m(100, 100), m(112, 100)}, 15));
}

TEST(Stability, LatencyCountsToo) {
  EXPECT_FALSE(is_stable(std::vector{m(100, 100), m(100, 100), m(100, 150)}, 10));
}

TEST(Stability, OnlyTheLastThreeMatter) {
  std::vector<WindowMetrics> w{m(5, 9000), m(300, 1), m(100, 100), m(101, 101), m(99, 99)};
  EXPECT_TRUE(is_stable(w, 10));
  w.push_back(m(150, 100));
  EXPECT_FALSE(is_stable(w, 10));
}

TEST(Stability, AllErrorsIsStableButNothingFinishingIsNot) {
  // Every request failing (throughput and p99 zero) is a steady state...
  EXPECT_TRUE(is_stable(std::vector{m(0, 0), m(0, 0), m(0, 0)}, 10));
  EXPECT_FALSE(is_stable(std::vector{m(0, 0), m(0, 0), m(3, 0)}, 10));
  // ...a target that answers nothing at all is not.
  EXPECT_FALSE(is_stable(std::vector{m(0, 0, 0), m(0, 0, 0), m(0, 0, 0)}, 10));
  EXPECT_FALSE(is_stable(std::vector{m(100, 100), m(100, 100), m(100, 100, 0)}, 10));
}

}  // namespace
}  // namespace infergate::bench
