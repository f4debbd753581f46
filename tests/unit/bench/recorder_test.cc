#include "benchmarks/bench/core/recorder.h"

#include <gtest/gtest.h>

#include <thread>

#include "benchmarks/bench/core/in_flight.h"

namespace infergate::bench {
namespace {

TEST(Recorder, DrainReturnsEverySampleOnce) {
  Recorder r(4, 8);
  for (int i = 0; i < 100; ++i) r.record(static_cast<size_t>(i), {.latency_ns = i});
  std::vector<Sample> out;
  r.drain(out);
  EXPECT_EQ(out.size(), 100u);
  out.clear();
  r.drain(out);
  EXPECT_TRUE(out.empty());
}

TEST(Recorder, ConcurrentRecordersLoseNothing) {
  Recorder r(4, 16);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 10000; ++i) r.record(static_cast<size_t>(t), {.latency_ns = 1});
    });
  }
  std::vector<Sample> out;
  for (int i = 0; i < 10; ++i) r.drain(out);  // drains while they record
  for (auto& t : threads) t.join();
  r.drain(out);
  EXPECT_EQ(out.size(), 40000u);
}

TEST(Recorder, KeepsTheFirstMessagePerCode) {
  Recorder r;
  EXPECT_EQ(r.first_error(), "");
  r.note_error(14, "connection refused");
  r.note_error(14, "later");
  r.note_error(13, "boom");
  EXPECT_EQ(r.first_error(), "INTERNAL: boom");  // code order, not arrival order
  r.reset_errors();
  EXPECT_EQ(r.first_error(), "");
  r.note_error(99, "odd");
  EXPECT_EQ(r.first_error(), "UNKNOWN: odd");
}

TEST(InFlight, CountsAndResetsCounters) {
  InFlight f;
  f.begin();
  f.sent();
  f.begin();
  f.sent();
  f.sent();
  EXPECT_EQ(f.count(), 2u);
  LoadCounters c = f.take_counters();
  EXPECT_EQ(c.issued, 3u);
  EXPECT_EQ(c.max_outstanding, 2u);
  f.end();
  c = f.take_counters();
  EXPECT_EQ(c.issued, 0u);
  EXPECT_EQ(c.max_outstanding, 2u);  // what was outstanding when the interval began
  EXPECT_FALSE(f.wait_idle(std::chrono::steady_clock::now()));
  f.end();
  EXPECT_TRUE(f.wait_idle(std::chrono::steady_clock::now()));
}

TEST(InFlight, WaitIdleWakesWhenTheLastEnds) {
  InFlight f;
  f.begin();
  std::thread t([&f] { f.end(); });
  EXPECT_TRUE(f.wait_idle(std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  t.join();
}

}  // namespace
}  // namespace infergate::bench
