#include "gateway/wire/methods.h"

#include <array>

namespace infergate::gateway {
namespace {

constexpr std::array<MethodInfo, kMethodCount> kMethods = {{
    {Method::kServerLive, "ServerLive", false, 0, false, false, Handling::kFleetAnswer},
    {Method::kServerReady, "ServerReady", false, 0, false, false, Handling::kFleetAnswer},
    {Method::kModelReady, "ModelReady", false, 1, false, false, Handling::kFleetAnswer},
    {Method::kServerMetadata, "ServerMetadata", false, 0, false, false, Handling::kFleetAnswer},
    {Method::kModelMetadata, "ModelMetadata", false, 1, false, false, Handling::kForwardByModel},
    {Method::kModelInfer, "ModelInfer", false, 1, true, false, Handling::kForwardByModel},
    {Method::kModelStreamInfer, "ModelStreamInfer", true, 1, true, false,
     Handling::kForwardByModel},
    {Method::kModelConfig, "ModelConfig", false, 1, false, false, Handling::kForwardByModel},
    {Method::kModelStatistics, "ModelStatistics", false, 1, false, false, Handling::kFanOut},
    {Method::kRepositoryIndex, "RepositoryIndex", false, 0, false, false, Handling::kFleetAnswer},
    {Method::kRepositoryModelLoad, "RepositoryModelLoad", false, 2, false, false,
     Handling::kFanOut},
    {Method::kRepositoryModelUnload, "RepositoryModelUnload", false, 2, false, false,
     Handling::kFanOut},
    {Method::kSystemSharedMemoryStatus, "SystemSharedMemoryStatus", false, 0, false, true,
     Handling::kRefuse},
    {Method::kSystemSharedMemoryRegister, "SystemSharedMemoryRegister", false, 0, false, true,
     Handling::kRefuse},
    {Method::kSystemSharedMemoryUnregister, "SystemSharedMemoryUnregister", false, 0, false, true,
     Handling::kRefuse},
    {Method::kCudaSharedMemoryStatus, "CudaSharedMemoryStatus", false, 0, false, true,
     Handling::kRefuse},
    {Method::kCudaSharedMemoryRegister, "CudaSharedMemoryRegister", false, 0, false, true,
     Handling::kRefuse},
    {Method::kCudaSharedMemoryUnregister, "CudaSharedMemoryUnregister", false, 0, false, true,
     Handling::kRefuse},
    {Method::kTraceSetting, "TraceSetting", false, 0, false, false, Handling::kForwardAny},
    {Method::kLogSettings, "LogSettings", false, 0, false, false, Handling::kForwardAny},
    {Method::kHealthCheck, "HealthCheck", false, 0, false, false, Handling::kFleetAnswer},
    {Method::kHealthWatch, "HealthWatch", false, 0, false, false, Handling::kRefuse},
    {Method::kUnknown, "other", false, 0, false, false, Handling::kRefuse},
}};

}  // namespace

const MethodInfo& method_info(Method method) { return kMethods[static_cast<size_t>(method)]; }

Method method_from_path(std::string_view path) {
  if (path.starts_with(kHealthPrefix)) {
    std::string_view name = path.substr(kHealthPrefix.size());
    if (name == "Check") return Method::kHealthCheck;
    if (name == "Watch") return Method::kHealthWatch;
    return Method::kUnknown;
  }
  if (!path.starts_with(kServicePrefix)) return Method::kUnknown;
  std::string_view name = path.substr(kServicePrefix.size());
  // Twenty names: a linear scan with a cheap length check beats hashing here.
  for (const MethodInfo& info : kMethods) {
    if (info.method < Method::kHealthCheck && info.name.size() == name.size() &&
        info.name == name) {
      return info.method;
    }
  }
  return Method::kUnknown;
}

}  // namespace infergate::gateway
