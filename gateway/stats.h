// Per-worker request statistics. Written only by the owning worker (relaxed atomic
// stores, no read-modify-write), read by the admin thread when /metrics is scraped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "gateway/grpc_status.h"
#include "gateway/methods.h"

namespace infergate::gateway {

// A single-writer counter: the writer adds without a locked instruction.
class LocalCounter {
 public:
  void add(std::uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class WorkerStats {
 public:
  // Upper bounds of the latency histogram buckets, in seconds (+Inf is implicit).
  static constexpr std::array<double, 17> kLatencyBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0};
  static constexpr size_t kBuckets = kLatencyBounds.size() + 1;

  struct Series {
    LocalCounter count;
    LocalCounter sum_ns;
    std::array<LocalCounter, kBuckets> buckets;  // non-cumulative
  };

  // One finished RPC: its method, final status and end-to-end time in the gateway.
  void record(Method method, GrpcCode code, std::chrono::nanoseconds latency);

  const Series& series(Method method, GrpcCode code) const {
    return series_[static_cast<size_t>(method)][static_cast<size_t>(code)];
  }

  LocalCounter downstream_connections_total;
  LocalCounter upstream_connections_total;
  LocalCounter upstream_connect_failures_total;
  LocalCounter request_bytes_total;   // request body bytes forwarded to backends
  LocalCounter response_bytes_total;  // response body bytes forwarded to clients
  LocalCounter retries_total;         // requests tried again on another backend

 private:
  std::array<std::array<Series, kGrpcCodeCount>, kMethodCount> series_;
};

}  // namespace infergate::gateway
