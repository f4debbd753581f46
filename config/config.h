// infergate's configuration: what the YAML file says, validated and immutable.
// Built only by the loader (loader.h); shared as std::shared_ptr<const Config>.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/host_port.h"

namespace infergate::config {

// One Triton server of the fleet.
struct BackendConfig {
  std::string name;  // unique; the metric label
  HostPort address;
  double weight = 1.0;  // share of load relative to the others
};

// How a backend is chosen for each request.
struct RoutingConfig {
  std::string policy = "least_loaded";  // least_loaded | round_robin | random
  int retries = 1;                      // attempts on other backends after the first
  double retry_budget_percent = 10;     // retries at most this share of recent requests
  std::chrono::nanoseconds sequence_idle_timeout = std::chrono::seconds(60);
  std::uint64_t retry_buffer_bytes = 16ull << 20;  // request bytes kept for a retry
  bool latency_aware = true;  // least_loaded also weighs each backend's recent latency
};

// Active probes and passive outlier detection.
struct HealthConfig {
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  std::chrono::nanoseconds timeout = std::chrono::milliseconds(500);
  int unhealthy_threshold = 2;
  int healthy_threshold = 2;
  std::chrono::nanoseconds inventory_interval = std::chrono::seconds(10);
  int consecutive_failures = 5;
  std::chrono::nanoseconds ejection_base = std::chrono::seconds(5);
  std::chrono::nanoseconds ejection_max = std::chrono::seconds(60);
  double max_ejected_percent = 50;
  std::chrono::nanoseconds slow_start = std::chrono::seconds(10);
};

// The client-facing HTTP/2 side.
struct FrontendConfig {
  std::uint32_t max_concurrent_streams = 1024;  // per client connection
  std::uint64_t stream_window_bytes = 1 << 20;  // per stream and direction
  std::uint64_t connection_window_bytes = 16 << 20;

  bool operator==(const FrontendConfig&) const = default;
};

// Connections to backends.
struct UpstreamConfig {
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(2);
  std::uint32_t streams_per_connection = 100;
  std::uint32_t connections_per_backend = 8;  // per worker

  bool operator==(const UpstreamConfig&) const = default;
};

struct Config {
  HostPort listen{.host = "0.0.0.0", .port = 8001};          // KServe v2 gRPC frontend
  HostPort admin_listen{.host = "127.0.0.1", .port = 8002};  // HTTP: /metrics, /status, /healthz
  std::vector<BackendConfig> backends;

  int workers = 0;  // data-plane threads; 0 = one per core
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
  std::string log_level = "info";
  FrontendConfig frontend;
  UpstreamConfig upstream;
  RoutingConfig routing;
  HealthConfig health;
  bool allow_repository_control = false;  // fan RepositoryModelLoad/Unload out to backends

  std::string source;  // the file (or name) it was loaded from
};

}  // namespace infergate::config
