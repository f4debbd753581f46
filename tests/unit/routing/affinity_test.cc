#include "routing/affinity.h"

#include <gtest/gtest.h>

#include <vector>

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
  EXPECT_TRUE(t.assign(k, 7, "gpu-b", t0));
  auto e = t.find(k, t0 + 30s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->backend_id, 7u);
  EXPECT_EQ(e->backend_name, "gpu-b");
  // Use refreshes the idle clock: 30 s + 59 s is within 60 s of the last use.
  EXPECT_TRUE(t.find(k, t0 + 89s));
  EXPECT_FALSE(t.find(k, t0 + 150s + 1ns));  // idle past the timeout
  EXPECT_TRUE(t.assign(k, 7, "gpu-b", t0));
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
  EXPECT_TRUE(t.assign("s1", 1, "a", t0));
  EXPECT_TRUE(t.assign("s2", 1, "a", t0));
  EXPECT_TRUE(t.assign("s3", 2, "b", t0));
  EXPECT_EQ(t.mark_lost(1), 2u);
  EXPECT_TRUE(t.find("s1", t0)->lost);
  EXPECT_FALSE(t.find("s3", t0)->lost);
  EXPECT_EQ(t.mark_lost(1), 0u);  // already lost
}

TEST(Affinity, SweepDropsIdleEntries) {
  AffinityTable t(10s);
  const TP t0{};
  EXPECT_TRUE(t.assign("old", 1, "a", t0));
  EXPECT_TRUE(t.assign("new", 1, "a", t0 + 8s));
  EXPECT_EQ(t.sweep(t0 + 15s), 1u);
  EXPECT_EQ(t.size(), 1u);
}

// Clients choose the ids: what the table holds is capped, and a new sequence past the
// cap is refused while the ones it has go on.
TEST(Affinity, ANewSequencePastMaxBytesIsRefusedAndEndingOneMakesRoom) {
  const std::string id(1000, 'x');
  const std::uint64_t each = AffinityTable::key("m", false, 0, id + "0").size() + 1 +
                             AffinityTable::kEntryOverhead;  // key, name "a", overhead
  AffinityTable t(10s, 3 * each);
  const TP t0{};
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i)
    keys.push_back(AffinityTable::key("m", false, 0, id + std::to_string(i)));
  EXPECT_TRUE(t.assign(keys[0], 1, "a", t0));
  EXPECT_TRUE(t.assign(keys[1], 1, "a", t0));
  EXPECT_TRUE(t.assign(keys[2], 1, "a", t0));
  EXPECT_EQ(t.bytes(), 3 * each);
  EXPECT_FALSE(t.assign(keys[3], 1, "a", t0));
  EXPECT_FALSE(t.find(keys[3], t0));
  EXPECT_EQ(t.size(), 3u);
  // A sequence the table holds may move (a restart) even when the table is full.
  EXPECT_TRUE(t.assign(keys[0], 2, "b", t0));
  EXPECT_EQ(t.find(keys[0], t0)->backend_id, 2u);
  // Its end frees its bytes: the new one fits.
  t.erase(keys[1]);
  EXPECT_EQ(t.bytes(), 2 * each);
  EXPECT_TRUE(t.assign(keys[3], 1, "a", t0));
  // Expiry, by lookup or by sweep, frees them too.
  EXPECT_FALSE(t.find(keys[0], t0 + 11s));
  EXPECT_EQ(t.sweep(t0 + 11s), 2u);
  EXPECT_EQ(t.bytes(), 0u);
  // A lower cap applies to new sequences from then on.
  t.set_max_bytes(each - 1);
  EXPECT_FALSE(t.assign(keys[0], 1, "a", t0));
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
  EXPECT_FALSE(b.try_retry(now));  // the floor pays out one at a time
  // 3 per 10 s: the next one a third of the window later.
  EXPECT_FALSE(b.try_retry(now + 3333ms));
  EXPECT_TRUE(b.try_retry(now + 3334ms));
  EXPECT_FALSE(b.try_retry(now + 3334ms));
  EXPECT_EQ(b.retries_in_window(now + 3334ms), 2u);
}

TEST(RetryBudget, AColdBurstTakesOneFloorRetryAndLaterFailuresGetTheirs) {
  RetryBudget b(/*percent=*/0, /*min_retries=*/3);
  const TP start = TP{} + 5s;
  // Eight requests fail together right after start: one is retried.
  int burst = 0;
  for (int i = 0; i < 8; ++i) {
    b.on_request(start);
    burst += b.try_retry(start);
  }
  EXPECT_EQ(burst, 1);
  // Then one failure a second for a minute: 3 per 10 s are retried, spread out.
  std::vector<int> retried_at;
  for (int s = 1; s <= 60; ++s) {
    const TP now = start + std::chrono::seconds(s);
    b.on_request(now);
    if (b.try_retry(now)) retried_at.push_back(s);
  }
  EXPECT_EQ(retried_at.size(), 18u);
  EXPECT_EQ(retried_at.front(), 4);
  for (size_t i = 1; i < retried_at.size(); ++i) {
    EXPECT_GE(retried_at[i] - retried_at[i - 1], 3);
    EXPECT_LE(retried_at[i] - retried_at[i - 1], 4);
  }
}

TEST(RetryBudget, AnIdleFloorHoldsAtMostTwo) {
  RetryBudget b(0, /*min_retries=*/3);
  const TP start = TP{} + 5s;
  EXPECT_TRUE(b.try_retry(start));
  const TP later = start + 100s;
  EXPECT_TRUE(b.try_retry(later));
  EXPECT_TRUE(b.try_retry(later));
  EXPECT_FALSE(b.try_retry(later));
  EXPECT_FALSE(b.try_retry(later + 3333ms));
  EXPECT_TRUE(b.try_retry(later + 3334ms));
}

TEST(RetryBudget, TheShareAndTheFloorAddUp) {
  RetryBudget b(10, /*min_retries=*/3);
  const TP now = TP{} + 100s;
  for (int i = 0; i < 100; ++i) b.on_request(now);
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += b.try_retry(now);
  EXPECT_EQ(allowed, 11);  // 10% of 100, and the floor's one
  // The floor's retries count against the share: it does not come back with them.
  EXPECT_FALSE(b.try_retry(now + 1s));
  EXPECT_TRUE(b.try_retry(now + 3334ms));
}

TEST(RetryBudget, NoFloorWhenTheMinimumIsZero) {
  RetryBudget b(10, /*min_retries=*/0);
  const TP now = TP{} + 5s;
  b.on_request(now);
  EXPECT_FALSE(b.try_retry(now));
  EXPECT_FALSE(b.try_retry(now + 60s));
}

}  // namespace
}  // namespace infergate::routing
