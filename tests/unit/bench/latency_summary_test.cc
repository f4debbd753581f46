#include "benchmarks/bench/core/latency_summary.h"

#include <gtest/gtest.h>

#include <numeric>

namespace infergate::bench {
namespace {

TEST(Percentile, NearestRank) {
  std::vector<std::int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);  // 1..100
  EXPECT_EQ(percentile_of_sorted(v, 50), 50);
  EXPECT_EQ(percentile_of_sorted(v, 90), 90);
  EXPECT_EQ(percentile_of_sorted(v, 99), 99);
  EXPECT_EQ(percentile_of_sorted(v, 100), 100);
  EXPECT_EQ(percentile_of_sorted(v, 0.001), 1);
}

TEST(Percentile, SmallSetsRoundUp) {
  std::vector<std::int64_t> v{10, 20, 30};
  EXPECT_EQ(percentile_of_sorted(v, 50), 20);  // rank ceil(1.5) = 2
  EXPECT_EQ(percentile_of_sorted(v, 99), 30);
  EXPECT_EQ(percentile_of_sorted(std::vector<std::int64_t>{7}, 50), 7);
  EXPECT_EQ(percentile_of_sorted({}, 50), 0);
}

TEST(Summarize, SortsAndConvertsToMicroseconds) {
  std::vector<std::int64_t> ns;
  for (int i = 1000; i >= 1; --i) ns.push_back(i * 1000);  // 1..1000 us, descending
  LatencySummary s = summarize_latencies(ns);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.avg_us, 501);  // 500.5 rounds to 501 (round half away from zero)
  EXPECT_DOUBLE_EQ(s.p50_us, 500);
  EXPECT_DOUBLE_EQ(s.p90_us, 900);
  EXPECT_DOUBLE_EQ(s.p99_us, 990);
  EXPECT_DOUBLE_EQ(s.max_us, 1000);
  EXPECT_TRUE(std::is_sorted(ns.begin(), ns.end()));
}

TEST(Summarize, EmptyIsAllZero) {
  std::vector<std::int64_t> none;
  LatencySummary s = summarize_latencies(none);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p99_us, 0);
  EXPECT_EQ(s.avg_us, 0);
}

}  // namespace
}  // namespace infergate::bench
