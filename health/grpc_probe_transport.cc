#include "health/grpc_probe_transport.h"

#include <grpcpp/grpcpp.h>

namespace infergate::health {
namespace {

// The state one async call needs until its callback; deleted there.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;

  explicit Call(std::chrono::nanoseconds timeout) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
  }
};

std::string describe(const grpc::Status& s) {
  return std::to_string(static_cast<int>(s.error_code())) + " " + s.error_message();
}

}  // namespace

void GrpcProbeTransport::probe(std::uint32_t id, std::chrono::nanoseconds timeout,
                               std::function<void(ProbeResult)> done) {
  auto stub = channels_->stub(id);
  if (!stub) return done({false, "no channel"});
  auto* live = new Call<inference::ServerLiveRequest, inference::ServerLiveResponse>(timeout);
  stub->async()->ServerLive(
      &live->context, &live->request, &live->response,
      [stub, live, timeout, done = std::move(done)](grpc::Status s) mutable {
        std::unique_ptr<std::remove_pointer_t<decltype(live)>> owned(live);
        if (!s.ok()) return done({false, "ServerLive: " + describe(s)});
        if (!live->response.live()) return done({false, "ServerLive says not live"});
        auto* ready =
            new Call<inference::ServerReadyRequest, inference::ServerReadyResponse>(timeout);
        stub->async()->ServerReady(
            &ready->context, &ready->request, &ready->response,
            [ready, done = std::move(done)](grpc::Status rs) {
              std::unique_ptr<std::remove_pointer_t<decltype(ready)>> o(ready);
              if (!rs.ok()) {
                return done({false, "ServerReady: " + describe(rs)});
              }
              if (!ready->response.ready()) {
                return done({false, "ServerReady says not ready"});
              }
              done({true, ""});
            });
      });
}

void GrpcProbeTransport::inventory(std::uint32_t id, std::chrono::nanoseconds timeout,
                                   std::function<void(InventoryResult)> done) {
  auto stub = channels_->stub(id);
  if (!stub) return done({.ok = false, .detail = "no channel"});
  auto* index =
      new Call<inference::RepositoryIndexRequest, inference::RepositoryIndexResponse>(timeout);
  stub->async()->RepositoryIndex(
      &index->context, &index->request, &index->response,
      [stub, index, timeout, done = std::move(done)](grpc::Status s) mutable {
        std::unique_ptr<std::remove_pointer_t<decltype(index)>> owned(index);
        if (!s.ok()) return done({.ok = false, .detail = "RepositoryIndex: " + describe(s)});
        InventoryResult result{.ok = true};
        for (const auto& m : index->response.models()) {
          result.models.push_back({m.name(), m.version(), m.state(), m.reason()});
        }
        auto* meta =
            new Call<inference::ServerMetadataRequest, inference::ServerMetadataResponse>(timeout);
        stub->async()->ServerMetadata(
            &meta->context, &meta->request, &meta->response,
            [meta, result = std::move(result), done = std::move(done)](grpc::Status ms) mutable {
              std::unique_ptr<std::remove_pointer_t<decltype(meta)>> o(meta);
              // Extensions are optional knowledge: a failure here keeps the models.
              if (ms.ok()) {
                result.extensions.assign(meta->response.extensions().begin(),
                                         meta->response.extensions().end());
                result.server_name = meta->response.name();
                result.server_version = meta->response.version();
              }
              done(std::move(result));
            });
      });
}

void GrpcProbeTransport::model_ready(std::uint32_t id, const std::string& model,
                                     const std::string& version, std::chrono::nanoseconds timeout,
                                     std::function<void(bool, bool)> done) {
  auto stub = channels_->stub(id);
  if (!stub) return done(false, false);
  auto* call = new Call<inference::ModelReadyRequest, inference::ModelReadyResponse>(timeout);
  call->request.set_name(model);
  call->request.set_version(version);
  stub->async()->ModelReady(&call->context, &call->request, &call->response,
                            [call, done = std::move(done)](grpc::Status s) {
                              std::unique_ptr<std::remove_pointer_t<decltype(call)>> o(call);
                              done(s.ok(), s.ok() && call->response.ready());
                            });
}

}  // namespace infergate::health
