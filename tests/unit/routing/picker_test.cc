#include "routing/picker.h"

#include <gtest/gtest.h>

#include <map>

namespace infergate::routing {
namespace {

struct FleetBuilder {
  std::vector<BackendInfo> backends;

  FleetBuilder& add(std::string name, std::vector<std::string> models, double weight = 1.0,
                    BackendState state = BackendState::kHealthy) {
    BackendInfo b;
    b.id = static_cast<std::uint32_t>(backends.size() + 100);
    b.name = std::move(name);
    b.weight = weight;
    b.state = state;
    for (const std::string& m : models) {
      const size_t colon = m.find(':');
      if (colon == std::string::npos) {
        b.models[m].ready = {"1"};
      } else {
        b.models[m.substr(0, colon)].ready.push_back(m.substr(colon + 1));
      }
    }
    b.runtime = std::make_shared<BackendRuntime>();
    backends.push_back(std::move(b));
    return *this;
  }
  Fleet build() { return Fleet(backends); }
};

void set_load(const Fleet& f, int position, std::int64_t outstanding) {
  f.backends()[position].runtime->outstanding = outstanding;
}

std::string picked(Picker& p, const Fleet& f, std::string_view model,
                   std::string_view version = "") {
  PickResult r = p.pick(f, PickRequest{.model = model, .version = version});
  return r.status == PickResult::Status::kPicked ? f.backends()[r.position].name : "";
}

TEST(Picker, LeastLoadedPrefersTheLessLoaded) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  set_load(f, 0, 5);
  set_load(f, 1, 1);
  set_load(f, 2, 9);
  Picker p(Policy::kLeastLoaded, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(picked(p, f, "m"), "b");
}

TEST(Picker, WeightsScaleTheLoad) {
  // b has 3x the weight: with 4 outstanding each, b's score is lower.
  Fleet f = FleetBuilder().add("a", {"m"}, 1.0).add("b", {"m"}, 3.0).build();
  set_load(f, 0, 4);
  set_load(f, 1, 4);
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(picked(p, f, "m"), "b");
  // Even with 10 outstanding b (11/3) beats a with 3 (4/1)... and loses to a with 2 (3/1).
  set_load(f, 1, 10);
  set_load(f, 0, 3);
  EXPECT_EQ(picked(p, f, "m"), "b");
  set_load(f, 0, 2);
  EXPECT_EQ(picked(p, f, "m"), "a");
}

// Issue 10: a backend that answers probes but stops answering requests kept getting half
// of them; its overdue requests now weigh on its score.
TEST(Picker, OverdueRequestsWeighOnTheScore) {
  Fleet f = FleetBuilder().add("stuck", {"m"}).add("busy", {"m"}).build();
  set_load(f, 0, 2);
  set_load(f, 1, 6);
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(picked(p, f, "m"), "stuck");
  f.backends()[0].runtime->overdue = 1;  // 2 + 8 > 6
  for (int i = 0; i < 10; ++i) EXPECT_EQ(picked(p, f, "m"), "busy");
}

void set_latency(const Fleet& f, int position, std::uint64_t ns) {
  f.backends()[position].runtime->latency_ewma_ns = ns;
}

TEST(Picker, LatencyAwareLoadWeighsHowSlowEachBackendHasBeen) {
  Fleet f = FleetBuilder().add("fast", {"m"}).add("slow", {"m"}).build();
  set_latency(f, 0, 2'000'000);   // 2 ms
  set_latency(f, 1, 10'000'000);  // 10 ms: each of its requests counts 5x
  set_load(f, 0, 8);
  set_load(f, 1, 2);
  Picker aware(Policy::kLeastLoaded, 1, /*latency_aware=*/true);
  Picker plain(Policy::kLeastLoaded, 1);
  EXPECT_EQ(picked(aware, f, "m"), "fast");  // 9 vs 3*5 = 15
  EXPECT_EQ(picked(plain, f, "m"), "slow");  // 9 vs 3
  set_load(f, 0, 20);
  EXPECT_EQ(picked(aware, f, "m"), "slow");  // 21 vs 15
}

TEST(Picker, LatencyIsIgnoredForAnIdleOrUnmeasuredBackend) {
  Fleet f = FleetBuilder().add("fast", {"m"}).add("slow", {"m"}).build();
  set_latency(f, 0, 1'000'000);
  set_latency(f, 1, 500'000'000);  // one bad moment long ago
  set_load(f, 0, 3);
  set_load(f, 1, 0);
  Picker aware(Policy::kLeastLoaded, 1, /*latency_aware=*/true);
  EXPECT_EQ(picked(aware, f, "m"), "slow");  // idle: it gets the chance to show it is fast
  set_load(f, 1, 1);
  set_latency(f, 1, 0);  // never measured: plain outstanding counts decide
  EXPECT_EQ(picked(aware, f, "m"), "slow");
}

TEST(BackendRuntime, LatencyAverageStartsAtTheFirstSampleAndMovesAnEighth) {
  BackendRuntime r;
  r.observe_latency(800);
  EXPECT_EQ(r.latency_ewma_ns.load(), 800u);
  r.observe_latency(1600);
  EXPECT_EQ(r.latency_ewma_ns.load(), 900u);
  r.observe_latency(0);  // never back to "unmeasured"
  EXPECT_GT(r.latency_ewma_ns.load(), 0u);
}

TEST(Picker, ABackendAtItsCapIsSkippedAndAllFullSaysSo) {
  FleetBuilder fb;
  fb.add("a", {"m"}).add("b", {"m"});
  fb.backends[0].max_inflight = 2;
  fb.backends[1].max_inflight = 2;
  Fleet f = fb.build();
  ASSERT_TRUE(f.has_caps());
  set_load(f, 0, 2);
  set_load(f, 1, 1);
  Picker p(Policy::kLeastLoaded, 1);
  Picker rr(Policy::kRoundRobin, 1);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(picked(p, f, "m"), "b");
    EXPECT_EQ(picked(rr, f, "m"), "b");
  }
  set_load(f, 1, 2);
  EXPECT_EQ(p.pick(f, {.model = "m"}).status, PickResult::Status::kFull);
  // Full is not "unknown model": that answer does not change.
  EXPECT_EQ(p.pick(f, {.model = "other"}).status, PickResult::Status::kNotFound);
}

TEST(BackendRuntime, TryAcquireNeverPassesTheCap) {
  BackendRuntime r;
  EXPECT_TRUE(r.try_acquire(2));
  EXPECT_TRUE(r.try_acquire(2));
  EXPECT_FALSE(r.try_acquire(2));
  EXPECT_EQ(r.outstanding.load(), 2);
  EXPECT_TRUE(r.try_acquire(0));  // no cap
  EXPECT_EQ(r.outstanding.load(), 3);
}

TEST(Picker, IdleEqualBackendsShareTheLoad) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  Picker p(Policy::kLeastLoaded, 7);
  std::map<std::string, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[picked(p, f, "m")];
  for (const auto& [name, n] : counts) EXPECT_NEAR(n, 1000, 150) << name;
}

