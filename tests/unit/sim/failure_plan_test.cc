#include "benchmarks/sim/core/failure_plan.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace infergate::sim {
namespace {

using Fate = FailurePlan::Fate;

std::map<Fate, int> draw(FailurePlan& plan, int n) {
  std::map<Fate, int> counts;
  for (int i = 0; i < n; ++i) ++counts[plan.next()];
  return counts;
}

TEST(FailurePlan, NoRatesServeEverything) {
  FailurePlan plan({}, 1);
  EXPECT_EQ(draw(plan, 1000)[Fate::kServe], 1000);
}

TEST(FailurePlan, FatesFollowTheirRates) {
  FailurePlan plan({.refuse = 0.1, .hang = 0.2, .error = 0.3}, 5);
  std::map<Fate, int> c = draw(plan, 100000);
  // Binomial standard deviations are below 150 here; allow about five of them.
  EXPECT_NEAR(c[Fate::kRefuse], 10000, 700);
  EXPECT_NEAR(c[Fate::kHang], 20000, 700);
  EXPECT_NEAR(c[Fate::kError], 30000, 700);
  EXPECT_NEAR(c[Fate::kServe], 40000, 700);
}

TEST(FailurePlan, RateOneAlwaysFails) {
  FailurePlan plan({.error = 1.0}, 3);
  EXPECT_EQ(draw(plan, 1000)[Fate::kError], 1000);
}

TEST(FailurePlan, SameSeedSameFates) {
  FailurePlan a({.error = 0.5}, 42);
  FailurePlan b({.error = 0.5}, 42);
  FailurePlan c({.error = 0.5}, 43);
  std::vector<Fate> fa, fb, fc;
  for (int i = 0; i < 200; ++i) {
    fa.push_back(a.next());
    fb.push_back(b.next());
    fc.push_back(c.next());
  }
  EXPECT_EQ(fa, fb);
  EXPECT_NE(fa, fc);
}

}  // namespace
}  // namespace infergate::sim
