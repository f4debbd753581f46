// One gRPC channel (and KServe stub) per backend for the control plane's own calls:
// probes, inventory and fan-out. Thread-safe: calls come from the control thread and
// stubs are used from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "inference/grpc_service.grpc.pb.h"

namespace infergate::health {

// TLS for a backend's channel (PEM contents, not paths); an empty root_certs uses
// gRPC's default roots.
struct ChannelTls {
  std::string root_certs;
  std::string cert_chain;
  std::string private_key;
  std::string server_name;  // the name its certificate carries, when not the address's

  bool operator==(const ChannelTls&) const = default;
};

class BackendChannels {
 public:
  using Stub = inference::GRPCInferenceService::Stub;

  // The first one made in a process keeps gRPC's callback queue for the process, so that
  // a call's callback may hold the last reference to a removed backend's stub.
  BackendChannels();

  // Creates (or replaces, if the address or TLS changed) the channel for `id`.
  void add(std::uint32_t id, const std::string& address,
           const std::optional<ChannelTls>& tls = std::nullopt);
  void remove(std::uint32_t id);
  // The stub for `id`, or null if unknown.
  std::shared_ptr<Stub> stub(std::uint32_t id) const;

 private:
  struct Entry {
    std::string address;
    std::optional<ChannelTls> tls;
    std::shared_ptr<Stub> stub;
  };
  mutable std::mutex mu_;
  std::map<std::uint32_t, Entry> entries_;
};

}  // namespace infergate::health
