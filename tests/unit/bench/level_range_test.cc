#include "benchmarks/bench/core/level_range.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace infergate::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseLevels, StartOnly) { EXPECT_THAT(*parse_levels("4", true).value, ElementsAre(4)); }

TEST(ParseLevels, StartEndDefaultsToStepOne) {
  EXPECT_THAT(*parse_levels("1:4", true).value, ElementsAre(1, 2, 3, 4));
}

TEST(ParseLevels, StartEndStepStopsAtOrBeforeEnd) {
  EXPECT_THAT(*parse_levels("1:8:3", true).value, ElementsAre(1, 4, 7));
  EXPECT_THAT(*parse_levels("2:8:2", true).value, ElementsAre(2, 4, 6, 8));
}

TEST(ParseLevels, RatesAllowFractionsWithoutDrift) {
  std::vector<double> v = *parse_levels("0.5:1.5:0.1", false).value;
  ASSERT_EQ(v.size(), 11u);
  EXPECT_DOUBLE_EQ(v.back(), 1.5);
  EXPECT_THAT(*parse_levels("100:300:100", false).value, ElementsAre(100, 200, 300));
}

TEST(ParseLevels, RejectsWithAReason) {
  EXPECT_THAT(parse_levels("", true).error, HasSubstr("START is empty"));
  EXPECT_THAT(parse_levels("x", true).error, HasSubstr("'x' is not a number"));
  EXPECT_THAT(parse_levels("1.5", true).error, HasSubstr("whole number"));
  EXPECT_THAT(parse_levels("0", true).error, HasSubstr("greater than 0"));
  EXPECT_THAT(parse_levels("-3", false).error, HasSubstr("greater than 0"));
  EXPECT_THAT(parse_levels("4:2", true).error, HasSubstr("END must not be below START"));
  EXPECT_THAT(parse_levels("1:4:0", true).error, HasSubstr("STEP must be greater than 0"));
  EXPECT_THAT(parse_levels("1:2:3:4", true).error, HasSubstr("more than START:END:STEP"));
  EXPECT_THAT(parse_levels("1:", true).error, HasSubstr("END is empty"));
  EXPECT_THAT(parse_levels("1:100000", true).error, HasSubstr("more than 1000 levels"));
  EXPECT_THAT(parse_levels("inf", false).error, HasSubstr("not a number"));
}

}  // namespace
}  // namespace infergate::bench
