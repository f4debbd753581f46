#include "benchmarks/sim/sim_models.h"

#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace infergate::sim {
namespace {

using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

grpc::Status invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// Input indexes to echo, in output order; an error for an unknown or repeated output.
grpc::Status select_outputs(const ModelInferRequest& request, std::vector<int>* selected) {
  const int inputs = request.inputs_size();
  std::vector<std::string> names;
  names.reserve(inputs);
  for (const auto& in : request.inputs()) names.push_back(identity_output_name(in.name()));
  for (int i = 0; i < inputs; ++i) {
    for (int j = 0; j < i; ++j) {
      if (names[i] == names[j]) {
        return invalid("inputs '" + request.inputs(j).name() + "' and '" +
                       request.inputs(i).name() + "' would both be echoed as output '" + names[i] +
                       "'");
      }
    }
  }
  if (request.outputs_size() == 0) {
    for (int i = 0; i < inputs; ++i) selected->push_back(i);
    return grpc::Status::OK;
  }
  std::vector<bool> taken(inputs, false);
  for (const auto& out : request.outputs()) {
    int found = -1;
    for (int i = 0; i < inputs && found < 0; ++i) {
      if (names[i] == out.name()) found = i;
    }
    if (found < 0) {
      return invalid("unexpected inference output '" + out.name() + "' for model '" +
                     request.model_name() + "'");
    }
    if (taken[found]) return invalid("output '" + out.name() + "' is requested twice");
    taken[found] = true;
    selected->push_back(found);
  }
  return grpc::Status::OK;
}

// Reads sequence_id: "u<number>" or "s<string>"; empty when absent or zero.
grpc::Status sequence_key(const ModelInferRequest& request, std::string* key) {
  auto it = request.parameters().find("sequence_id");
  if (it == request.parameters().end()) return grpc::Status::OK;
  const InferParameter& p = it->second;
  switch (p.parameter_choice_case()) {
    case InferParameter::kInt64Param:
      if (p.int64_param() != 0) *key = "u" + std::to_string(static_cast<uint64_t>(p.int64_param()));
      return grpc::Status::OK;
    case InferParameter::kUint64Param:
      if (p.uint64_param() != 0) *key = "u" + std::to_string(p.uint64_param());
      return grpc::Status::OK;
    case InferParameter::kStringParam:
      if (!p.string_param().empty()) *key = "s" + p.string_param();
      return grpc::Status::OK;
    default:
      return invalid("sequence_id must be an int64, uint64 or string parameter");
  }
}

// A bool control parameter (sequence_start, sequence_end); false when absent.
grpc::Status bool_param(const ModelInferRequest& request, const std::string& name, bool* value) {
  *value = false;
  auto it = request.parameters().find(name);
  if (it == request.parameters().end()) return grpc::Status::OK;
  if (it->second.parameter_choice_case() != InferParameter::kBoolParam) {
    return invalid(name + " must be a bool parameter");
  }
  *value = it->second.bool_param();
  return grpc::Status::OK;
}

// Sums input `name` (INT32, raw or int_contents; already validated against its shape).
grpc::Status sum_input(const ModelInferRequest& request, const std::string& name, std::int64_t* sum,
                       bool* raw) {
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& in = request.inputs(i);
    if (in.name() != name) continue;
    if (in.datatype() != "INT32") {
      return invalid("input '" + name + "' of model '" + request.model_name() +
                     "' must be INT32, not " + in.datatype());
    }
    *sum = 0;
    *raw = request.raw_input_contents_size() > 0;
    if (*raw) {
      const std::string& data = request.raw_input_contents(i);
      for (std::size_t pos = 0; pos + 4 <= data.size(); pos += 4) {
        std::int32_t v;
        std::memcpy(&v, data.data() + pos, 4);
        *sum += v;
      }
    } else {
      for (std::int32_t v : in.contents().int_contents()) *sum += v;
    }
    return grpc::Status::OK;
  }
  return invalid("expected input '" + name + "' for model '" + request.model_name() + "'");
}

