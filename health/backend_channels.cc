#include "health/backend_channels.h"

#include <grpcpp/grpcpp.h>

#include <climits>

namespace infergate::health {

void BackendChannels::add(std::uint32_t id, const std::string& address,
                          const std::optional<ChannelTls>& tls) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.address == address && it->second.tls == tls) return;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  // Fast reconnects: a backend that comes back should be probed promptly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = tls->root_certs;
    options.pem_cert_chain = tls->cert_chain;
    options.pem_private_key = tls->private_key;
    credentials = grpc::SslCredentials(options);
    if (!tls->server_name.empty()) args.SetSslTargetNameOverride(tls->server_name);
  }
  auto channel = grpc::CreateCustomChannel(address, credentials, args);
  entries_[id] = Entry{address, tls, inference::GRPCInferenceService::NewStub(channel)};
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
