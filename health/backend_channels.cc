#include "health/backend_channels.h"

#include <grpcpp/grpcpp.h>

#include <climits>

namespace infergate::health {
namespace {

// gRPC 1.51 (Debian 12's) runs callback-API completions on the threads of one
// process-wide queue, which lives while some channel that made a callback call does. The
// channel that lets it go last shuts it down and joins its threads. When that happens on
// one of those threads (a call's callback held the last reference to the stub of a
// backend removed meanwhile), the thread joins itself, frees the queue it is still
// reading, and the process aborts. One channel that made a call and is never destroyed
// keeps the queue, and its threads, for the life of the process.
void keep_callback_queue() {
  static const bool kept = [] {
    struct Anchor {
      grpc::ClientContext context;
      inference::ServerLiveRequest request;
      inference::ServerLiveResponse response;
      std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
    };
    // Reachable from here for good: neither freed nor reported as a leak.
    static Anchor* const anchor = new Anchor;
    anchor->stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
        "unix:/nonexistent/infergate-anchor", grpc::InsecureChannelCredentials()));
    // Already past its deadline: it fails at once (at most after a connect to a socket
    // path that does not exist), and starting it is what ties the channel to the queue.
    anchor->context.set_deadline(std::chrono::system_clock::now());
    anchor->stub->async()->ServerLive(&anchor->context, &anchor->request, &anchor->response,
                                      [](const grpc::Status&) {});
    return true;
  }();
  (void)kept;
}

}  // namespace

BackendChannels::BackendChannels() { keep_callback_queue(); }

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
