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
};

// The client-facing HTTP/2 side.
struct FrontendConfig {
  std::uint32_t max_concurrent_streams = 1024;  // per client connection
  std::uint64_t stream_window_bytes = 1 << 20;  // per stream and direction
  std::uint64_t connection_window_bytes = 16 << 20;
};

// Connections to backends.
struct UpstreamConfig {
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(2);
  std::uint32_t streams_per_connection = 100;
  std::uint32_t connections_per_backend = 8;  // per worker
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

  std::string source;  // the file (or name) it was loaded from
};

}  // namespace infergate::config
