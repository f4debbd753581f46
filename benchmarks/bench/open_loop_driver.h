// Open-loop load: a scheduler thread sends at the times a RateSchedule plans, whether or
// not earlier requests have been answered; late sends go out at once, so the planned
// rate is kept on average. Calls come from a pool that grows with the backlog, up to
// max_outstanding (then sends wait, and the achieved rate falls short of the target).
// start/stop on the control thread; the pool is shared with callback threads under mu_.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "benchmarks/bench/call_setup.h"
#include "benchmarks/bench/channel_pool.h"
#include "benchmarks/bench/core/in_flight.h"
#include "benchmarks/bench/core/load_driver.h"
#include "benchmarks/bench/core/rate_schedule.h"
#include "benchmarks/bench/core/recorder.h"
#include "benchmarks/bench/core/split_mix.h"
#include "benchmarks/bench/rate_call.h"

namespace infergate::bench {

class OpenLoopDriver : public LoadDriver {
 public:
  OpenLoopDriver(const CallSetup& setup, const ChannelPool& pool, Recorder& recorder,
                 Distribution distribution, std::uint64_t seed, size_t max_outstanding);
  ~OpenLoopDriver() override;

  void start(double rate) override;
  void stop(std::chrono::nanoseconds drain) override;
  void poll(std::chrono::steady_clock::time_point) override {}
  LoadCounters take_counters() override { return in_flight_.take_counters(); }

 private:
  void schedule_loop(double rate);
  // Scheduler thread: a free call, a new one, or (at max_outstanding) the next freed
  // one; nullptr once stopping.
  RateCall* acquire();
  void release(RateCall* call);  // callback threads

  const ChannelPool& pool_;
  Distribution distribution_;
  SplitMix64 rng_;  // scheduler thread only
  size_t max_outstanding_;
  InFlight in_flight_;
  RateCallContext call_context_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::condition_variable free_cv_;
  bool stopping_ = false;
  bool waiting_for_free_ = false;
  std::vector<std::unique_ptr<RateCall>> calls_;
  std::vector<RateCall*> free_;
  std::thread scheduler_;
};

}  // namespace infergate::bench
