// What one measurement window saw, and a load level's result folded from its last
// windows. Pure.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "benchmarks/bench/core/latency_summary.h"
#include "benchmarks/bench/core/outcome_codes.h"
#include "benchmarks/bench/core/stability.h"

namespace infergate::bench {

// One finished request, as a callback records it.
struct Sample {
  std::int64_t latency_ns = 0;
  std::uint64_t response_bytes = 0;  // raw output payload bytes (successes only)
  std::uint8_t code = kCodeOk;       // outcome_codes.h
};

// Requests started, and the most outstanding at once, over some interval.
struct LoadCounters {
  std::uint64_t issued = 0;
  std::uint64_t max_outstanding = 0;
};

// The requests that finished during one window.
struct WindowStats {
  std::chrono::nanoseconds duration{0};
  std::vector<std::int64_t> latencies_ns;            // successful requests only
  std::array<std::uint64_t, kCodeCount> outcomes{};  // finished requests by outcome
  std::uint64_t response_bytes = 0;
  LoadCounters load;
  double cpu_seconds = 0;  // the bench process's own CPU time during the window

  std::uint64_t successes() const { return outcomes[kCodeOk]; }
  std::uint64_t completed() const;
  double throughput() const;  // successes per second
};

// Adds finished requests to a window.
void add_samples(WindowStats& window, std::span<const Sample> samples);

// The throughput and p99 the stability criterion compares.
WindowMetrics metrics_of(const WindowStats& window);

// One load level's result.
struct LevelResult {
  double level = 0;       // concurrency, or target requests per second
  double throughput = 0;  // successful inferences per second
  double send_rate = 0;   // requests started per second
  LatencySummary latency;
  std::uint64_t requests = 0;  // finished, successes and errors
  std::uint64_t error_count = 0;
  std::map<std::string, std::uint64_t> errors;  // by outcome name, non-zero only
  double request_bytes_per_second = 0;          // request payload of finished requests
  double response_bytes_per_second = 0;
  bool stable = false;
  int windows = 0;  // measurement windows run at this level
  std::uint64_t max_outstanding = 0;
  double cpu_us_per_request = 0;  // bench CPU time per finished request
  double duration_s = 0;          // the windows the result covers
  std::string first_error;        // "CODE: message" of an error seen at this level
};

// Folds the windows (normally the last kStableWindows) into the level's result.
// stable, windows and first_error are left for the caller.
LevelResult combine_windows(std::span<const WindowStats> windows, double level,
                            std::uint64_t request_payload_bytes);

}  // namespace infergate::bench
