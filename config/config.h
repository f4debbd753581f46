// infergate's configuration: what the YAML file says, validated and immutable.
// Built only by the loader (loader.h); shared as std::shared_ptr<const Config>.
#pragma once

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

struct Config {
  HostPort listen{.host = "0.0.0.0", .port = 8001};        // KServe v2 gRPC frontend
  HostPort admin_listen{.host = "127.0.0.1", .port = 8002};  // HTTP: /metrics, /status, /healthz
  std::vector<BackendConfig> backends;

  std::string source;  // the file (or name) it was loaded from
};

}  // namespace infergate::config
