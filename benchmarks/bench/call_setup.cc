#include "benchmarks/bench/call_setup.h"

#include <cstring>

namespace infergate::bench {
namespace {

grpc_compression_algorithm to_grpc(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return GRPC_COMPRESS_GZIP;
    case Compression::kDeflate:
      return GRPC_COMPRESS_DEFLATE;
    case Compression::kNone:
      return GRPC_COMPRESS_NONE;
  }
  return GRPC_COMPRESS_NONE;
}

std::uint64_t raw_bytes(const google::protobuf::RepeatedPtrField<std::string>& raw) {
  std::uint64_t n = 0;
  for (const std::string& r : raw) n += r.size();
  return n;
}

}  // namespace

inference::ModelInferRequest build_request(const BenchOptions& options, Payload payload) {
  inference::ModelInferRequest request;
  request.set_model_name(options.model);
  request.set_model_version(options.model_version);
  auto* input = request.add_inputs();
  input->set_name(payload.input_name);
  input->set_datatype(payload.datatype);
  for (std::int64_t d : payload.shape) input->add_shape(d);
  request.add_raw_input_contents(std::move(payload.bytes));
  return request;
}

CallSetup::CallSetup(inference::ModelInferRequest request, const BenchOptions& options)
    : request_(std::move(request)),
      request_payload_bytes_(raw_bytes(request_.raw_input_contents())),
      headers_(options.headers),
      compression_(to_grpc(options.compression)),
      timeout_(options.timeout),
      validate_(options.validate) {}

void CallSetup::prepare(grpc::ClientContext& context, bool with_deadline) const {
  for (const Header& h : headers_) context.AddMetadata(h.key, h.value);
  if (compression_ != GRPC_COMPRESS_NONE) context.set_compression_algorithm(compression_);
  if (with_deadline) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout_));
  }
}

Sample CallSetup::answer_outcome(const inference::ModelInferResponse& response,
                                 std::int64_t latency_ns, Recorder& recorder) const {
  Sample s{.latency_ns = latency_ns, .response_bytes = raw_bytes(response.raw_output_contents())};
  if (!validate_) return s;
  const auto& in = request_.raw_input_contents();
  const auto& out = response.raw_output_contents();
  bool same = in.size() == out.size();
  for (int i = 0; same && i < in.size(); ++i) {
    same = in[i].size() == out[i].size() &&
           std::memcmp(in[i].data(), out[i].data(), in[i].size()) == 0;
  }
  if (same) return s;
  recorder.note_error(kCodeValidation, "the answer does not echo the request's input bytes (" +
                                           std::to_string(s.response_bytes) + " of " +
                                           std::to_string(request_payload_bytes_) + " bytes)");
  s.code = kCodeValidation;
  return s;
}

Sample CallSetup::unary_outcome(const grpc::Status& status,
                                const inference::ModelInferResponse& response,
                                std::int64_t latency_ns, Recorder& recorder) const {
  if (!status.ok()) {
    return failure(outcome_of_status(status.error_code()), status.error_message(), latency_ns,
                   recorder);
  }
  return answer_outcome(response, latency_ns, recorder);
}

Sample CallSetup::stream_outcome(const inference::ModelStreamInferResponse& response,
                                 std::int64_t latency_ns, Recorder& recorder) const {
  if (!response.error_message().empty()) {
    return failure(kCodeStreamError, response.error_message(), latency_ns, recorder);
  }
  return answer_outcome(response.infer_response(), latency_ns, recorder);
}

Sample CallSetup::failure(int code, const std::string& message, std::int64_t latency_ns,
                          Recorder& recorder) {
  recorder.note_error(code, message);
  return {.latency_ns = latency_ns, .response_bytes = 0, .code = static_cast<std::uint8_t>(code)};
}

}  // namespace infergate::bench
