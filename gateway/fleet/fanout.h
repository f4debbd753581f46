// Client requests the gateway answers by asking several backends at once
// (ModelStatistics, RepositoryModelLoad/Unload), on the gRPC library's async client.
// Thread-safe; `done` runs once, on a gRPC thread: post it to where it belongs.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "health/backend_channels.h"
#include "inference/grpc_service.pb.h"

namespace infergate::gateway {

struct FanOutTarget {
  std::uint32_t id;
  std::string name;
};

class FanOut {
 public:
  using StatisticsDone =
      std::function<void(grpc::Status, std::vector<inference::ModelStatisticsResponse>)>;
  using Done = std::function<void(grpc::Status)>;

  explicit FanOut(std::shared_ptr<health::BackendChannels> channels)
      : channels_(std::move(channels)) {}

  // Every target's statistics; fails only if every target failed.
  void statistics(const std::vector<FanOutTarget>& targets,
                  const inference::ModelStatisticsRequest& request,
                  std::chrono::nanoseconds timeout, StatisticsDone done);

  // Load (or unload) on every target; any failure fails the whole, naming the backends.
  void load(const std::vector<FanOutTarget>& targets,
            const inference::RepositoryModelLoadRequest& request, std::chrono::nanoseconds timeout,
            Done done);
  void unload(const std::vector<FanOutTarget>& targets,
              const inference::RepositoryModelUnloadRequest& request,
              std::chrono::nanoseconds timeout, Done done);

 private:
  std::shared_ptr<health::BackendChannels> channels_;
};

}  // namespace infergate::gateway
