// A closed-loop slot that sends over ModelStreamInfer: one stream (a StreamCall) at a
// time, replaced by a fresh one if it ends while the slot is running. Control-thread
// methods and on_stream_done (gRPC thread) meet on mu_, which guards call_.
#pragma once

#include <atomic>
#include <mutex>

#include "benchmarks/bench/closed_loop_slot.h"

namespace infergate::bench {

class StreamCall;

class StreamSlot : public ClosedLoopSlot {
 public:
  explicit StreamSlot(SlotContext context) : c_(context) {}

  void start() override;
  void stop() override;
  void cancel() override;
  void check_timeout(std::chrono::steady_clock::time_point now) override;

  // Called by `call` from its OnDone: deletes it, then opens the next stream if the
  // slot is still running and not cancelled, or ends the slot's in-flight count.
  void on_stream_done(StreamCall* call);

 private:
  // Under mu_: the next stream, registered as call_ in the same step that checks
  // running_ and cancelled_, so that a concurrent cancel() always sees it. nullptr
  // when the slot is done.
  StreamCall* next_stream_locked();

  SlotContext c_;
  std::atomic<bool> running_{false};
  std::mutex mu_;
  bool cancelled_ = false;
  StreamCall* call_ = nullptr;
};

}  // namespace infergate::bench
