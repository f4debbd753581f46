// A closed-loop slot of unary ModelInfer calls (callback API): each call's callback
// records it and issues the next, so exactly one is outstanding. The context is rebuilt
// per call, the response message reused. Callbacks run on gRPC threads; start, stop and
// cancel on the control thread; mu_ guards the context against a concurrent cancel.
#pragma once

#include <mutex>
#include <optional>

#include "benchmarks/bench/closed_loop_slot.h"

namespace infergate::bench {

class UnarySlot : public ClosedLoopSlot {
 public:
  explicit UnarySlot(SlotContext context) : c_(context) {}

  void start() override;
  void stop() override;
  void cancel() override;
  void check_timeout(std::chrono::steady_clock::time_point) override {}  // deadlines do it

 private:
  void issue_locked();
  void on_done(const grpc::Status& status);

  SlotContext c_;
  std::mutex mu_;
  bool running_ = false;
  std::optional<grpc::ClientContext> call_context_;
  inference::ModelInferResponse response_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace infergate::bench
