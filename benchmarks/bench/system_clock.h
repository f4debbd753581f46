// The real RunClock: steady time, sleeping the calling (control) thread, and the
// process's CPU time from getrusage.
#pragma once

#include "benchmarks/bench/core/load_driver.h"

namespace infergate::bench {

class SystemRunClock : public RunClock {
 public:
  std::chrono::steady_clock::time_point now() override;
  void sleep_until(std::chrono::steady_clock::time_point t) override;
  double cpu_seconds() override;
};

}  // namespace infergate::bench
