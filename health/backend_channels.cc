#include "health/backend_channels.h"

#include <grpcpp/grpcpp.h>

#include <climits>

namespace infergate::health {

void BackendChannels::add(std::uint32_t id, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.address == address) return;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  // Fast reconnects: a backend that comes back should be probed promptly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  entries_[id] = Entry{address, inference::GRPCInferenceService::NewStub(channel)};
}

void BackendChannels::remove(std::uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(id);
}

std::shared_ptr<BackendChannels::Stub> BackendChannels::stub(std::uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.stub;
}

}  // namespace infergate::health
