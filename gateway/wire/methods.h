// The RPCs the gateway knows, by HTTP/2 :path. Pure code.
#pragma once

#include <cstdint>
#include <string_view>

namespace infergate::gateway {

enum class Method : std::uint8_t {
  kServerLive,
  kServerReady,
  kModelReady,
  kServerMetadata,
  kModelMetadata,
  kModelInfer,
  kModelStreamInfer,
  kModelConfig,
  kModelStatistics,
  kRepositoryIndex,
  kRepositoryModelLoad,
  kRepositoryModelUnload,
  kSystemSharedMemoryStatus,
  kSystemSharedMemoryRegister,
  kSystemSharedMemoryUnregister,
  kCudaSharedMemoryStatus,
  kCudaSharedMemoryRegister,
  kCudaSharedMemoryUnregister,
  kTraceSetting,
  kLogSettings,
  kHealthCheck,  // grpc.health.v1.Health/Check
  kHealthWatch,  // grpc.health.v1.Health/Watch (not supported)
  kUnknown,      // any other path: answered UNIMPLEMENTED
};

// What the gateway does with a method's requests.
enum class Handling : std::uint8_t {
  kForwardByModel,  // to a healthy backend serving the named model
  kForwardAny,      // to any healthy backend (the request names no model)
  kFleetAnswer,     // answered by the gateway from its view of the fleet
  kFanOut,          // sent to several backends, the answers merged
  kRefuse,          // answered with an error (shared memory, unknown, Watch)
};
inline constexpr int kMethodCount = static_cast<int>(Method::kUnknown) + 1;

struct MethodInfo {
  Method method;
  std::string_view name;  // "ModelInfer"; the metric label
  bool client_streaming;  // ModelStreamInfer only
  // Field number of the model name in the request message; 0 if the request names none.
  int model_field;
  // True for ModelInfer and ModelStreamInfer, whose routing prefix is scanned from the
  // first bytes of a possibly huge message; other requests are small and scanned whole.
  bool scan_prefix;
  bool shared_memory;  // cannot cross the gateway
  Handling handling;
};

inline constexpr std::string_view kServicePrefix = "/inference.GRPCInferenceService/";
inline constexpr std::string_view kHealthPrefix = "/grpc.health.v1.Health/";

const MethodInfo& method_info(Method method);

// Maps an HTTP/2 :path to its method; kUnknown for anything outside the service.
Method method_from_path(std::string_view path);

}  // namespace infergate::gateway
