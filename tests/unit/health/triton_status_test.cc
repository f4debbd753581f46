#include "health/triton_status.h"

#include <gtest/gtest.h>

namespace infergate::health {
namespace {

using namespace std::chrono_literals;
using Change = TritonRecord::Change;

const TritonRecord::TimePoint t0 = TritonRecord::TimePoint{} + 1000s;
constexpr auto kMaxAge = 15s;  // 3 intervals of 5s

TritonSignals signals(double pending, double queue_s, double success) {
  TritonSignals s;
  s.pending_requests = pending;
  s.queue_seconds = queue_s;
  s.success_requests = success;
  return s;
}

TEST(TritonRecord, NothingIsFreshBeforeTheFirstGoodScrape) {
  TritonRecord r;
  EXPECT_FALSE(r.fresh(t0, kMaxAge));
  EXPECT_EQ(r.routing_pending(t0, kMaxAge), -1);
  TritonStatus s = r.status(t0, kMaxAge);
  EXPECT_FALSE(s.fresh);
  EXPECT_FALSE(s.signals.any());
  EXPECT_FALSE(s.seconds_since_success.has_value());
  EXPECT_EQ(s.scrapes, 0u);
}

TEST(TritonRecord, FreshForThreeIntervalsAfterASuccess) {
  TritonRecord r;
  EXPECT_EQ(r.on_success(signals(4, 1, 10), t0), Change::kNone);
  EXPECT_TRUE(r.fresh(t0 + 14s, kMaxAge));
  EXPECT_EQ(r.routing_pending(t0 + 14s, kMaxAge), 4);
  // No scrape came back for too long (a stalled loop): stale by age alone.
  EXPECT_FALSE(r.fresh(t0 + 15s, kMaxAge));
  EXPECT_EQ(r.routing_pending(t0 + 15s, kMaxAge), -1);
  TritonStatus s = r.status(t0 + 15s, kMaxAge);
  EXPECT_EQ(s.signals.pending_requests, 4);  // the values are kept, marked stale
  EXPECT_DOUBLE_EQ(*s.seconds_since_success, 15.0);
}

TEST(TritonRecord, AFailureMakesItStaleAtOnceAndWarnsOnceUntilRecovery) {
  TritonRecord r;
  r.on_success(signals(2, 1, 10), t0);
  EXPECT_EQ(r.on_failure("connect: Connection refused", t0 + 5s), Change::kFailing);
  EXPECT_FALSE(r.fresh(t0 + 5s, kMaxAge));
  EXPECT_EQ(r.routing_pending(t0 + 5s, kMaxAge), -1);
  EXPECT_EQ(r.on_failure("timed out after 2s", t0 + 10s), Change::kNone);
  EXPECT_EQ(r.on_failure("HTTP status 500", t0 + 15s), Change::kNone);
  TritonStatus s = r.status(t0 + 15s, kMaxAge);
  EXPECT_EQ(s.last_error, "HTTP status 500");
  EXPECT_EQ(s.scrapes, 4u);
  EXPECT_EQ(s.failures, 3u);
  EXPECT_EQ(r.on_success(signals(1, 2, 20), t0 + 20s), Change::kRecovered);
  EXPECT_TRUE(r.fresh(t0 + 20s, kMaxAge));
  EXPECT_EQ(r.status(t0 + 20s, kMaxAge).last_error, "");
  EXPECT_EQ(r.on_success(signals(1, 2, 20), t0 + 25s), Change::kNone);
  // A backend whose very first scrape fails warns too.
  TritonRecord never;
  EXPECT_EQ(never.on_failure("resolve: Host not found", t0), Change::kFailing);
  EXPECT_EQ(never.on_failure("resolve: Host not found", t0 + 5s), Change::kNone);
}

TEST(TritonRecord, QueueTimePerRequestComesFromConsecutiveGoodScrapes) {
  TritonRecord r;
  r.on_success(signals(0, 1.0, 100), t0);
  EXPECT_FALSE(r.status(t0, kMaxAge).queue_seconds_per_request.has_value());  // one scrape
  r.on_success(signals(0, 1.5, 150), t0 + 5s);  // 0.5 s of queueing over 50 requests
  EXPECT_DOUBLE_EQ(*r.status(t0 + 5s, kMaxAge).queue_seconds_per_request, 0.01);
  r.on_failure("timed out after 2s", t0 + 10s);  // a failure in between does not matter
  r.on_success(signals(0, 1.6, 160), t0 + 15s);
  EXPECT_NEAR(*r.status(t0 + 15s, kMaxAge).queue_seconds_per_request, 0.01, 1e-9);
  r.on_success(signals(0, 1.6, 160), t0 + 20s);  // idle: no requests, no average
  EXPECT_FALSE(r.status(t0 + 20s, kMaxAge).queue_seconds_per_request.has_value());
  r.on_success(signals(0, 0.1, 5), t0 + 25s);  // Triton restarted: counters reset
  EXPECT_FALSE(r.status(t0 + 25s, kMaxAge).queue_seconds_per_request.has_value());
  TritonSignals no_queue;
  no_queue.gpu_utilization = 0.5;
  r.on_success(no_queue, t0 + 30s);
  EXPECT_FALSE(r.status(t0 + 30s, kMaxAge).queue_seconds_per_request.has_value());
  EXPECT_EQ(r.routing_pending(t0 + 30s, kMaxAge), -1);  // fresh, but no pending count
}

TEST(TritonRecord, RoutingPendingIsRounded) {
  TritonRecord r;
  r.on_success(signals(2.6, 0, 0), t0);
  EXPECT_EQ(r.routing_pending(t0, kMaxAge), 3);
}

}  // namespace
}  // namespace infergate::health
