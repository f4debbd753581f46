// Closed-loop load: `level` slots, each keeping one request outstanding (unary calls or
// one stream per slot). Slot i sends on channel i of the pool, so slots spread
// round-robin over targets and connections. Control thread only.
#pragma once

#include <memory>
#include <vector>

#include "benchmarks/bench/call_setup.h"
#include "benchmarks/bench/channel_pool.h"
#include "benchmarks/bench/closed_loop_slot.h"
#include "benchmarks/bench/core/in_flight.h"
#include "benchmarks/bench/core/load_driver.h"
#include "benchmarks/bench/core/recorder.h"

namespace infergate::bench {

class ClosedLoopDriver : public LoadDriver {
 public:
  ClosedLoopDriver(const CallSetup& setup, const ChannelPool& pool, Recorder& recorder,
                   bool streaming);
  ~ClosedLoopDriver() override;

  void start(double level) override;
  void stop(std::chrono::nanoseconds drain) override;
  void poll(std::chrono::steady_clock::time_point now) override;
  LoadCounters take_counters() override { return in_flight_.take_counters(); }

 private:
  const CallSetup& setup_;
  const ChannelPool& pool_;
  Recorder& recorder_;
  bool streaming_;
  InFlight in_flight_;
  std::vector<std::unique_ptr<ClosedLoopSlot>> slots_;
};

}  // namespace infergate::bench
