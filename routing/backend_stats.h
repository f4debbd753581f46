// What happened on one backend, counted by the data plane and the health monitor from
// any thread (relaxed atomics), read when /metrics or /status is rendered.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace infergate::routing {

// Upper bounds (seconds) of the request latency histograms; +Inf is implicit.
inline constexpr std::array<double, 17> kLatencyBounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0};

// The histogram bucket (index into kLatencyBounds, or its size for +Inf) of `latency`.
size_t latency_bucket(std::chrono::nanoseconds latency);

struct BackendStats {
  static constexpr size_t kCodes = 17;  // gRPC status codes 0-16
  static constexpr size_t kBuckets = kLatencyBounds.size() + 1;

  // Attempts the backend answered, by gRPC status code, and their latency (from the
  // stream's start on the backend to the end of its answer).
  std::array<std::atomic<std::uint64_t>, kCodes> answers{};
  std::array<std::atomic<std::uint64_t>, kBuckets> latency_buckets{};  // non-cumulative
  std::atomic<std::uint64_t> latency_sum_ns{0};
  // Attempts that ended without an answer (reset, connection lost, refused stream).
  std::atomic<std::uint64_t> transport_failures{0};
  // Requests retried on another backend after failing here.
  std::atomic<std::uint64_t> retries{0};
  // Times the health monitor ejected it (passive outlier detection).
  std::atomic<std::uint64_t> ejections{0};

  void record_answer(std::uint32_t code, std::chrono::nanoseconds latency);
  std::uint64_t answered() const;
};

}  // namespace infergate::routing
