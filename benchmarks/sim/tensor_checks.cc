#include "benchmarks/sim/tensor_checks.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace infergate::sim {
namespace {

using inference::InferTensorContents;
using inference::ModelInferRequest;

constexpr std::array<DataTypeInfo, 14> kDataTypes{{
    {"BOOL", 1, TypedList::kBool},
    {"UINT8", 1, TypedList::kUint},
    {"UINT16", 2, TypedList::kUint},
    {"UINT32", 4, TypedList::kUint},
    {"UINT64", 8, TypedList::kUint64},
    {"INT8", 1, TypedList::kInt},
    {"INT16", 2, TypedList::kInt},
    {"INT32", 4, TypedList::kInt},
    {"INT64", 8, TypedList::kInt64},
    {"FP16", 2, TypedList::kNone},
    {"BF16", 2, TypedList::kNone},
    {"FP32", 4, TypedList::kFp32},
    {"FP64", 8, TypedList::kFp64},
    {"BYTES", 0, TypedList::kBytes},
}};

grpc::Status invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// Elements in the typed list that `list` names; bytes of data they hold go in *bytes.
std::uint64_t typed_count(const InferTensorContents& c, const DataTypeInfo& type,
                          std::uint64_t* bytes) {
  std::uint64_t n = 0;
  switch (type.list) {
    case TypedList::kNone:
      return 0;
    case TypedList::kBool:
      n = c.bool_contents_size();
      break;
    case TypedList::kInt:
      n = c.int_contents_size();
      break;
    case TypedList::kInt64:
      n = c.int64_contents_size();
      break;
    case TypedList::kUint:
      n = c.uint_contents_size();
      break;
    case TypedList::kUint64:
      n = c.uint64_contents_size();
      break;
    case TypedList::kFp32:
      n = c.fp32_contents_size();
      break;
    case TypedList::kFp64:
      n = c.fp64_contents_size();
      break;
    case TypedList::kBytes:
      *bytes = 0;
      for (const std::string& s : c.bytes_contents()) *bytes += s.size();
      return c.bytes_contents_size();
  }
  *bytes = n * type.element_bytes;
  return n;
}

// Elements in raw BYTES data: each is a 4-byte little-endian length and that many bytes.
// Returns false if the data does not split into whole elements.
bool count_raw_strings(const std::string& raw, std::uint64_t* count) {
  std::size_t pos = 0;
  *count = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) return false;
    unsigned char b[4];
    std::memcpy(b, raw.data() + pos, 4);
    const std::uint64_t len = b[0] | (b[1] << 8) | (b[2] << 16) | (std::uint64_t{b[3]} << 24);
    pos += 4;
    if (raw.size() - pos < len) return false;
    pos += len;
    ++*count;
  }
  return true;
}

// Checks one input's data against its datatype and shape; adds its data size to *bytes.
grpc::Status check_input(const ModelInferRequest::InferInputTensor& in, const std::string* raw,
                         std::uint64_t* bytes) {
  const std::string where = "input '" + in.name() + "'";
  const DataTypeInfo* type = find_datatype(in.datatype());
  if (type == nullptr) return invalid(where + " has unknown datatype '" + in.datatype() + "'");
  std::uint64_t elements = 1;
  for (std::int64_t dim : in.shape()) {
    if (dim < 0)
      return invalid(where + " has a negative dimension in shape " + shape_text(in.shape()));
    if (dim > 0 && elements > (std::uint64_t{1} << 62) / static_cast<std::uint64_t>(dim)) {
      return invalid(where + " has a shape too large: " + shape_text(in.shape()));
    }
    elements *= static_cast<std::uint64_t>(dim);
  }
  const std::string shape = shape_text(in.shape());
  std::uint64_t got = 0;
  if (raw != nullptr) {
    *bytes += raw->size();
    if (type->element_bytes == 0) {
      if (!count_raw_strings(*raw, &got)) {
        return invalid(where + " has malformed BYTES data (4-byte length prefixes overrun)");
      }
    } else if (raw->size() != elements * type->element_bytes) {
      return invalid(where + " has " + std::to_string(raw->size()) +
                     " bytes of raw data, but shape " + shape + " of " + in.datatype() + " needs " +
                     std::to_string(elements * type->element_bytes) + " bytes");
    } else {
      return grpc::Status::OK;
    }
  } else {
    if (type->list == TypedList::kNone) {
      return invalid(where + " of " + in.datatype() + " must be sent in raw_input_contents");
    }
    std::uint64_t typed_bytes = 0;
    got = typed_count(in.contents(), *type, &typed_bytes);
    *bytes += typed_bytes;
  }
  if (got != elements) {
    return invalid(where + " holds " + std::to_string(got) + " " + in.datatype() +
                   " elements, but shape " + shape + " needs " + std::to_string(elements));
  }
  return grpc::Status::OK;
}

}  // namespace

const DataTypeInfo* find_datatype(std::string_view name) {
  for (const DataTypeInfo& t : kDataTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string shape_text(const google::protobuf::RepeatedField<std::int64_t>& shape) {
  std::string out = "[";
  for (int i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

grpc::Status check_inputs(const ModelInferRequest& request, std::uint64_t* tensor_bytes) {
  const int inputs = request.inputs_size();
  const int raws = request.raw_input_contents_size();
  if (raws != 0 && raws != inputs) {
    return invalid("expected " + std::to_string(inputs) +
                   " raw_input_contents entries (one per input) but got " + std::to_string(raws));
  }
  *tensor_bytes = 0;
  for (int i = 0; i < inputs; ++i) {
    const std::string* raw = raws != 0 ? &request.raw_input_contents(i) : nullptr;
    grpc::Status s = check_input(request.inputs(i), raw, tensor_bytes);
    if (!s.ok()) return s;
  }
  std::vector<std::string_view> names;
  names.reserve(inputs);
  for (const auto& in : request.inputs()) names.push_back(in.name());
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) return invalid("input '" + std::string(*dup) + "' is given twice");
  return grpc::Status::OK;
}

}  // namespace infergate::sim