TEST(Picker, PowerOfTwoChoicesOnLargeFleetsAvoidsTheHotBackend) {
  FleetBuilder builder;
  for (int i = 0; i < 20; ++i) builder.add("b" + std::to_string(i), {"m"});
  Fleet f = builder.build();
  for (int i = 0; i < 20; ++i) set_load(f, i, i == 7 ? 1000 : 10);
  Picker p(Policy::kLeastLoaded, 3);
  int hot = 0;
  for (int i = 0; i < 2000; ++i) hot += picked(p, f, "m") == "b7";
  // b7 wins only if both samples are b7, which two distinct samples never are.
  EXPECT_EQ(hot, 0);
}

TEST(Picker, OnlyRoutableBackendsWithTheModelAreCandidates) {
  Fleet f = FleetBuilder()
                .add("a", {"resnet"})
                .add("b", {"bert"})
                .add("c", {"resnet"}, 1.0, BackendState::kUnhealthy)
                .add("d", {"resnet"}, 1.0, BackendState::kEjected)
                .build();
  Picker p(Policy::kLeastLoaded, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(picked(p, f, "resnet"), "a");
  EXPECT_EQ(picked(p, f, "bert"), "b");
}

TEST(Picker, VersionsFilterCandidates) {
  Fleet f = FleetBuilder().add("a", {"m:1"}).add("b", {"m:2"}).build();
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(picked(p, f, "m", "2"), "b");
  EXPECT_EQ(picked(p, f, "m", "1"), "a");
  // A version no backend lists is NOT_FOUND, as Triton answers (not UNAVAILABLE, which
  // tells a client to retry).
  EXPECT_EQ(p.pick(f, {.model = "m", .version = "3"}).status, PickResult::Status::kNotFound);
}

TEST(Picker, AKnownVersionWithNoHealthyBackendIsUnavailable) {
  Fleet f =
      FleetBuilder().add("a", {"m:1"}).add("b", {"m:2"}, 1.0, BackendState::kUnhealthy).build();
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(p.pick(f, {.model = "m", .version = "2"}).status, PickResult::Status::kUnavailable);
  EXPECT_EQ(p.pick(f, {.model = "m", .version = "9"}).status, PickResult::Status::kNotFound);
}

TEST(Picker, NotFoundVersusUnavailable) {
  Fleet f = FleetBuilder().add("a", {"m"}, 1.0, BackendState::kUnhealthy).build();
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(p.pick(f, {.model = "m"}).status, PickResult::Status::kUnavailable);
  EXPECT_EQ(p.pick(f, {.model = "other"}).status, PickResult::Status::kNotFound);
  EXPECT_EQ(p.pick(f, {}).status, PickResult::Status::kUnavailable);  // nothing healthy
}

TEST(Picker, ExcludedBackendsAreSkippedForRetries) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).build();
  set_load(f, 1, 50);
  Picker p(Policy::kLeastLoaded, 1);
  const std::uint32_t tried[] = {f.backends()[0].id};
  PickResult r = p.pick(f, {.model = "m", .exclude = tried});
  ASSERT_EQ(r.status, PickResult::Status::kPicked);
  EXPECT_EQ(f.backends()[r.position].name, "b");
  const std::uint32_t both[] = {f.backends()[0].id, f.backends()[1].id};
  EXPECT_EQ(p.pick(f, {.model = "m", .exclude = both}).status, PickResult::Status::kUnavailable);
}

