// Unary calls that are not answered inside their handler.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <atomic>

#include "benchmarks/sim/hang_registry.h"
#include "benchmarks/sim/sim_runtime.h"

namespace infergate::sim {

// A call held without an answer (--hang, or a ModelInfer drawn by --hang-rate) until the
// client cancels it (deadline or cancel: OnCancel on a gRPC thread) or shutdown aborts it
// (abort on the main thread). An inference call leaves the in-flight gauge when it ends
// and counts as a canceled request of `version` (if known).
class HungCall final : public grpc::ServerUnaryReactor, public Abortable {
 public:
  // `inference`: the caller has entered the in-flight gauge for it.
  HungCall(SimRuntime& rt, bool inference, VersionState* version);

  void OnCancel() override;
  void OnDone() override;
  void abort() override;

 private:
  void finish(const grpc::Status& status);

  SimRuntime& rt_;
  const bool inference_;
  VersionState* const version_;
  const SteadyTime arrival_;
  bool registered_ = false;
  std::atomic<bool> finished_{false};
};

// A ModelInfer answered when its simulated execution ends: the timer thread calls on_due()
// at the admission's finish time. A client cancel answers it earlier (the execution still
// counts). References: gRPC's (until OnDone) and the timer's (until on_due).
class DelayedInferCall final : public grpc::ServerUnaryReactor, public RefCounted {
 public:
  DelayedInferCall(SimRuntime& rt, Admission admission);

  // Timer thread.
  void on_due();
  void OnCancel() override;
  void OnDone() override;

 private:
  void finish(const grpc::Status& status);

  SimRuntime& rt_;
  const Admission admission_;
  std::atomic<bool> finished_{false};
};

}  // namespace infergate::sim