// The elements of input `index` of a simple/simple_string request as integers (INT32
// values, or BYTES elements that are decimal integers), in raw or typed form.
grpc::Status input_numbers(const ModelInferRequest& request, int index, bool strings,
                           std::vector<std::int64_t>* out) {
  const auto& in = request.inputs(index);
  const char* want = strings ? "BYTES" : "INT32";
  if (in.datatype() != want) {
    return invalid("input '" + in.name() + "' of model '" + request.model_name() + "' must be " +
                   want + ", not " + in.datatype());
  }
  auto number = [&](std::string_view text) -> bool {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return false;
    out->push_back(v);
    return true;
  };
  const bool raw = request.raw_input_contents_size() > 0;
  if (!strings && raw) {
    const std::string& data = request.raw_input_contents(index);
    for (std::size_t pos = 0; pos + 4 <= data.size(); pos += 4) {
      std::int32_t v;
      std::memcpy(&v, data.data() + pos, 4);
      out->push_back(v);
    }
  } else if (!strings) {
    for (std::int32_t v : in.contents().int_contents()) out->push_back(v);
  } else if (raw) {
    const std::string& data = request.raw_input_contents(index);
    for (std::size_t pos = 0; pos + 4 <= data.size();) {
      std::uint32_t n;
      std::memcpy(&n, data.data() + pos, 4);
      if (!number(std::string_view(data).substr(pos + 4, n))) {
        return invalid("input '" + in.name() + "' holds a string that is not an integer");
      }
      pos += 4 + n;
    }
  } else {
    for (const std::string& s : in.contents().bytes_contents()) {
      if (!number(s))
        return invalid("input '" + in.name() + "' holds a string that is not an integer");
    }
  }
  return grpc::Status::OK;
}

}  // namespace

std::string identity_output_name(const std::string& input_name) {
  if (input_name.starts_with("INPUT")) return "OUTPUT" + input_name.substr(5);
  if (input_name.starts_with("input")) return "output" + input_name.substr(5);
  return "OUTPUT_" + input_name;
}

grpc::Status run_identity(const ModelInferRequest& request, ModelInferRequest* owned,
                          ModelInferResponse* response) {
  if (request.inputs_size() == 0) {
    return invalid("model '" + request.model_name() + "' expects at least 1 input, got 0");
  }
  std::vector<int> selected;
  grpc::Status s = select_outputs(request, &selected);
  if (!s.ok()) return s;
  const bool raw = request.raw_input_contents_size() > 0;
  for (int i : selected) {
    const auto& in = request.inputs(i);
    auto* out = response->add_outputs();
    out->set_name(identity_output_name(in.name()));
    out->set_datatype(in.datatype());
    *out->mutable_shape() = in.shape();
    if (raw) {
      std::string* data = response->add_raw_output_contents();
      if (owned != nullptr) {
        data->swap(*owned->mutable_raw_input_contents(i));
      } else {
        data->assign(request.raw_input_contents(i));
      }
    } else if (owned != nullptr) {
      out->mutable_contents()->Swap(owned->mutable_inputs(i)->mutable_contents());
    } else {
      out->mutable_contents()->CopyFrom(in.contents());
    }
  }
  return grpc::Status::OK;
}

