#include "benchmarks/sim/core/latency_model.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;
using TimePoint = InstanceScheduler::TimePoint;

const TimePoint t0 = TimePoint{} + 1h;  // a fake clock's origin

TEST(InstanceScheduler, ServiceTimeIsLatencyPlusPerMiB) {
  InstanceScheduler s(1, 2ms, 10ms);
  EXPECT_EQ(s.service_time(0), 2ms);
  EXPECT_EQ(s.service_time(1 << 20), 12ms);
  EXPECT_EQ(s.service_time(512 << 10), 7ms);
  EXPECT_EQ(InstanceScheduler(1, 0ms, 0ms).service_time(64 << 20), 0ms);
}

TEST(InstanceScheduler, ZeroLatencyNeverQueues) {
  InstanceScheduler s(1, 0ms, 0ms);
  for (int i = 0; i < 5; ++i) {
    InstanceScheduler::Slot slot = s.schedule(t0, 100);
    EXPECT_EQ(slot.start, t0);
    EXPECT_EQ(slot.finish, t0);
  }
  EXPECT_EQ(s.queued(t0), 0u);
  EXPECT_EQ(s.busy(t0), 0);
}

TEST(InstanceScheduler, OneInstanceRunsRequestsBackToBack) {
  InstanceScheduler s(1, 10ms, 0ms);
  EXPECT_EQ(s.schedule(t0, 0).finish, t0 + 10ms);
  InstanceScheduler::Slot second = s.schedule(t0 + 1ms, 0);
  EXPECT_EQ(second.start, t0 + 10ms);  // waits for the first
  EXPECT_EQ(second.finish, t0 + 20ms);
  EXPECT_EQ(s.queued(t0 + 1ms), 1u);
  EXPECT_EQ(s.queued(t0 + 10ms), 0u);  // started
  // An idle instance starts a late request at once.
  InstanceScheduler::Slot late = s.schedule(t0 + 50ms, 0);
  EXPECT_EQ(late.start, t0 + 50ms);
  EXPECT_EQ(s.idle_at(), t0 + 60ms);
}

TEST(InstanceScheduler, ThroughputPlateausAtInstancesOverServiceTime) {
  // 2 instances x 20 ms, 8 clients that resend as soon as answered: 100 requests/s.
  InstanceScheduler s(2, 20ms, 0ms);
  std::vector<TimePoint> client_ready(8, t0);
  TimePoint last = t0;
  int done = 0;
  for (int round = 0; round < 25; ++round) {
    for (TimePoint& ready : client_ready) {
      InstanceScheduler::Slot slot = s.schedule(ready, 0);
      ready = slot.finish;
      last = std::max(last, slot.finish);
      ++done;
    }
  }
  const double seconds = std::chrono::duration<double>(last - t0).count();
  EXPECT_NEAR(done / seconds, 100.0, 1.0);
}

TEST(InstanceScheduler, PicksTheInstanceFreeEarliest) {
  InstanceScheduler s(2, 0ms, 10ms);                        // time proportional to size
  InstanceScheduler::Slot big = s.schedule(t0, 4 << 20);    // 40 ms on one instance
  InstanceScheduler::Slot small = s.schedule(t0, 1 << 20);  // 10 ms on the other
  EXPECT_NE(big.instance, small.instance);
  EXPECT_EQ(small.finish, t0 + 10ms);
  InstanceScheduler::Slot next = s.schedule(t0 + 1ms, 1 << 20);
  EXPECT_EQ(next.instance, small.instance);
  EXPECT_EQ(next.start, t0 + 10ms);
  EXPECT_EQ(s.busy(t0 + 5ms), 2);
  EXPECT_EQ(s.busy(t0 + 25ms), 1);
  EXPECT_EQ(s.busy(t0 + 40ms), 0);
}

TEST(InstanceScheduler, TimeNeverGoesBackwards) {
  InstanceScheduler s(4, 5ms, 0ms);
  s.schedule(t0 + 10ms, 0);
  InstanceScheduler::Slot stale = s.schedule(t0, 0);  // a thread that read the clock earlier
  EXPECT_EQ(stale.start, t0 + 10ms);
  EXPECT_EQ(s.queued(t0 + 10ms), 0u);
}

}  // namespace
}  // namespace infergate::sim
