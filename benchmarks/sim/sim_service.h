// The KServe v2 GRPCInferenceService of the simulator (gRPC callback API). Each handler
// runs on a gRPC thread and answers inline, except inference (see unary_calls.h and
// stream_call.h) and everything under --hang. Also grpc.health.v1.Health/Check, which
// Triton serves too (SERVING exactly when ServerReady would be true).
#pragma once

#include "benchmarks/sim/sim_runtime.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "inference/grpc_service.grpc.pb.h"

namespace infergate::sim {

class SimService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit SimService(SimRuntime& rt);

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* ServerLive(Ctx* ctx, const inference::ServerLiveRequest* request,
                      inference::ServerLiveResponse* response) override;
  Reactor* ServerReady(Ctx* ctx, const inference::ServerReadyRequest* request,
                       inference::ServerReadyResponse* response) override;
  Reactor* ModelReady(Ctx* ctx, const inference::ModelReadyRequest* request,
                      inference::ModelReadyResponse* response) override;
  Reactor* ServerMetadata(Ctx* ctx, const inference::ServerMetadataRequest* request,
                          inference::ServerMetadataResponse* response) override;
  Reactor* ModelMetadata(Ctx* ctx, const inference::ModelMetadataRequest* request,
                         inference::ModelMetadataResponse* response) override;
  Reactor* ModelInfer(Ctx* ctx, const inference::ModelInferRequest* request,
                      inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(Ctx* ctx) override;
  Reactor* ModelConfig(Ctx* ctx, const inference::ModelConfigRequest* request,
                       inference::ModelConfigResponse* response) override;
  Reactor* ModelStatistics(Ctx* ctx, const inference::ModelStatisticsRequest* request,
                           inference::ModelStatisticsResponse* response) override;
  Reactor* RepositoryIndex(Ctx* ctx, const inference::RepositoryIndexRequest* request,
                           inference::RepositoryIndexResponse* response) override;
  Reactor* RepositoryModelLoad(Ctx* ctx, const inference::RepositoryModelLoadRequest* request,
                               inference::RepositoryModelLoadResponse* response) override;
  Reactor* RepositoryModelUnload(Ctx* ctx, const inference::RepositoryModelUnloadRequest* request,
                                 inference::RepositoryModelUnloadResponse* response) override;
  Reactor* SystemSharedMemoryStatus(Ctx* ctx,
                                    const inference::SystemSharedMemoryStatusRequest* request,
                                    inference::SystemSharedMemoryStatusResponse* response) override;
  Reactor* SystemSharedMemoryRegister(
      Ctx* ctx, const inference::SystemSharedMemoryRegisterRequest* request,
      inference::SystemSharedMemoryRegisterResponse* response) override;
  Reactor* SystemSharedMemoryUnregister(
      Ctx* ctx, const inference::SystemSharedMemoryUnregisterRequest* request,
      inference::SystemSharedMemoryUnregisterResponse* response) override;
  Reactor* CudaSharedMemoryStatus(Ctx* ctx, const inference::CudaSharedMemoryStatusRequest* request,
                                  inference::CudaSharedMemoryStatusResponse* response) override;
  Reactor* CudaSharedMemoryRegister(Ctx* ctx,
                                    const inference::CudaSharedMemoryRegisterRequest* request,
                                    inference::CudaSharedMemoryRegisterResponse* response) override;
  Reactor* CudaSharedMemoryUnregister(
      Ctx* ctx, const inference::CudaSharedMemoryUnregisterRequest* request,
      inference::CudaSharedMemoryUnregisterResponse* response) override;
  Reactor* TraceSetting(Ctx* ctx, const inference::TraceSettingRequest* request,
                        inference::TraceSettingResponse* response) override;
  Reactor* LogSettings(Ctx* ctx, const inference::LogSettingsRequest* request,
                       inference::LogSettingsResponse* response) override;

 private:
  // Answers at once; or, under --hang, holds the call.
  Reactor* answer(Ctx* ctx, const grpc::Status& status);
  bool server_ready() const { return !rt_.options.not_ready; }

  SimRuntime& rt_;
  inference::ServerMetadataResponse server_metadata_;
};

// grpc.health.v1.Health: Check only (Watch stays unimplemented).
class SimHealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit SimHealthService(SimRuntime& rt) : rt_(rt) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;

 private:
  SimRuntime& rt_;
};

}  // namespace infergate::sim
