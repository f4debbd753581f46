// One pooled open-loop call: the scheduler thread issues it, its callback (gRPC thread)
// records the outcome and hands it back to the pool; cancel runs on the control thread.
// mu_ guards the context between the callback and a concurrent cancel.
#pragma once

#include <functional>
#include <mutex>
#include <optional>

#include "benchmarks/bench/call_setup.h"
#include "benchmarks/bench/channel_pool.h"
#include "benchmarks/bench/core/in_flight.h"
#include "benchmarks/bench/core/recorder.h"

namespace infergate::bench {

class RateCall;

// What every call of one pool shares.
struct RateCallContext {
  const CallSetup& setup;
  Recorder& recorder;
  InFlight& in_flight;
  std::function<void(RateCall*)> release;  // back to the pool's free list
};

class RateCall {
 public:
  RateCall(const RateCallContext& context, size_t index) : c_(context), index_(index) {}

  // Scheduler thread; the call must be free (not outstanding).
  void issue(ChannelPool::Stub* stub);
  // Control thread: cancels the call if it is outstanding.
  void cancel();

 private:
  void on_done(const grpc::Status& status);

  const RateCallContext& c_;
  size_t index_;
  std::mutex mu_;
  std::optional<grpc::ClientContext> call_context_;
  inference::ModelInferResponse response_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace infergate::bench
