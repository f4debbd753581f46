// The seams between the level runner (control thread) and the world: the load it drives
// and the clock it reads. Real implementations live in benchmarks/bench/; tests use fakes.
#pragma once

#include <chrono>

#include "benchmarks/bench/core/window_stats.h"

namespace infergate::bench {

// Keeps one load level on the targets; records finished requests into a Recorder.
class LoadDriver {
 public:
  virtual ~LoadDriver() = default;
  // Starts keeping `level` load (concurrency, or requests per second). Control thread.
  virtual void start(double level) = 0;
  // Stops issuing, lets outstanding requests finish for up to `drain`, cancels the rest
  // and returns once every callback has run. Control thread.
  virtual void stop(std::chrono::nanoseconds drain) = 0;
  // Housekeeping, called on the control thread every poll period while a level runs.
  virtual void poll(std::chrono::steady_clock::time_point now) = 0;
  // Requests started, and the most outstanding at once, since the last call.
  virtual LoadCounters take_counters() = 0;
};

// Time and CPU as the level runner sees them.
class RunClock {
 public:
  virtual ~RunClock() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual void sleep_until(std::chrono::steady_clock::time_point t) = 0;
  // The process's CPU time so far (user + system), in seconds.
  virtual double cpu_seconds() = 0;
};

}  // namespace infergate::bench
