// How the health monitor asks a backend about itself. An interface, so the monitor's
// logic is tested with a scripted transport; GrpcProbeTransport is the real one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "routing/fleet.h"

namespace infergate::health {

struct ProbeResult {
  bool ok = false;
  std::string detail;  // why not, for logs
};

using IndexEntry = routing::ModelIndexEntry;  // state empty if the backend did not say

struct InventoryResult {
  bool ok = false;
  std::string detail;
  std::vector<IndexEntry> models;
  std::vector<std::string> extensions;  // from ServerMetadata
  std::string server_name;              // from ServerMetadata ("triton"); empty if unknown
  std::string server_version;
};

class ProbeTransport {
 public:
  virtual ~ProbeTransport() = default;

  // `done` may run on any thread; each is called exactly once.
  virtual void probe(std::uint32_t id, std::chrono::nanoseconds timeout,
                     std::function<void(ProbeResult)> done) = 0;
  virtual void inventory(std::uint32_t id, std::chrono::nanoseconds timeout,
                         std::function<void(InventoryResult)> done) = 0;
  // ModelReady for one model version; done(answered, ready).
  virtual void model_ready(std::uint32_t id, const std::string& model, const std::string& version,
                           std::chrono::nanoseconds timeout,
                           std::function<void(bool answered, bool ready)> done) = 0;
};

}  // namespace infergate::health