grpc::Status run_simple(const ModelInferRequest& request, bool strings,
                        ModelInferResponse* response) {
  int first = -1;
  int second = -1;
  for (int i = 0; i < request.inputs_size(); ++i) {
    if (request.inputs(i).name() == "INPUT0") first = i;
    if (request.inputs(i).name() == "INPUT1") second = i;
  }
  if (first < 0 || second < 0) {
    return invalid("model '" + request.model_name() + "' expects inputs 'INPUT0' and 'INPUT1'");
  }
  std::vector<std::int64_t> a;
  std::vector<std::int64_t> b;
  grpc::Status s = input_numbers(request, first, strings, &a);
  if (s.ok()) s = input_numbers(request, second, strings, &b);
  if (!s.ok()) return s;
  if (a.size() != b.size()) {
    return invalid("inputs 'INPUT0' and 'INPUT1' of model '" + request.model_name() +
                   "' must have as many elements");
  }
  std::vector<std::string> wanted;
  for (const auto& out : request.outputs()) {
    if (out.name() != "OUTPUT0" && out.name() != "OUTPUT1") {
      return invalid("unexpected inference output '" + out.name() + "' for model '" +
                     request.model_name() + "'");
    }
    wanted.push_back(out.name());
  }
  if (wanted.empty()) wanted = {"OUTPUT0", "OUTPUT1"};
  const bool raw = request.raw_input_contents_size() > 0;
  for (const std::string& name : wanted) {
    const int sign = name == "OUTPUT0" ? 1 : -1;
    auto* out = response->add_outputs();
    out->set_name(name);
    out->set_datatype(strings ? "BYTES" : "INT32");
    *out->mutable_shape() = request.inputs(first).shape();
    std::string* data = raw ? response->add_raw_output_contents() : nullptr;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::int64_t v = a[i] + sign * b[i];
      if (strings) {
        const std::string text = std::to_string(v);
        if (data != nullptr) {
          const auto n = static_cast<std::uint32_t>(text.size());
          data->append(reinterpret_cast<const char*>(&n), 4);
          data->append(text);
        } else {
          out->mutable_contents()->add_bytes_contents(text);
        }
      } else {
        const auto v32 = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
        if (data != nullptr) {
          data->append(reinterpret_cast<const char*>(&v32), 4);
        } else {
          out->mutable_contents()->add_int_contents(v32);
        }
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status run_accumulate(const SimModel& model, VersionState& version,
                            const ModelInferRequest& request, SteadyTime now,
                            ModelInferResponse* response) {
  std::string key;
  bool start = false;
  bool end = false;
  grpc::Status s = sequence_key(request, &key);
  if (s.ok()) s = bool_param(request, "sequence_start", &start);
  if (s.ok()) s = bool_param(request, "sequence_end", &end);
  if (!s.ok()) return s;
  if (key.empty()) {
    return invalid("inference request to model '" + model.name() +
                   "' must specify sequence_id (a non-zero or non-empty correlation ID)");
  }
  // simple_sequence is accumulate with Triton's tensor names.
  const bool triton_names = model.spec().kind == ModelSpec::Kind::kSimpleSequence;
  const std::string input = triton_names ? "INPUT" : "INPUT0";
  const std::string output = triton_names ? "OUTPUT" : "OUTPUT0";
  std::int64_t delta = 0;
  bool raw = true;
  s = sum_input(request, input, &delta, &raw);
  if (!s.ok()) return s;
  for (const auto& out : request.outputs()) {
    if (out.name() != output) {
      return invalid("unexpected inference output '" + out.name() + "' for model '" + model.name() +
                     "'");
    }
  }
  SequenceTable::Update u = version.apply_sequence(key, start, end, delta, now);
  if (!u.known) {
    return invalid("inference request for sequence " + key.substr(1) + " to model '" +
                   model.name() +
                   "' must specify the START flag on the first request of the sequence");
  }
  auto* out = response->add_outputs();
  out->set_name(output);
  out->set_datatype("INT32");
  out->add_shape(1);
  const auto total = static_cast<std::int32_t>(static_cast<std::uint32_t>(u.sum));
  if (raw) {
    response->add_raw_output_contents()->assign(reinterpret_cast<const char*>(&total), 4);
  } else {
    out->mutable_contents()->add_int_contents(total);
  }
  (*response->mutable_parameters())["sequence_count"].set_int64_param(u.count);
  return grpc::Status::OK;
}

}  // namespace infergate::sim
