#include "benchmarks/sim/sim_service.h"

#include "benchmarks/sim/stream_call.h"
#include "benchmarks/sim/unary_calls.h"

#ifndef INFERGATE_SIM_VERSION
#define INFERGATE_SIM_VERSION "0.0.0"
#endif

namespace infergate::sim {
namespace {

using grpc::Status;
using grpc::StatusCode;

void set_duration(inference::StatisticDuration* d, std::uint64_t count, std::uint64_t ns) {
  d->set_count(count);
  d->set_ns(ns);
}

void fill_statistics(const SimModel& model, const VersionState& version,
                     inference::ModelStatistics* out) {
  const VersionStats& s = version.stats;
  constexpr auto relaxed = std::memory_order_relaxed;
  const std::uint64_t success = s.success_count.load(relaxed);
  out->set_name(model.name());
  out->set_version(version.version());
  out->set_last_inference(s.last_inference_ms.load(relaxed));
  out->set_inference_count(s.inference_count.load(relaxed));
  out->set_execution_count(s.execution_count.load(relaxed));
  inference::InferStatistics* st = out->mutable_inference_stats();
  set_duration(st->mutable_success(), success, s.success_ns.load(relaxed));
  set_duration(st->mutable_fail(), s.fail_count.load(relaxed), s.fail_ns.load(relaxed));
  set_duration(st->mutable_queue(), success, s.queue_ns.load(relaxed));
  set_duration(st->mutable_compute_input(), success, 0);
  set_duration(st->mutable_compute_infer(), success, s.compute_ns.load(relaxed));
  set_duration(st->mutable_compute_output(), success, 0);
}

inference::ServerMetadataResponse build_server_metadata() {
  inference::ServerMetadataResponse m;
  m.set_name("triton");  // as Triton says: clients check it
  m.set_version(INFERGATE_SIM_VERSION);
  for (const char* e :
       {"classification", "sequence", "model_repository", "model_repository(unload_dependents)",
        "schedule_policy", "model_configuration", "system_shared_memory", "cuda_shared_memory",
        "binary_tensor_data", "parameters", "statistics", "trace", "logging"}) {
    m.add_extensions(e);
  }
  return m;
}

}  // namespace

SimService::SimService(SimRuntime& rt) : rt_(rt), server_metadata_(build_server_metadata()) {}

SimService::Reactor* SimService::answer(Ctx* ctx, const Status& status) {
  if (rt_.options.hang_all) return new HungCall(rt_, false, nullptr);
  Reactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

SimService::Reactor* SimService::ServerLive(Ctx* ctx, const inference::ServerLiveRequest*,
                                            inference::ServerLiveResponse* response) {
  response->set_live(true);
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::ServerReady(Ctx* ctx, const inference::ServerReadyRequest*,
                                             inference::ServerReadyResponse* response) {
  response->set_ready(server_ready());
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::ModelReady(Ctx* ctx, const inference::ModelReadyRequest* request,
                                            inference::ModelReadyResponse* response) {
  Resolved r = rt_.registry.resolve(request->name(), request->version(), true);
  response->set_ready(r.status.ok());
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::ServerMetadata(Ctx* ctx, const inference::ServerMetadataRequest*,
                                                inference::ServerMetadataResponse* response) {
  *response = server_metadata_;
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::ModelMetadata(Ctx* ctx,
                                               const inference::ModelMetadataRequest* request,
                                               inference::ModelMetadataResponse* response) {
  Resolved r = rt_.registry.resolve(request->name(), request->version(), true);
  if (r.status.ok()) *response = r.model->metadata();
  return answer(ctx, r.status);
}

SimService::Reactor* SimService::ModelInfer(Ctx* ctx, const inference::ModelInferRequest* request,
                                            inference::ModelInferResponse* response) {
  // Tests ask whether a credential reached the backend: the answer says so.
  if (ctx->client_metadata().count("authorization") != 0) {
    ctx->AddTrailingMetadata("sim-saw-authorization", "yes");
  }
  rt_.inflight.enter();
  if (rt_.options.hang_all) return new HungCall(rt_, true, nullptr);
  Admission a = rt_.pipeline.admit(*request, nullptr, response);
  switch (a.kind) {
    case Admission::Kind::kHang:
      return new HungCall(rt_, true, a.version);
    case Admission::Kind::kDelay: {
      const SteadyTime due = a.slot.finish;
      auto* call = new DelayedInferCall(rt_, std::move(a));
      rt_.timers.schedule(due, [call] { call->on_due(); });
      return call;
    }
    case Admission::Kind::kAnswer:
      break;
  }
  rt_.inflight.leave();
  Reactor* reactor = ctx->DefaultReactor();
  reactor->Finish(a.status);
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
SimService::ModelStreamInfer(Ctx*) {
  return new StreamCall(rt_);
}

SimService::Reactor* SimService::ModelConfig(Ctx* ctx, const inference::ModelConfigRequest* request,
                                             inference::ModelConfigResponse* response) {
  Resolved r = rt_.registry.resolve(request->name(), request->version(), true);
  if (r.status.ok()) *response->mutable_config() = r.model->config();
  return answer(ctx, r.status);
}

SimService::Reactor* SimService::ModelStatistics(Ctx* ctx,
                                                 const inference::ModelStatisticsRequest* request,
                                                 inference::ModelStatisticsResponse* response) {
  if (request->name().empty()) {
    for (const auto& model : rt_.registry.models()) {
      for (const auto& version : model->versions()) {
        fill_statistics(*model, *version, response->add_model_stats());
      }
    }
    return answer(ctx, Status::OK);
  }
  Resolved r = rt_.registry.resolve(request->name(), request->version(), false);
  if (!r.status.ok()) return answer(ctx, r.status);
  for (const auto& version : r.model->versions()) {
    if (request->version().empty() || version.get() == r.version) {
      fill_statistics(*r.model, *version, response->add_model_stats());
    }
  }
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::RepositoryIndex(Ctx* ctx,
                                                 const inference::RepositoryIndexRequest* request,
                                                 inference::RepositoryIndexResponse* response) {
  for (const auto& model : rt_.registry.models()) {
    const bool ready = model->ready();
    if (request->ready() && !ready) continue;
    for (const auto& version : model->versions()) {
      auto* entry = response->add_models();
      entry->set_name(model->name());
      entry->set_version(version->version());
      entry->set_state(ready ? "READY" : "UNAVAILABLE");
      if (!ready) entry->set_reason("unloaded");
    }
  }
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::RepositoryModelLoad(
    Ctx* ctx, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  SimModel* model = rt_.registry.find(request->model_name());
  if (model == nullptr) {
    return answer(ctx,
                  Status(StatusCode::NOT_FOUND, "failed to load '" + request->model_name() +
                                                    "', failed to poll from model repository"));
  }
  model->set_ready(true);
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::RepositoryModelUnload(
    Ctx* ctx, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  SimModel* model = rt_.registry.find(request->model_name());
  if (model == nullptr) {
    return answer(ctx, Status(StatusCode::NOT_FOUND, "failed to unload '" + request->model_name() +
                                                         "', no such model in the repository"));
  }
  model->set_ready(false);
  return answer(ctx, Status::OK);
}

SimService::Reactor* SimService::SystemSharedMemoryStatus(
    Ctx* ctx, const inference::SystemSharedMemoryStatusRequest* request,
    inference::SystemSharedMemoryStatusResponse* response) {
  return answer(ctx, rt_.admin.system_status(*request, response));
}

SimService::Reactor* SimService::SystemSharedMemoryRegister(
    Ctx* ctx, const inference::SystemSharedMemoryRegisterRequest* request,
    inference::SystemSharedMemoryRegisterResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  return answer(ctx, rt_.admin.register_system(*request));
}

SimService::Reactor* SimService::SystemSharedMemoryUnregister(
    Ctx* ctx, const inference::SystemSharedMemoryUnregisterRequest* request,
    inference::SystemSharedMemoryUnregisterResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  return answer(ctx, rt_.admin.unregister_system(*request));
}

SimService::Reactor* SimService::CudaSharedMemoryStatus(
    Ctx* ctx, const inference::CudaSharedMemoryStatusRequest* request,
    inference::CudaSharedMemoryStatusResponse* response) {
  return answer(ctx, rt_.admin.cuda_status(*request, response));
}

SimService::Reactor* SimService::CudaSharedMemoryRegister(
    Ctx* ctx, const inference::CudaSharedMemoryRegisterRequest* request,
    inference::CudaSharedMemoryRegisterResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  return answer(ctx, rt_.admin.register_cuda(*request));
}

SimService::Reactor* SimService::CudaSharedMemoryUnregister(
    Ctx* ctx, const inference::CudaSharedMemoryUnregisterRequest* request,
    inference::CudaSharedMemoryUnregisterResponse*) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  return answer(ctx, rt_.admin.unregister_cuda(*request));
}

SimService::Reactor* SimService::TraceSetting(Ctx* ctx,
                                              const inference::TraceSettingRequest* request,
                                              inference::TraceSettingResponse* response) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  const bool known = rt_.registry.find(request->model_name()) != nullptr;
  return answer(ctx, rt_.admin.trace_setting(*request, known, response));
}

SimService::Reactor* SimService::LogSettings(Ctx* ctx, const inference::LogSettingsRequest* request,
                                             inference::LogSettingsResponse* response) {
  if (rt_.options.hang_all) return answer(ctx, Status::OK);  // held, with no effect
  return answer(ctx, rt_.admin.log_settings(*request, response));
}

grpc::ServerUnaryReactor* SimHealthService::Check(grpc::CallbackServerContext* ctx,
                                                  const grpc::health::v1::HealthCheckRequest*,
                                                  grpc::health::v1::HealthCheckResponse* response) {
  if (rt_.options.hang_all) return new HungCall(rt_, false, nullptr);
  response->set_status(rt_.options.not_ready ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                                             : grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(Status::OK);
  return reactor;
}

}  // namespace infergate::sim
