#include "gateway/methods.h"

#include <array>

namespace infergate::gateway {
namespace {

constexpr std::array<MethodInfo, kMethodCount> kMethods = {{
    {Method::kServerLive, "ServerLive", false, 0, false, false},
    {Method::kServerReady, "ServerReady", false, 0, false, false},
    {Method::kModelReady, "ModelReady", false, 1, false, false},
    {Method::kServerMetadata, "ServerMetadata", false, 0, false, false},
    {Method::kModelMetadata, "ModelMetadata", false, 1, false, false},
    {Method::kModelInfer, "ModelInfer", false, 1, true, false},
    {Method::kModelStreamInfer, "ModelStreamInfer", true, 1, true, false},
    {Method::kModelConfig, "ModelConfig", false, 1, false, false},
    {Method::kModelStatistics, "ModelStatistics", false, 1, false, false},
    {Method::kRepositoryIndex, "RepositoryIndex", false, 0, false, false},
    {Method::kRepositoryModelLoad, "RepositoryModelLoad", false, 2, false, false},
    {Method::kRepositoryModelUnload, "RepositoryModelUnload", false, 2, false, false},
    {Method::kSystemSharedMemoryStatus, "SystemSharedMemoryStatus", false, 0, false, true},
    {Method::kSystemSharedMemoryRegister, "SystemSharedMemoryRegister", false, 0, false, true},
    {Method::kSystemSharedMemoryUnregister, "SystemSharedMemoryUnregister", false, 0, false, true},
    {Method::kCudaSharedMemoryStatus, "CudaSharedMemoryStatus", false, 0, false, true},
    {Method::kCudaSharedMemoryRegister, "CudaSharedMemoryRegister", false, 0, false, true},
    {Method::kCudaSharedMemoryUnregister, "CudaSharedMemoryUnregister", false, 0, false, true},
    {Method::kTraceSetting, "TraceSetting", false, 0, false, false},
    {Method::kLogSettings, "LogSettings", false, 0, false, false},
    {Method::kUnknown, "other", false, 0, false, false},
}};

}  // namespace

const MethodInfo& method_info(Method method) { return kMethods[static_cast<size_t>(method)]; }

Method method_from_path(std::string_view path) {
  if (!path.starts_with(kServicePrefix)) return Method::kUnknown;
  std::string_view name = path.substr(kServicePrefix.size());
  // Twenty names: a linear scan with a cheap length check beats hashing here.
  for (const MethodInfo& info : kMethods) {
    if (info.method != Method::kUnknown && info.name.size() == name.size() && info.name == name) {
      return info.method;
    }
  }
  return Method::kUnknown;
}

}  // namespace infergate::gateway
