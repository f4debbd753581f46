#include "health/health_policy.h"

#include <gtest/gtest.h>

namespace infergate::health {
namespace {

using namespace std::chrono_literals;

HealthOptions options() {
  HealthOptions o;
  o.unhealthy_threshold = 2;
  o.healthy_threshold = 3;
  o.ejection_base = 5s;
  o.ejection_max = 30s;
  o.max_ejected_percent = 50;
  o.slow_start = 10s;
  return o;
}

TEST(HealthPolicy, FirstSuccessMakesAnUnknownBackendHealthyWithoutSlowStart) {
  HealthPolicy p(options());
  HealthRecord r;
  const TimePoint t0 = TimePoint{} + 100s;
  Transition t = p.on_probe(r, true, "", t0);
  EXPECT_EQ(t.from, BackendState::kUnknown);
  EXPECT_EQ(t.to, BackendState::kHealthy);
  EXPECT_EQ(p.slow_start_factor(r, t0), 1.0);
}

TEST(HealthPolicy, ConsecutiveFailuresMarkUnhealthyAndSuccessesRecoverWithSlowStart) {
  HealthPolicy p(options());
  HealthRecord r;
  TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  EXPECT_FALSE(p.on_probe(r, false, "timeout", t).changed());  // one failure is not enough
  p.on_probe(r, true, "", t);                                  // and a success resets it
  EXPECT_FALSE(p.on_probe(r, false, "timeout", t).changed());
  Transition down = p.on_probe(r, false, "deadline exceeded", t);
  EXPECT_EQ(down.to, BackendState::kUnhealthy);
  EXPECT_NE(down.reason.find("2 probes in a row failed: deadline exceeded"), std::string::npos);
  EXPECT_FALSE(p.on_probe(r, true, "", t).changed());
  EXPECT_FALSE(p.on_probe(r, true, "", t).changed());
  Transition up = p.on_probe(r, true, "", t);
  EXPECT_EQ(up.to, BackendState::kHealthy);
  EXPECT_DOUBLE_EQ(p.slow_start_factor(r, t), 0.1);
  EXPECT_DOUBLE_EQ(p.slow_start_factor(r, t + 5s), 0.5);
  EXPECT_DOUBLE_EQ(p.slow_start_factor(r, t + 20s), 1.0);
}

TEST(HealthPolicy, EjectionTimeGrowsAndIsCapped) {
  HealthPolicy p(options());
  EXPECT_EQ(p.ejection_time(1), 5s);
  EXPECT_EQ(p.ejection_time(2), 10s);
  EXPECT_EQ(p.ejection_time(3), 20s);
  EXPECT_EQ(p.ejection_time(4), 30s);
  EXPECT_EQ(p.ejection_time(10), 30s);
}

TEST(HealthPolicy, OutliersEjectUntilTheTimeRunsOut) {
  HealthPolicy p(options());
  HealthRecord r;
  TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  Transition e = p.on_outliers(r, 0, 4, t);
  EXPECT_EQ(e.to, BackendState::kEjected);
  EXPECT_FALSE(p.on_probe(r, true, "", t + 1s).changed());  // probes do not end it early
  EXPECT_FALSE(p.on_tick(r, t + 4s).changed());
  Transition back = p.on_tick(r, t + 5s);
  EXPECT_EQ(back.to, BackendState::kHealthy);
  EXPECT_LT(p.slow_start_factor(r, t + 5s), 1.0);  // ramps up again
  // A second ejection lasts twice as long.
  p.on_outliers(r, 0, 4, t + 6s);
  EXPECT_FALSE(p.on_tick(r, t + 15s).changed());
  EXPECT_EQ(p.on_tick(r, t + 16s).to, BackendState::kHealthy);
}

TEST(HealthPolicy, NeverEjectsMoreThanTheConfiguredShare) {
  HealthPolicy p(options());
  HealthRecord r;
  const TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  // Two of four already out: a third would be 75% > 50%.
  Transition refused = p.on_outliers(r, 2, 4, t);
  EXPECT_FALSE(refused.changed());
  EXPECT_NE(refused.reason.find("max_ejected_percent"), std::string::npos);
  EXPECT_TRUE(p.on_outliers(r, 1, 4, t).changed());
}

TEST(HealthPolicy, ProbeFailuresWhileEjectedMakeItUnhealthy) {
  HealthPolicy p(options());
  HealthRecord r;
  const TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  p.on_outliers(r, 0, 2, t);
  p.on_probe(r, false, "refused", t);
  EXPECT_EQ(p.on_probe(r, false, "refused", t).to, BackendState::kUnhealthy);
}

TEST(HealthPolicy, EjectionsAreForgivenAfterALongHealthyStretch) {
  HealthPolicy p(options());
  HealthRecord r;
  TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  p.on_outliers(r, 0, 2, t);
  p.on_tick(r, t + 5s);
  EXPECT_EQ(r.ejections, 1u);
  p.on_tick(r, t + 5s + 30s);
  EXPECT_EQ(r.ejections, 0u);
}

TEST(HealthPolicy, DrainingIgnoresProbesAndOutliers) {
  HealthPolicy p(options());
  HealthRecord r;
  const TimePoint t = TimePoint{} + 100s;
  p.on_probe(r, true, "", t);
  EXPECT_EQ(p.begin_drain(r).to, BackendState::kDraining);
  EXPECT_FALSE(p.on_probe(r, false, "x", t).changed());
  EXPECT_FALSE(p.on_probe(r, false, "x", t).changed());
  EXPECT_FALSE(p.on_outliers(r, 0, 4, t).changed());
}

}  // namespace
}  // namespace infergate::health
