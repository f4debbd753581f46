#include "benchmarks/sim/timer_thread.h"

#include <gtest/gtest.h>

#include <future>
#include <vector>

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;
using Clock = TimerThread::Clock;

TEST(TimerThread, RunsADueTaskOnItsThread) {
  TimerThread timers;
  std::promise<std::thread::id> ran;
  timers.schedule(Clock::now() - 1s, [&] { ran.set_value(std::this_thread::get_id()); });
  std::future<std::thread::id> f = ran.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_NE(f.get(), std::this_thread::get_id());
}

TEST(TimerThread, StopRunsPendingTasksAtOnceInDueOrder) {
  TimerThread timers;
  std::vector<int> order;  // written on the timer thread, read after stop() joined it
  const Clock::time_point later = Clock::now() + 1h;
  for (int i : {3, 1, 2}) {
    timers.schedule(later + std::chrono::milliseconds(i), [&order, i] { order.push_back(i); });
  }
  timers.schedule(later + 2ms, [&order] { order.push_back(22); });  // a tie keeps its place
  timers.stop();                                                    // does not wait an hour
  EXPECT_EQ(order, (std::vector<int>{1, 2, 22, 3}));
  timers.schedule(later, [&order] { order.push_back(4); });  // after stop: inline
  EXPECT_EQ(order.size(), 5u);
}

}  // namespace
}  // namespace infergate::sim
