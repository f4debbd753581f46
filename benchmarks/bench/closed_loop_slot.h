// One closed-loop concurrency slot: keeps exactly one request outstanding until stopped.
// These methods are called on the control thread; the slot's own work runs on gRPC
// callback threads.
#pragma once

#include <chrono>
#include <cstddef>

#include "benchmarks/bench/call_setup.h"
#include "benchmarks/bench/channel_pool.h"
#include "benchmarks/bench/core/in_flight.h"
#include "benchmarks/bench/core/recorder.h"

namespace infergate::bench {

// What every slot uses: the shared request setup and where outcomes go.
struct SlotContext {
  const CallSetup& setup;
  ChannelPool::Stub* stub;
  size_t index;  // the slot's number: its recorder shard
  Recorder& recorder;
  InFlight& in_flight;
};

class ClosedLoopSlot {
 public:
  virtual ~ClosedLoopSlot() = default;
  // Sends the first request (counted in in_flight until the slot is done).
  virtual void start() = 0;
  // The request outstanding now is the slot's last.
  virtual void stop() = 0;
  // Cancels whatever is outstanding; its callback still runs.
  virtual void cancel() = 0;
  // Enforces the per-request timeout where gRPC cannot (streams).
  virtual void check_timeout(std::chrono::steady_clock::time_point now) = 0;
};

}  // namespace infergate::bench
