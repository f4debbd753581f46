// One ModelStreamInfer stream of a streaming slot (a ClientBidiReactor): it writes the
// shared request, waits for the answer, records it and writes the next, one request at
// a time. Reactions run on gRPC threads, cancel/overdue on the control thread; mu_ guards
// the per-request state. Owned by its StreamSlot, which deletes it from OnDone.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>

#include "benchmarks/bench/closed_loop_slot.h"

namespace infergate::bench {

class StreamSlot;

class StreamCall : public grpc::ClientBidiReactor<inference::ModelInferRequest,
                                                  inference::ModelStreamInferResponse> {
 public:
  StreamCall(StreamSlot& slot, const SlotContext& context, const std::atomic<bool>& running);

  // Opens the stream and writes the first request. After it, the object may be gone.
  void start();
  // Cancels the stream; timed_out: count the outstanding request as DEADLINE_EXCEEDED.
  void cancel(bool timed_out);
  // True when a request has waited for its answer longer than the timeout.
  bool overdue(std::chrono::steady_clock::time_point now);

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void send_locked();
  void close_locked();

  StreamSlot& slot_;
  SlotContext c_;
  const std::atomic<bool>& running_;
  grpc::ClientContext context_;
  inference::ModelStreamInferResponse response_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point started_;
  bool awaiting_ = false;       // a request is out and its answer not yet read
  bool write_pending_ = false;  // a StartWrite has not completed
  bool write_wanted_ = false;   // send as soon as the pending write completes
  bool close_wanted_ = false;   // half-close as soon as the pending write completes
  bool closed_ = false;
  bool timed_out_ = false;
};

}  // namespace infergate::bench
