#include "benchmarks/sim/core/sequence_table.h"

#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;

const SequenceTable::TimePoint t0 = SequenceTable::TimePoint{} + 1h;

TEST(SequenceTable, StartContinueEnd) {
  SequenceTable t(1s);
  SequenceTable::Update u = t.apply("a", true, false, 5, t0);
  EXPECT_TRUE(u.known);
  EXPECT_EQ(u.sum, 5);
  EXPECT_EQ(u.count, 1);
  u = t.apply("a", false, false, 2, t0 + 1ms);
  EXPECT_EQ(u.sum, 7);
  EXPECT_EQ(u.count, 2);
  u = t.apply("a", false, true, 1, t0 + 2ms);
  EXPECT_EQ(u.sum, 8);
  EXPECT_EQ(u.count, 3);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.apply("a", false, false, 1, t0 + 3ms).known);
}

TEST(SequenceTable, UnknownWithoutStartAndRestartResets) {
  SequenceTable t(1s);
  EXPECT_FALSE(t.apply("x", false, false, 1, t0).known);
  EXPECT_EQ(t.size(), 0u);  // a failed request creates nothing
  t.apply("x", true, false, 10, t0);
  SequenceTable::Update u = t.apply("x", true, false, 1, t0);
  EXPECT_EQ(u.sum, 1);
  EXPECT_EQ(u.count, 1);
  EXPECT_EQ(t.apply("y", true, true, 4, t0).sum, 4);  // start and end at once
  EXPECT_EQ(t.size(), 1u);
}

TEST(SequenceTable, IdleSequencesExpire) {
  SequenceTable t(100ms);
  t.apply("a", true, false, 1, t0);
  EXPECT_TRUE(t.apply("a", false, false, 1, t0 + 100ms).known);  // exactly at the limit
  EXPECT_FALSE(t.apply("a", false, false, 1, t0 + 201ms).known);
}

TEST(SequenceTable, SweepDropsExpiredSequences) {
  SequenceTable t(100ms);
  for (int i = 0; i < 50; ++i) t.apply("s" + std::to_string(i), true, false, 1, t0);
  t.apply("fresh", true, false, 1, t0 + 90ms);
  EXPECT_EQ(t.size(), 51u);  // swept at most once per idle timeout
  EXPECT_TRUE(t.apply("fresh", false, false, 1, t0 + 150ms).known);
  EXPECT_EQ(t.size(), 1u);  // the 50 idle ones are gone
  t.clear();
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace infergate::sim
