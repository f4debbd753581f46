// Runs one load level: warm-up, then measurement windows until the last three are stable
// or max_trials is reached, then folds the last windows into the level's result.
// Control thread only; time comes from an injected RunClock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include "benchmarks/bench/core/load_driver.h"
#include "benchmarks/bench/core/recorder.h"
#include "benchmarks/bench/core/window_stats.h"

namespace infergate::bench {

struct RunnerOptions {
  std::chrono::nanoseconds measurement_interval = std::chrono::seconds(2);
  std::chrono::nanoseconds warmup{0};
  int max_trials = 10;
  double stability_percentage = 10;
  std::uint64_t request_payload_bytes = 0;
  std::chrono::nanoseconds poll_period = std::chrono::milliseconds(100);
};

// One finished window, for the progress line.
struct WindowReport {
  double level = 0;
  int window = 0;
  int max_trials = 0;
  WindowMetrics metrics;
  std::uint64_t errors = 0;
};

struct LevelOutcome {
  LevelResult result;
  bool unreachable = false;  // every request of the first window failed with UNAVAILABLE
  bool interrupted = false;  // the interrupt flag was raised; result covers full windows only
};

class LevelRunner {
 public:
  // `interrupted` may be null; when it becomes true the level ends at the next poll.
  LevelRunner(RunnerOptions options, RunClock& clock, Recorder& recorder,
              std::function<void(const WindowReport&)> on_window,
              const std::atomic<bool>* interrupted);

  // Runs `level` on `driver`. check_reachable: end after the first window, with
  // unreachable set, when every request of it failed with UNAVAILABLE. drain: how long
  // the driver may let outstanding requests finish before cancelling them.
  LevelOutcome run(LoadDriver& driver, double level, bool check_reachable,
                   std::chrono::nanoseconds drain);

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Waits until `until`, polling the driver; false if interrupted first.
  bool wait_until(LoadDriver& driver, TimePoint until);
  // Everything recorded since the last collect, as a window of `duration`.
  WindowStats collect(LoadDriver& driver, std::chrono::nanoseconds duration, double cpu_seconds);
  bool is_interrupted() const;

  RunnerOptions options_;
  RunClock& clock_;
  Recorder& recorder_;
  std::function<void(const WindowReport&)> on_window_;
  const std::atomic<bool>* interrupted_;
  std::vector<Sample> scratch_;
};

}  // namespace infergate::bench