TEST(Picker, RoundRobinAndRandomIgnoreLoad) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).build();
  set_load(f, 0, 100);
  Picker rr(Policy::kRoundRobin, 1);
  EXPECT_NE(picked(rr, f, "m"), picked(rr, f, "m"));
  Picker random(Policy::kRandom, 1);
  int a = 0;
  for (int i = 0; i < 1000; ++i) a += picked(random, f, "m") == "a";
  EXPECT_NEAR(a, 500, 100);
}

void set_triton_pending(const Fleet& f, int position, std::int64_t pending) {
  f.backends()[position].runtime->triton_pending = pending;
}

TEST(Picker, TritonsPendingCountBreaksTiesBetweenEqualScores) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  set_triton_pending(f, 0, 5);
  set_triton_pending(f, 1, 1);
  set_triton_pending(f, 2, 3);
  Picker p(Policy::kLeastLoaded, 1);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(picked(p, f, "m"), "b");
  // Only a tie-break: a lower score still wins over fewer pending requests.
  set_load(f, 1, 1);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(picked(p, f, "m"), "c");
  // Equal pending counts share the load.
  set_triton_pending(f, 0, 3);
  std::map<std::string, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[picked(p, f, "m")];
  EXPECT_EQ(counts["b"], 0);
  EXPECT_NEAR(counts["a"], 1000, 150);
  EXPECT_NEAR(counts["c"], 1000, 150);
}

TEST(Picker, AnUnknownOrStalePendingCountNeitherWinsNorLosesATie) {
  Fleet f = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  set_triton_pending(f, 0, 4);   // more than c: loses to c
  set_triton_pending(f, 1, -1);  // no metrics_url, or stale: not compared
  set_triton_pending(f, 2, 2);
  Picker p(Policy::kLeastLoaded, 5);
  std::map<std::string, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[picked(p, f, "m")];
  EXPECT_EQ(counts["a"], 0);
  EXPECT_NEAR(counts["b"], 1500, 200);
  EXPECT_NEAR(counts["c"], 1500, 200);
}

