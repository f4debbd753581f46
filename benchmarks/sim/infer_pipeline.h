// What happens to one inference request when it arrives (unary or on a stream): resolve
// the model and version, draw its fate (refused, hung, failed or served), validate, run
// the simulated model and book an instance. Called on gRPC threads; thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>

#include "benchmarks/sim/core/failure_plan.h"
#include "benchmarks/sim/model_registry.h"
#include "inference/grpc_service.pb.h"

namespace infergate::sim {

// The decision about one request. kAnswer: answer `status` now (the response is filled if
// it is OK). kDelay: answer `status` at `slot.finish`, then call InferPipeline::complete.
// kHang: never answer; count it as canceled when the client gives up.
struct Admission {
  enum class Kind { kAnswer, kDelay, kHang };

  Kind kind = Kind::kAnswer;
  grpc::Status status;
  VersionState* version = nullptr;  // null when the model or version did not resolve
  SteadyTime arrival;
  InstanceScheduler::Slot slot;
  std::uint64_t batch = 1;  // batch elements, for inference_count
};

class InferPipeline {
 public:
  InferPipeline(const SimOptions& options, const ModelRegistry& registry);

  // Decides and, when the request is served, fills `response`. `owned` is the same request
  // when the caller owns it (its tensors are moved, not copied), else nullptr.
  Admission admit(const inference::ModelInferRequest& request, inference::ModelInferRequest* owned,
                  inference::ModelInferResponse* response);

  // Counts a kDelay request whose execution has ended; any thread.
  void complete(const Admission& admission) const;

  // The message of statuses the server makes up: "infergate-sim NAME: <what>".
  std::string message(const std::string& what) const;

 private:
  grpc::Status run(const SimModel& model, VersionState& version,
                   const inference::ModelInferRequest& request, inference::ModelInferRequest* owned,
                   SteadyTime now, inference::ModelInferResponse* response) const;

  const SimOptions& options_;
  const ModelRegistry& registry_;
  FailurePlan failures_;
  grpc::Status injected_;
  grpc::Status refused_;
};

}  // namespace infergate::sim
