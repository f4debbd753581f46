// Formats a run's results: the table for stdout, CSV, JSON and the progress lines for
// stderr. Pure: strings in, strings out.
#pragma once

#include <span>
#include <string>

#include "benchmarks/bench/core/bench_options.h"
#include "benchmarks/bench/core/level_runner.h"
#include "benchmarks/bench/core/window_stats.h"

namespace infergate::bench {

// What the report says about the request, besides the options.
struct RequestInfo {
  std::uint64_t payload_bytes = 0;
  std::vector<std::int64_t> shape;
};

// A header line, one row per level, then one line per level that saw errors.
std::string format_table(const BenchOptions& options, const RequestInfo& request,
                         std::span<const LevelResult> results);

// A header row and one row per level; errors as "CODE:n;CODE:n".
std::string format_csv(const BenchOptions& options, std::span<const LevelResult> results);

// {"config": {...}, "results": [...]}, snake_case keys, latencies in *_us.
std::string format_json(const BenchOptions& options, const RequestInfo& request,
                        std::span<const LevelResult> results);

// "concurrency 8: window 2/10: 199.5 infer/s, p99 41234 us"
std::string format_progress(const WindowReport& window, LoadMode mode);

// The string as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

}  // namespace infergate::bench