TEST(Picker, TritonsPendingCountBreaksTiesInPowerOfTwoChoices) {
  FleetBuilder builder;
  for (int i = 0; i < 20; ++i) builder.add("b" + std::to_string(i), {"m"});
  Fleet f = builder.build();
  for (int i = 0; i < 20; ++i) set_triton_pending(f, i, i == 7 ? 1000 : 0);
  Picker p(Policy::kLeastLoaded, 3);
  int hot = 0;
  for (int i = 0; i < 2000; ++i) hot += picked(p, f, "m") == "b7";
  EXPECT_EQ(hot, 0);  // equal scores everywhere; b7's queue loses every pair it is in
  for (int i = 0; i < 20; ++i) set_triton_pending(f, i, -1);
  for (int i = 0; i < 2000; ++i) hot += picked(p, f, "m") == "b7";
  EXPECT_GT(hot, 0);  // without the counts, the first of a tied pair wins
}

TEST(Picker, SlowStartLowersTheEffectiveWeight) {
  FleetBuilder builder;
  builder.add("a", {"m"}).add("b", {"m"});
  builder.backends[1].slow_start_factor = 0.1;
  Fleet f = builder.build();
  set_load(f, 0, 3);
  set_load(f, 1, 1);
  Picker p(Policy::kLeastLoaded, 1);
  EXPECT_EQ(picked(p, f, "m"), "a");  // b: (1+1)/0.1 = 20 > a: (3+1)/1 = 4
}

}  // namespace
}  // namespace infergate::routing

namespace infergate::routing {
namespace {

std::string hashed(const Fleet& f, std::string_view key, std::string_view model = "m") {
  PickResult r = Picker::pick_by_hash(f, PickRequest{.model = model}, key);
  return r.status == PickResult::Status::kPicked ? f.backends()[r.position].name : "";
}

// Two gateways see the same backends in another order, with other ids: they agree.
TEST(PickByHash, EveryReplicaWithTheSameFleetPicksTheSameBackend) {
  Fleet one = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  FleetBuilder other;
  other.add("x", {}).add("c", {"m"}).add("a", {"m"}).add("b", {"m"});
  Fleet two = other.build();
  std::map<std::string, int> spread;
  for (int s = 0; s < 3000; ++s) {
    const std::string key = "m" + std::string(1, '\0') + "n" + std::to_string(s);
    const std::string name = hashed(one, key);
    EXPECT_EQ(name, hashed(two, key)) << s;
    ++spread[name];
  }
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_GT(spread[name], 800) << name;
    EXPECT_LT(spread[name], 1200) << name;
  }
}

// A backend that leaves moves only its own sequences; the weights set the shares.
TEST(PickByHash, ALeavingBackendMovesOnlyItsSequencesAndWeightsSetShares) {
  Fleet three = FleetBuilder().add("a", {"m"}).add("b", {"m"}).add("c", {"m"}).build();
  Fleet two = FleetBuilder().add("a", {"m"}).add("b", {"m"}).build();
  for (int s = 0; s < 2000; ++s) {
    const std::string key = "k" + std::to_string(s);
    const std::string before = hashed(three, key);
    if (before != "c") {
      EXPECT_EQ(hashed(two, key), before) << s;
    }
  }
  Fleet weighted = FleetBuilder().add("a", {"m"}, 1.0).add("b", {"m"}, 3.0).build();
  int b = 0;
  for (int s = 0; s < 4000; ++s) b += hashed(weighted, "w" + std::to_string(s)) == "b";
  EXPECT_GT(b, 2700);  // 3/4 of 4000 = 3000
  EXPECT_LT(b, 3300);
}

TEST(PickByHash, OnlyBackendsServingTheModelAndAFullWinnerWaits) {
  FleetBuilder builder;
  builder.add("a", {"m"}).add("b", {"other"}).add("c", {"m"}, 1.0, BackendState::kUnhealthy);
  builder.backends[0].max_inflight = 1;
  Fleet f = builder.build();
  EXPECT_EQ(hashed(f, "k1"), "a");
  set_load(f, 0, 1);
  EXPECT_EQ(Picker::pick_by_hash(f, PickRequest{.model = "m"}, "k1").status,
            PickResult::Status::kFull);
  EXPECT_EQ(Picker::pick_by_hash(f, PickRequest{.model = "nope"}, "k1").status,
            PickResult::Status::kNotFound);
}

}  // namespace
}  // namespace infergate::routing
