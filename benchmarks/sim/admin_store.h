// The small pieces of server state that the admin RPCs read and write: registered system
// and CUDA shared-memory regions (names only: the simulator maps nothing), trace settings
// (global and per model) and log settings. Each method handles one RPC's request and
// response messages; any thread (one mutex).
#pragma once

#include <grpcpp/support/status.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "inference/grpc_service.pb.h"

namespace infergate::sim {

class AdminStore {
 public:
  AdminStore();

  grpc::Status register_system(const inference::SystemSharedMemoryRegisterRequest& request);
  grpc::Status system_status(const inference::SystemSharedMemoryStatusRequest& request,
                             inference::SystemSharedMemoryStatusResponse* response);
  grpc::Status unregister_system(const inference::SystemSharedMemoryUnregisterRequest& request);

  grpc::Status register_cuda(const inference::CudaSharedMemoryRegisterRequest& request);
  grpc::Status cuda_status(const inference::CudaSharedMemoryStatusRequest& request,
                           inference::CudaSharedMemoryStatusResponse* response);
  grpc::Status unregister_cuda(const inference::CudaSharedMemoryUnregisterRequest& request);

  // `model_known`: whether request.model_name() (if any) names a served model.
  grpc::Status trace_setting(const inference::TraceSettingRequest& request, bool model_known,
                             inference::TraceSettingResponse* response);
  grpc::Status log_settings(const inference::LogSettingsRequest& request,
                            inference::LogSettingsResponse* response);

 private:
  using TraceValues = std::vector<std::string>;
  using TraceMap = std::map<std::string, TraceValues>;

  static constexpr std::size_t kMaxRegions = 4096;

  std::mutex mu_;
  std::map<std::string, inference::SystemSharedMemoryStatusResponse::RegionStatus> system_;
  std::map<std::string, inference::CudaSharedMemoryStatusResponse::RegionStatus> cuda_;
  TraceMap trace_global_;
  std::map<std::string, TraceMap> trace_models_;  // per-model overrides
  std::map<std::string, inference::LogSettingsResponse::SettingValue> log_;
};

}  // namespace infergate::sim
