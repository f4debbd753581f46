#include "benchmarks/bench/channel_pool.h"

#include <climits>

namespace infergate::bench {
namespace {

const char* state_name(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "?";
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& target, int index,
                                            const std::string& tls_ca_pem,
                                            const std::string& tls_name) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  // Without a local pool, channels with equal arguments share one TCP connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("infergate.bench.channel_index", index);
  if (tls_ca_pem.empty()) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = tls_ca_pem;
  if (!tls_name.empty()) args.SetSslTargetNameOverride(tls_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), args);
}

}  // namespace

ChannelPool::ChannelPool(const std::vector<config::HostPort>& targets, int connections_per_target,
                         const std::string& tls_ca_pem, const std::string& tls_name) {
  for (int c = 0; c < connections_per_target; ++c) {
    for (const config::HostPort& t : targets) {
      names_.push_back(t.to_string());
      channels_.push_back(
          make_channel(names_.back(), static_cast<int>(channels_.size()), tls_ca_pem, tls_name));
      stubs_.push_back(inference::GRPCInferenceService::NewStub(channels_.back()));
    }
  }
}

std::string ChannelPool::failure(size_t i, grpc_connectivity_state state) {
  // A short call says why (connection refused, name not resolved, ...).
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  inference::ServerLiveResponse response;
  grpc::Status status = stubs_[i]->ServerLive(&ctx, {}, &response);
  std::string why = status.ok() ? "" : ": " + status.error_message();
  return "cannot connect to " + names_[i] + " (channel " + state_name(state) + ")" + why;
}

std::string ChannelPool::connect(std::chrono::nanoseconds timeout) {
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout);
  for (const auto& channel : channels_) channel->GetState(/*try_to_connect=*/true);
  for (size_t i = 0; i < channels_.size(); ++i) {
    for (;;) {
      grpc_connectivity_state state = channels_[i]->GetState(true);
      if (state == GRPC_CHANNEL_READY) break;
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
        return failure(i, state);
      }
      if (!channels_[i]->WaitForStateChange(state, deadline)) return failure(i, state);
    }
  }
  return "";
}

}  // namespace infergate::bench
