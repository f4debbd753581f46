#include "routing/affinity.h"

#include <gtest/gtest.h>

#include "routing/retry_budget.h"

namespace infergate::routing {
namespace {

using namespace std::chrono_literals;
using TP = std::chrono::steady_clock::time_point;

TEST(Affinity, CreateReuseEndAndExpire) {
  AffinityTable t(60s);
  const TP t0{};
  const std::string k = AffinityTable::key("counter", true, 42, "");
  EXPECT_FALSE(t.find(k, t0));
  t.assign(k, 7, "gpu-b", t0);
  auto e = t.find(k, t0 + 30s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->backend_id, 7u);
  EXPECT_EQ(e->backend_name, "gpu-b");
  // Use refreshes the idle clock: 30 s + 59 s is within 60 s of the last use.
  EXPECT_TRUE(t.find(k, t0 + 89s));
  EXPECT_FALSE(t.find(k, t0 + 150s + 1ns));  // idle past the timeout
  t.assign(k, 7, "gpu-b", t0);
  t.erase(k);
  EXPECT_FALSE(t.find(k, t0));
}

TEST(Affinity, KeysSeparateModelsAndKindsOfId) {
  EXPECT_NE(AffinityTable::key("a", true, 1, ""), AffinityTable::key("b", true, 1, ""));
  EXPECT_NE(AffinityTable::key("a", true, 1, ""), AffinityTable::key("a", false, 0, "1"));
}

TEST(Affinity, ADeadOwnerLosesItsSequences) {
  AffinityTable t(60s);
  const TP t0{};
  t.assign("s1", 1, "a", t0);
  t.assign("s2", 1, "a", t0);
  t.assign("s3", 2, "b", t0);
  EXPECT_EQ(t.mark_lost(1), 2u);
  EXPECT_TRUE(t.find("s1", t0)->lost);
  EXPECT_FALSE(t.find("s3", t0)->lost);
  EXPECT_EQ(t.mark_lost(1), 0u);  // already lost
}

TEST(Affinity, SweepDropsIdleEntries) {
  AffinityTable t(10s);
  const TP t0{};
  t.assign("old", 1, "a", t0);
  t.assign("new", 1, "a", t0 + 8s);
  EXPECT_EQ(t.sweep(t0 + 15s), 1u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(RetryBudget, AllowsAShareOfRecentRequests) {
  RetryBudget b(10, /*min_retries=*/0);
  TP now = TP{} + 100s;
  for (int i = 0; i < 100; ++i) b.on_request(now);
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += b.try_retry(now);
  EXPECT_EQ(allowed, 10);
  // Ten seconds later the window has moved on.
  now += 11s;
  EXPECT_FALSE(b.try_retry(now));
  for (int i = 0; i < 20; ++i) b.on_request(now);
  EXPECT_TRUE(b.try_retry(now));
  EXPECT_TRUE(b.try_retry(now));
  EXPECT_FALSE(b.try_retry(now));
}

TEST(RetryBudget, AMinimumKeepsQuietGatewaysRetrying) {
  RetryBudget b(10, /*min_retries=*/3);
  const TP now = TP{} + 5s;
  b.on_request(now);
  EXPECT_TRUE(b.try_retry(now));
  EXPECT_TRUE(b.try_retry(now));
  EXPECT_TRUE(b.try_retry(now));
  EXPECT_FALSE(b.try_retry(now));
  EXPECT_EQ(b.retries_in_window(now), 3u);
}

}  // namespace
}  // namespace infergate::routing
