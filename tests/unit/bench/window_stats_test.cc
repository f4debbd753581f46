#include "benchmarks/bench/core/window_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace infergate::bench {
namespace {

using namespace std::chrono_literals;

WindowStats window(std::chrono::nanoseconds d, int ok, std::int64_t latency_ns, int internal,
                   std::uint64_t response_bytes = 100) {
  WindowStats w;
  w.duration = d;
  std::vector<Sample> samples;
  for (int i = 0; i < ok; ++i)
    samples.push_back({.latency_ns = latency_ns, .response_bytes = response_bytes});
  for (int i = 0; i < internal; ++i) samples.push_back({.latency_ns = 5, .code = 13});
  add_samples(w, samples);
  w.load = {.issued = static_cast<std::uint64_t>(ok + internal), .max_outstanding = 4};
  w.cpu_seconds = 0.01;
  return w;
}

TEST(WindowStats, CountsOutcomesAndOnlySuccessfulLatencies) {
  WindowStats w = window(2s, 100, 20'000'000, 10);
  EXPECT_EQ(w.successes(), 100u);
  EXPECT_EQ(w.completed(), 110u);
  EXPECT_EQ(w.outcomes[13], 10u);
  EXPECT_EQ(w.latencies_ns.size(), 100u);
  EXPECT_EQ(w.response_bytes, 100u * 100);
  EXPECT_DOUBLE_EQ(w.throughput(), 50);
  WindowMetrics m = metrics_of(w);
  EXPECT_DOUBLE_EQ(m.throughput, 50);
  EXPECT_DOUBLE_EQ(m.p99_us, 20000);
}

TEST(WindowStats, OutOfRangeCodesCountAsUnknown) {
  WindowStats w;
  std::vector<Sample> s{{.code = 200}};
  add_samples(w, s);
  EXPECT_EQ(w.outcomes[kCodeUnknown], 1u);
}

TEST(CombineWindows, FoldsTheWindowsIntoOneResult) {
  std::vector<WindowStats> ws{window(1s, 50, 10'000'000, 0), window(1s, 50, 30'000'000, 5),
                              window(2s, 100, 20'000'000, 5)};
  LevelResult r = combine_windows(ws, 8, 1000);
  EXPECT_EQ(r.level, 8);
  EXPECT_DOUBLE_EQ(r.duration_s, 4);
  EXPECT_DOUBLE_EQ(r.throughput, 50);  // 200 successes in 4 s
  EXPECT_EQ(r.requests, 210u);
  EXPECT_EQ(r.error_count, 10u);
  EXPECT_THAT(r.errors, ::testing::ElementsAre(::testing::Pair("INTERNAL", 10u)));
  EXPECT_DOUBLE_EQ(r.send_rate, 210.0 / 4);
  EXPECT_DOUBLE_EQ(r.request_bytes_per_second, 210.0 * 1000 / 4);
  EXPECT_DOUBLE_EQ(r.response_bytes_per_second, 200.0 * 100 / 4);
  EXPECT_DOUBLE_EQ(r.latency.p50_us, 20000);
  EXPECT_DOUBLE_EQ(r.latency.max_us, 30000);
  EXPECT_DOUBLE_EQ(r.latency.avg_us, 20000);
  EXPECT_EQ(r.max_outstanding, 4u);
  EXPECT_NEAR(r.cpu_us_per_request, 0.03 * 1e6 / 210, 1e-9);
}

TEST(CombineWindows, NothingFinishedIsAllZeroNotNan) {
  std::vector<WindowStats> ws{window(1s, 0, 0, 0)};
  LevelResult r = combine_windows(ws, 1, 1000);
  EXPECT_EQ(r.throughput, 0);
  EXPECT_EQ(r.cpu_us_per_request, 0);
  EXPECT_EQ(r.latency.p99_us, 0);
  EXPECT_TRUE(r.errors.empty());
}

}  // namespace
}  // namespace infergate::bench
