// One infergate-bench run, wired together on the main thread: the request, the
// channels, a driver per load mode, the level runner, and the reports.
#pragma once

#include <atomic>

#include "benchmarks/bench/core/bench_options.h"

namespace infergate::bench {

// Exit statuses (see usage()).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // target unreachable, or results not written
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// Runs the whole benchmark and prints its results; returns the exit status. Messages go
// to stderr, the table to stdout. `interrupted` (set by a signal handler) ends the run
// early, with the results of the levels measured so far.
int run_bench(const BenchOptions& options, const std::atomic<bool>& interrupted);

}  // namespace infergate::bench
