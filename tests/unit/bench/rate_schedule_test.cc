#include "benchmarks/bench/core/rate_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "benchmarks/bench/core/split_mix.h"

namespace infergate::bench {
namespace {

using std::chrono::nanoseconds;

TEST(RateSchedule, ConstantIsEvenlySpacedFromZero) {
  int calls = 0;
  RateSchedule s(100, Distribution::kConstant, [&] {
    ++calls;
    return 0.5;
  });
  EXPECT_EQ(s.next(), nanoseconds(0));
  EXPECT_EQ(s.next(), nanoseconds(10'000'000));
  EXPECT_EQ(s.next(), nanoseconds(20'000'000));
  EXPECT_EQ(calls, 0);  // constant needs no randomness
}

TEST(RateSchedule, ConstantDoesNotDriftOverManySends) {
  RateSchedule s(3, Distribution::kConstant, [] { return 0.0; });
  nanoseconds last{};
  for (int i = 0; i <= 3000; ++i) last = s.next();
  EXPECT_EQ(last, nanoseconds(1'000'000'000'000));  // 3000 gaps of 1/3 s
}

TEST(RateSchedule, PoissonUsesTheInverseExponential) {
  RateSchedule s(1000, Distribution::kPoisson, [] { return 0.5; });
  EXPECT_EQ(s.next(), nanoseconds(0));
  // -ln(1 - 0.5) / 1000 s = 693147 ns
  EXPECT_EQ(s.next(), nanoseconds(std::llround(std::log(2.0) * 1e6)));
}

TEST(RateSchedule, PoissonMeanGapIsOneOverRate) {
  SplitMix64 rng(42);
  RateSchedule s(200, Distribution::kPoisson, [&] { return rng.uniform01(); });
  constexpr int kSends = 20000;
  nanoseconds last{};
  for (int i = 0; i <= kSends; ++i) last = s.next();
  double mean_gap_s = static_cast<double>(last.count()) / 1e9 / kSends;
  EXPECT_NEAR(mean_gap_s, 1.0 / 200, 0.02 / 200);
}

TEST(RateSchedule, DistributionNames) {
  EXPECT_EQ(parse_distribution("constant"), Distribution::kConstant);
  EXPECT_EQ(parse_distribution("poisson"), Distribution::kPoisson);
  EXPECT_FALSE(parse_distribution("uniform"));
  EXPECT_EQ(distribution_name(Distribution::kPoisson), "poisson");
}

}  // namespace
}  // namespace infergate::bench
