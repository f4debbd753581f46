// ProbeTransport over the gRPC library's async (callback) client: ServerLive and
// ServerReady for probes, RepositoryIndex and ServerMetadata for the inventory.
#pragma once

#include <memory>

#include "health/backend_channels.h"
#include "health/probe_transport.h"

namespace infergate::health {

class GrpcProbeTransport : public ProbeTransport {
 public:
  explicit GrpcProbeTransport(std::shared_ptr<BackendChannels> channels)
      : channels_(std::move(channels)) {}

  void probe(std::uint32_t id, std::chrono::nanoseconds timeout,
             std::function<void(ProbeResult)> done) override;
  void inventory(std::uint32_t id, std::chrono::nanoseconds timeout,
                 std::function<void(InventoryResult)> done) override;
  void model_ready(std::uint32_t id, const std::string& model, const std::string& version,
                   std::chrono::nanoseconds timeout,
                   std::function<void(bool answered, bool ready)> done) override;

 private:
  std::shared_ptr<BackendChannels> channels_;
};

}  // namespace infergate::health
