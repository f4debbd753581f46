// One ModelStreamInfer call (bidi). Reads requests one after another while earlier ones
// are still executing, answers them in request order (a failed request becomes an
// error_message and the stream goes on, as in Triton), and finishes once the client has
// half-closed and every response is written. Reading pauses while too much is queued, so
// a client that does not read its responses cannot fill the server's memory.
//
// Threads: reactions arrive on gRPC threads, executions end on the timer thread, abort()
// comes from shutdown. State is guarded by mu_; gRPC operations are started outside it.
// References: gRPC's (until OnDone) and one per pending timer.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "benchmarks/sim/hang_registry.h"
#include "benchmarks/sim/sim_runtime.h"
#include "inference/grpc_service.pb.h"

namespace infergate::sim {

class StreamCall final : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                                        inference::ModelStreamInferResponse>,
                         public Abortable {
 public:
  explicit StreamCall(SimRuntime& rt);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
  void abort() override;

 private:
  struct Entry {
    inference::ModelStreamInferResponse response;
    Admission admission;
    std::uint64_t bytes = 0;  // response tensor bytes held
    bool ready = false;
    // In infergate_sim_inflight_requests: from its read until its answer is handed to
    // gRPC. Not until that write completes: by then the client may have read the answer
    // and sent the next message, and a client's cap on its messages in flight would be
    // seen exceeded by one.
    bool inside = true;
  };
  // gRPC operations decided under mu_ and started after it is released.
  struct Actions {
    const inference::ModelStreamInferResponse* write = nullptr;
    bool read = false;
    std::optional<grpc::Status> finish;
  };

  static constexpr std::size_t kMaxQueued = 1024;
  static constexpr std::uint64_t kMaxQueuedBytes = 256ull << 20;

  std::unique_ptr<Entry> admit(inference::ModelInferRequest& request);
  void on_due(Entry* entry);  // timer thread
  void end(grpc::Status status);
  Actions next_locked();
  void act(const Actions& actions);

  SimRuntime& rt_;
  std::unique_ptr<inference::ModelInferRequest> request_;  // the read in progress

  std::mutex mu_;
  std::deque<std::unique_ptr<Entry>> queue_;  // in request order; front is written first
  std::uint64_t queued_bytes_ = 0;
  bool reading_ = false;     // a read is outstanding
  bool reads_done_ = false;  // the client half-closed
  bool writing_ = false;     // a write is outstanding
  bool ended_ = false;       // cancelled, aborted or broken: finish with end_status_
  bool finished_ = false;    // Finish was started
  bool registered_ = false;  // in the hang registry
  grpc::Status end_status_;
};

}  // namespace infergate::sim
