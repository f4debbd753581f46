#include "benchmarks/sim/unary_calls.h"

namespace infergate::sim {

HungCall::HungCall(SimRuntime& rt, bool inference, VersionState* version)
    : Abortable(1),
      rt_(rt),
      inference_(inference),
      version_(version),
      arrival_(std::chrono::steady_clock::now()) {
  registered_ = rt_.hangs.add(this);
  if (!registered_) abort();
}

void HungCall::OnCancel() { finish(grpc::Status::CANCELLED); }

void HungCall::OnDone() {
  if (registered_) rt_.hangs.remove(this);
  unref();
}

void HungCall::abort() {
  finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, rt_.pipeline.message("shutting down")));
}

void HungCall::finish(const grpc::Status& status) {
  if (finished_.exchange(true)) return;
  if (inference_) {
    rt_.inflight.leave();
    if (version_ != nullptr) {
      version_->record_failure(FailReason::kCanceled, std::chrono::steady_clock::now() - arrival_);
    }
  }
  Finish(status);
}

DelayedInferCall::DelayedInferCall(SimRuntime& rt, Admission admission)
    : RefCounted(2), rt_(rt), admission_(std::move(admission)) {}

void DelayedInferCall::on_due() {
  rt_.pipeline.complete(admission_);
  finish(admission_.status);
  unref();
}

void DelayedInferCall::OnCancel() { finish(grpc::Status::CANCELLED); }

void DelayedInferCall::OnDone() { unref(); }

void DelayedInferCall::finish(const grpc::Status& status) {
  if (finished_.exchange(true)) return;
  rt_.inflight.leave();
  Finish(status);
}

}  // namespace infergate::sim
