#include "benchmarks/bench/core/level_runner.h"

#include <algorithm>

namespace infergate::bench {
namespace {

bool all_unavailable(const WindowStats& w) {
  return w.completed() > 0 && w.outcomes[kCodeUnavailable] == w.completed();
}

}  // namespace

LevelRunner::LevelRunner(RunnerOptions options, RunClock& clock, Recorder& recorder,
                         std::function<void(const WindowReport&)> on_window,
                         const std::atomic<bool>* interrupted)
    : options_(options),
      clock_(clock),
      recorder_(recorder),
      on_window_(std::move(on_window)),
      interrupted_(interrupted) {}

bool LevelRunner::is_interrupted() const {
  return interrupted_ != nullptr && interrupted_->load(std::memory_order_relaxed);
}

bool LevelRunner::wait_until(LoadDriver& driver, TimePoint until) {
  for (;;) {
    if (is_interrupted()) return false;
    TimePoint now = clock_.now();
    if (now >= until) return true;
    clock_.sleep_until(std::min(until, now + options_.poll_period));
    driver.poll(clock_.now());
  }
}

WindowStats LevelRunner::collect(LoadDriver& driver, std::chrono::nanoseconds duration,
                                 double cpu_seconds) {
  scratch_.clear();
  recorder_.drain(scratch_);
  WindowStats w;
  w.duration = duration;
  w.latencies_ns.reserve(scratch_.size());
  add_samples(w, scratch_);
  w.load = driver.take_counters();
  w.cpu_seconds = cpu_seconds;
  return w;
}

LevelOutcome LevelRunner::run(LoadDriver& driver, double level, bool check_reachable,
                              std::chrono::nanoseconds drain) {
  LevelOutcome out;
  collect(driver, {}, 0);  // what finished while the previous level drained
  recorder_.reset_errors();
  driver.start(level);
  TimePoint start = clock_.now();
  if (options_.warmup.count() > 0 && wait_until(driver, start + options_.warmup)) {
    collect(driver, {}, 0);  // discarded
    start = clock_.now();
  }
  double cpu = clock_.cpu_seconds();
  std::vector<WindowStats> windows;  // the last kStableWindows
  std::vector<WindowMetrics> metrics;
  bool stable = false;
  int trial = 0;
  while (!stable && trial < options_.max_trials && !is_interrupted()) {
    if (!wait_until(driver, start + options_.measurement_interval)) break;
    TimePoint now = clock_.now();
    double cpu_now = clock_.cpu_seconds();
    WindowStats w = collect(driver, now - start, cpu_now - cpu);
    start = now;
    cpu = cpu_now;
    ++trial;
    metrics.push_back(metrics_of(w));
    if (on_window_) {
      on_window_({.level = level,
                  .window = trial,
                  .max_trials = options_.max_trials,
                  .metrics = metrics.back(),
                  .errors = w.completed() - w.successes()});
    }
    bool unreachable = check_reachable && trial == 1 && all_unavailable(w);
    windows.push_back(std::move(w));
    if (windows.size() > static_cast<size_t>(kStableWindows)) windows.erase(windows.begin());
    if (unreachable) {
      out.unreachable = true;
      break;
    }
    stable = is_stable(metrics, options_.stability_percentage);
  }
  out.interrupted = is_interrupted();
  std::string first_error = recorder_.first_error();  // not the cancellations of stop()
  driver.stop(out.interrupted || out.unreachable ? std::chrono::nanoseconds(0) : drain);
  out.result = combine_windows(windows, level, options_.request_payload_bytes);
  out.result.stable = stable;
  out.result.windows = trial;
  out.result.first_error = std::move(first_error);
  return out;
}

}  // namespace infergate::bench
