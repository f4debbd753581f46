// Counts a driver's requests in flight. Callbacks (gRPC threads) begin and end them; the
// control thread waits until none is left before it destroys what the callbacks use.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "benchmarks/bench/core/window_stats.h"

namespace infergate::bench {

class InFlight {
 public:
  // Something that will run callbacks (a call, a slot) is outstanding. Any thread.
  void begin();
  // A request was sent (counted in `issued`). Any thread.
  void sent();
  // What begin() counted is done. Must be the last thing a callback does with anything
  // the control thread may destroy once the count reaches zero.
  void end();

  // Control thread: waits until nothing is in flight or `deadline` passes.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);
  std::uint64_t count() const;
  // Requests started, and the most outstanding at once, since the last call.
  LoadCounters take_counters();

 private:
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::uint64_t count_ = 0;
  LoadCounters counters_;
};

}  // namespace infergate::bench
