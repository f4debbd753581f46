#include "benchmarks/bench/core/window_stats.h"

#include <algorithm>

namespace infergate::bench {
namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

double per_second(double amount, double secs) { return secs > 0 ? amount / secs : 0; }

}  // namespace

std::uint64_t WindowStats::completed() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : outcomes) n += c;
  return n;
}

double WindowStats::throughput() const {
  return per_second(static_cast<double>(successes()), seconds(duration));
}

void add_samples(WindowStats& window, std::span<const Sample> samples) {
  for (const Sample& s : samples) {
    int code = s.code < kCodeCount ? s.code : kCodeUnknown;
    ++window.outcomes[code];
    if (code == kCodeOk) {
      window.latencies_ns.push_back(s.latency_ns);
      window.response_bytes += s.response_bytes;
    }
  }
}

WindowMetrics metrics_of(const WindowStats& window) {
  std::vector<std::int64_t> sorted = window.latencies_ns;
  std::sort(sorted.begin(), sorted.end());
  return {.throughput = window.throughput(),
          .p99_us = static_cast<double>(percentile_of_sorted(sorted, 99)) / 1000.0,
          .completed = window.completed()};
}

LevelResult combine_windows(std::span<const WindowStats> windows, double level,
                            std::uint64_t request_payload_bytes) {
  LevelResult out;
  out.level = level;
  std::vector<std::int64_t> latencies;
  std::array<std::uint64_t, kCodeCount> outcomes{};
  double secs = 0;
  double cpu = 0;
  double response_bytes = 0;
  double issued = 0;
  for (const WindowStats& w : windows) {
    latencies.insert(latencies.end(), w.latencies_ns.begin(), w.latencies_ns.end());
    for (int c = 0; c < kCodeCount; ++c) outcomes[c] += w.outcomes[c];
    secs += seconds(w.duration);
    cpu += w.cpu_seconds;
    response_bytes += static_cast<double>(w.response_bytes);
    issued += static_cast<double>(w.load.issued);
    out.max_outstanding = std::max(out.max_outstanding, w.load.max_outstanding);
  }
  out.latency = summarize_latencies(latencies);
  for (int c = 0; c < kCodeCount; ++c) {
    out.requests += outcomes[c];
    if (c == kCodeOk || outcomes[c] == 0) continue;
    out.error_count += outcomes[c];
    out.errors[std::string(code_name(c))] = outcomes[c];
  }
  out.duration_s = secs;
  out.throughput = per_second(static_cast<double>(outcomes[kCodeOk]), secs);
  out.send_rate = per_second(issued, secs);
  out.request_bytes_per_second = per_second(
      static_cast<double>(out.requests) * static_cast<double>(request_payload_bytes), secs);
  out.response_bytes_per_second = per_second(response_bytes, secs);
  out.cpu_us_per_request = out.requests > 0 ? cpu * 1e6 / static_cast<double>(out.requests) : 0;
  return out;
}

}  // namespace infergate::bench
