// One gRPC channel (and KServe stub) per backend for the control plane's own calls:
// probes, inventory and fan-out. Thread-safe: calls come from the control thread and
// stubs are used from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "inference/grpc_service.grpc.pb.h"

namespace infergate::health {

class BackendChannels {
 public:
  using Stub = inference::GRPCInferenceService::Stub;

  // Creates (or replaces, if the address changed) the channel for `id`.
  void add(std::uint32_t id, const std::string& address);
  void remove(std::uint32_t id);
  // The stub for `id`, or null if unknown.
  std::shared_ptr<Stub> stub(std::uint32_t id) const;

 private:
  struct Entry {
    std::string address;
    std::shared_ptr<Stub> stub;
  };
  mutable std::mutex mu_;
  std::map<std::uint32_t, Entry> entries_;
};

}  // namespace infergate::health
