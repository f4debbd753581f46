#include "benchmarks/sim/admin_store.h"

#include <algorithm>
#include <array>

namespace infergate::sim {
namespace {

using inference::LogSettingsResponse;

grpc::Status invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// Triton's defaults for the trace settings it knows.
const std::map<std::string, std::vector<std::string>>& trace_defaults() {
  static const auto* defaults = new std::map<std::string, std::vector<std::string>>{
      {"trace_file", {}},      {"trace_level", {"OFF"}}, {"trace_rate", {"1000"}},
      {"trace_count", {"-1"}}, {"log_frequency", {"0"}}, {"trace_mode", {"triton"}},
      {"trace_config", {}},
  };
  return *defaults;
}

template <typename Region, typename Request>
grpc::Status register_region(std::map<std::string, Region>& regions, const Request& request,
                             std::size_t max_regions, Region region) {
  if (request.name().empty()) return invalid("shared memory region name must not be empty");
  if (regions.contains(request.name())) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        "shared memory region '" + request.name() + "' already in manager");
  }
  if (regions.size() >= max_regions) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many shared memory regions");
  }
  regions.emplace(request.name(), std::move(region));
  return grpc::Status::OK;
}

template <typename Region, typename ResponseMap>
grpc::Status region_status(const std::map<std::string, Region>& regions, const std::string& name,
                           const char* kind, ResponseMap* out) {
  if (name.empty()) {
    for (const auto& [n, r] : regions) (*out)[n] = r;
    return grpc::Status::OK;
  }
  auto it = regions.find(name);
  if (it == regions.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string("Unable to find ") + kind +
                                                         " shared memory region: '" + name + "'");
  }
  (*out)[name] = it->second;
  return grpc::Status::OK;
}

template <typename Region>
void unregister_region(std::map<std::string, Region>& regions, const std::string& name) {
  if (name.empty()) {
    regions.clear();
  } else {
    regions.erase(name);
  }
}

}  // namespace

AdminStore::AdminStore() : trace_global_(trace_defaults()) {
  log_["log_file"].set_string_param("");
  log_["log_info"].set_bool_param(true);
  log_["log_warning"].set_bool_param(true);
  log_["log_error"].set_bool_param(true);
  log_["log_verbose_level"].set_uint32_param(0);
  log_["log_format"].set_string_param("default");
}

grpc::Status AdminStore::register_system(
    const inference::SystemSharedMemoryRegisterRequest& request) {
  inference::SystemSharedMemoryStatusResponse::RegionStatus region;
  region.set_name(request.name());
  region.set_key(request.key());
  region.set_offset(request.offset());
  region.set_byte_size(request.byte_size());
  std::lock_guard<std::mutex> lock(mu_);
  return register_region(system_, request, kMaxRegions, std::move(region));
}

grpc::Status AdminStore::system_status(const inference::SystemSharedMemoryStatusRequest& request,
                                       inference::SystemSharedMemoryStatusResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  return region_status(system_, request.name(), "system", response->mutable_regions());
}

grpc::Status AdminStore::unregister_system(
    const inference::SystemSharedMemoryUnregisterRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  unregister_region(system_, request.name());
  return grpc::Status::OK;
}

grpc::Status AdminStore::register_cuda(const inference::CudaSharedMemoryRegisterRequest& request) {
  inference::CudaSharedMemoryStatusResponse::RegionStatus region;
  region.set_name(request.name());
  region.set_device_id(static_cast<std::uint64_t>(request.device_id()));
  region.set_byte_size(request.byte_size());
  std::lock_guard<std::mutex> lock(mu_);
  return register_region(cuda_, request, kMaxRegions, std::move(region));
}

grpc::Status AdminStore::cuda_status(const inference::CudaSharedMemoryStatusRequest& request,
                                     inference::CudaSharedMemoryStatusResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  return region_status(cuda_, request.name(), "cuda", response->mutable_regions());
}

grpc::Status AdminStore::unregister_cuda(
    const inference::CudaSharedMemoryUnregisterRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  unregister_region(cuda_, request.name());
  return grpc::Status::OK;
}

grpc::Status AdminStore::trace_setting(const inference::TraceSettingRequest& request,
                                       bool model_known,
                                       inference::TraceSettingResponse* response) {
  const std::string& model = request.model_name();
  if (!model.empty() && !model_known) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "Request for unknown model: '" + model + "' is not found");
  }
  for (const auto& [key, value] : request.settings()) {
    if (!trace_defaults().contains(key)) return invalid("unknown trace setting '" + key + "'");
    if (key == "trace_level") {
      for (const std::string& level : value.value()) {
        if (level != "OFF" && level != "TIMESTAMPS" && level != "TENSORS") {
          return invalid("trace_level '" + level + "' is not OFF, TIMESTAMPS or TENSORS");
        }
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  TraceMap& target = model.empty() ? trace_global_ : trace_models_[model];
  for (const auto& [key, value] : request.settings()) {
    if (value.value().empty()) {
      if (model.empty()) {
        target[key] = trace_defaults().at(key);
      } else {
        target.erase(key);
      }
    } else {
      target[key] = TraceValues(value.value().begin(), value.value().end());
    }
  }
  TraceMap effective = trace_global_;
  if (!model.empty()) {
    for (const auto& [key, values] : trace_models_[model]) effective[key] = values;
  }
  for (const auto& [key, values] : effective) {
    auto& out = (*response->mutable_settings())[key];
    for (const std::string& v : values) out.add_value(v);
  }
  return grpc::Status::OK;
}

grpc::Status AdminStore::log_settings(const inference::LogSettingsRequest& request,
                                      inference::LogSettingsResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, value] : request.settings()) {
    auto it = log_.find(key);
    if (it == log_.end()) return invalid("unknown log setting '" + key + "'");
    if (it->second.parameter_choice_case() !=
        static_cast<LogSettingsResponse::SettingValue::ParameterChoiceCase>(
            value.parameter_choice_case())) {
      return invalid("log setting '" + key + "' has the wrong type");
    }
    if (key == "log_format" && value.string_param() != "default" &&
        value.string_param() != "ISO8601") {
      return invalid("log_format '" + value.string_param() + "' is not default or ISO8601");
    }
  }
  for (const auto& [key, value] : request.settings()) {
    auto& stored = log_[key];
    switch (value.parameter_choice_case()) {
      case inference::LogSettingsRequest::SettingValue::kBoolParam:
        stored.set_bool_param(value.bool_param());
        break;
      case inference::LogSettingsRequest::SettingValue::kUint32Param:
        stored.set_uint32_param(value.uint32_param());
        break;
      default:
        stored.set_string_param(value.string_param());
        break;
    }
  }
  for (const auto& [key, value] : log_) (*response->mutable_settings())[key] = value;
  return grpc::Status::OK;
}

}  // namespace infergate::sim
