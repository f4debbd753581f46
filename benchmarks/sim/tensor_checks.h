// KServe v2 tensor datatypes and the checks that an input's data matches its datatype and
// shape, before a simulated model touches it. Pure functions of the request; any thread.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "inference/grpc_service.pb.h"

namespace infergate::sim {

// Which InferTensorContents list carries a datatype's typed data.
enum class TypedList { kNone, kBool, kInt, kInt64, kUint, kUint64, kFp32, kFp64, kBytes };

struct DataTypeInfo {
  std::string_view name;      // "FP32"
  std::size_t element_bytes;  // 0 for BYTES (variable length)
  TypedList list;             // kNone: raw only (FP16, BF16)
};

// nullptr for an unknown datatype name.
const DataTypeInfo* find_datatype(std::string_view name);

// Validates every input of `request`: known datatype, non-negative shape, raw entries one
// per input (or none at all), data size matching the shape, unique names. On success sets
// *tensor_bytes to the request's tensor data size. INVALID_ARGUMENT otherwise.
grpc::Status check_inputs(const inference::ModelInferRequest& request, std::uint64_t* tensor_bytes);

// "[2,3]" for messages.
std::string shape_text(const google::protobuf::RepeatedField<std::int64_t>& shape);

}  // namespace infergate::sim
