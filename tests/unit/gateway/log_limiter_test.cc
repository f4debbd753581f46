#include "gateway/log_limiter.h"

#include <gtest/gtest.h>

namespace infergate::gateway {
namespace {

using namespace std::chrono_literals;

TEST(LogLimiter, AllowsABurstPerWindowAndCountsWhatItDropped) {
  LogLimiter limiter(3, 10s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  std::uint64_t dropped = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.allow(t0 + std::chrono::seconds(i), &dropped));
    EXPECT_EQ(dropped, 0u);
  }
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(limiter.allow(t0 + 5s, &dropped));
  // A new window: the first line written reports the 7 that were not.
  ASSERT_TRUE(limiter.allow(t0 + 10s, &dropped));
  EXPECT_EQ(dropped, 7u);
  ASSERT_TRUE(limiter.allow(t0 + 11s, &dropped));
  EXPECT_EQ(dropped, 0u);
}

}  // namespace
}  // namespace infergate::gateway
