// The gRPC channels the bench sends on: `connections` distinct channels (each its own
// TCP connection) per target, ordered round-robin over the targets. Built and connected
// on the main thread; immutable afterwards, so any thread may use the stubs.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/host_port.h"
#include "inference/grpc_service.grpc.pb.h"

namespace infergate::bench {

class ChannelPool {
 public:
  using Stub = inference::GRPCInferenceService::Stub;

  // With `tls_ca_pem`, the channels speak TLS trusting those CAs, to a certificate that
  // carries `tls_name` (when not empty) instead of the target's host.
  ChannelPool(const std::vector<config::HostPort>& targets, int connections_per_target,
              const std::string& tls_ca_pem = "", const std::string& tls_name = "");

  size_t size() const { return stubs_.size(); }
  // The stub of channel i % size(): consecutive indexes go to consecutive targets.
  Stub* stub(size_t i) const { return stubs_[i % stubs_.size()].get(); }

  // Connects every channel. Returns "" when all are ready, else a message naming the
  // first target that failed to connect (refused at once, or not ready by `timeout`).
  std::string connect(std::chrono::nanoseconds timeout);

 private:
  std::string failure(size_t i, grpc_connectivity_state state);

  std::vector<std::string> names_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Stub>> stubs_;
};

}  // namespace infergate::bench
