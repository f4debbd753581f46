// Everything that is the same for every request: the one immutable ModelInferRequest,
// its metadata, compression and deadline, and how an answer is judged. Built on the main
// thread; shared read-only by every thread afterwards.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>

#include "benchmarks/bench/core/bench_options.h"
#include "benchmarks/bench/core/recorder.h"
#include "benchmarks/bench/core/window_stats.h"
#include "inference/grpc_service.pb.h"

namespace infergate::bench {

// The request the options describe, carrying `payload` as raw_input_contents.
inference::ModelInferRequest build_request(const BenchOptions& options, Payload payload);

class CallSetup {
 public:
  CallSetup(inference::ModelInferRequest request, const BenchOptions& options);

  const inference::ModelInferRequest& request() const { return request_; }
  std::uint64_t request_payload_bytes() const { return request_payload_bytes_; }
  std::chrono::nanoseconds timeout() const { return timeout_; }

  // Readies a fresh context: metadata, compression and, for unary calls, the deadline.
  void prepare(grpc::ClientContext& context, bool with_deadline) const;

  // The sample of a finished unary call; errors are noted in `recorder`.
  Sample unary_outcome(const grpc::Status& status, const inference::ModelInferResponse& response,
                       std::int64_t latency_ns, Recorder& recorder) const;
  // The sample of one answer on a stream.
  Sample stream_outcome(const inference::ModelStreamInferResponse& response,
                        std::int64_t latency_ns, Recorder& recorder) const;
  // A request that ended without an answer.
  static Sample failure(int code, const std::string& message, std::int64_t latency_ns,
                        Recorder& recorder);

 private:
  Sample answer_outcome(const inference::ModelInferResponse& response, std::int64_t latency_ns,
                        Recorder& recorder) const;

  inference::ModelInferRequest request_;
  std::uint64_t request_payload_bytes_ = 0;
  std::vector<Header> headers_;
  grpc_compression_algorithm compression_ = GRPC_COMPRESS_NONE;
  std::chrono::nanoseconds timeout_;
  bool validate_ = false;
};

}  // namespace infergate::bench
