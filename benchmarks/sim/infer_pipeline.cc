#include "benchmarks/sim/infer_pipeline.h"

#include "benchmarks/sim/sim_models.h"
#include "benchmarks/sim/tensor_checks.h"

namespace infergate::sim {

InferPipeline::InferPipeline(const SimOptions& options, const ModelRegistry& registry)
    : options_(options),
      registry_(registry),
      failures_(
          {.refuse = options.refuse_rate, .hang = options.hang_rate, .error = options.error_rate},
          options.seed),
      injected_(static_cast<grpc::StatusCode>(options.error_code), message("injected failure")),
      refused_(grpc::StatusCode::UNAVAILABLE, message("injected failure (refused)")) {}

std::string InferPipeline::message(const std::string& what) const {
  return "infergate-sim " + options_.name + ": " + what;
}

Admission InferPipeline::admit(const inference::ModelInferRequest& request,
                               inference::ModelInferRequest* owned,
                               inference::ModelInferResponse* response) {
  Admission a;
  a.arrival = std::chrono::steady_clock::now();
  Resolved r = registry_.resolve(request.model_name(), request.model_version(), true);
  if (!r.status.ok()) {
    a.status = r.status;
    return a;
  }
  a.version = r.version;
  const FailurePlan::Fate fate = failures_.next();
  if (fate == FailurePlan::Fate::kRefuse) {
    a.status = refused_;
    r.version->record_failure(FailReason::kRejected, std::chrono::nanoseconds(0));
    return a;
  }
  if (fate == FailurePlan::Fate::kHang) {
    a.kind = Admission::Kind::kHang;
    return a;
  }
  std::uint64_t tensor_bytes = 0;
  a.status = check_inputs(request, &tensor_bytes);
  if (a.status.ok() && fate != FailurePlan::Fate::kError) {
    a.status = run(*r.model, *r.version, request, owned, a.arrival, response);
  }
  if (!a.status.ok()) {
    r.version->record_failure(FailReason::kOther, std::chrono::nanoseconds(0));
    return a;
  }
  if (fate == FailurePlan::Fate::kError) a.status = injected_;
  if (r.model->spec().max_batch > 0 && request.inputs_size() > 0 &&
      request.inputs(0).shape_size() > 0 && request.inputs(0).shape(0) > 0) {
    a.batch = static_cast<std::uint64_t>(request.inputs(0).shape(0));
  }
  a.slot = r.version->schedule(a.arrival, tensor_bytes);
  if (a.slot.finish > a.arrival) {
    a.kind = Admission::Kind::kDelay;
  } else {
    complete(a);
  }
  return a;
}

grpc::Status InferPipeline::run(const SimModel& model, VersionState& version,
                                const inference::ModelInferRequest& request,
                                inference::ModelInferRequest* owned, SteadyTime now,
                                inference::ModelInferResponse* response) const {
  grpc::Status s;
  switch (model.spec().kind) {
    case ModelSpec::Kind::kAccumulate:
    case ModelSpec::Kind::kSimpleSequence:
      s = run_accumulate(model, version, request, now, response);
      break;
    case ModelSpec::Kind::kSimple:
    case ModelSpec::Kind::kSimpleString:
      s = run_simple(request, model.spec().kind == ModelSpec::Kind::kSimpleString, response);
      break;
    case ModelSpec::Kind::kIdentity:
      s = run_identity(request, owned, response);
      break;
  }
  if (!s.ok()) return s;
  response->set_model_name(request.model_name());
  response->set_model_version(version.version());
  response->set_id(request.id());
  (*response->mutable_parameters())["served_by"].set_string_param(options_.name);
  return grpc::Status::OK;
}

void InferPipeline::complete(const Admission& a) const {
  if (a.version != nullptr) a.version->record_executed(a.status.ok(), a.arrival, a.slot, a.batch);
}

}  // namespace infergate::sim
