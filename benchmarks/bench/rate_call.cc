#include "benchmarks/bench/rate_call.h"

namespace infergate::bench {

void RateCall::issue(ChannelPool::Stub* stub) {
  std::lock_guard<std::mutex> lock(mu_);
  call_context_.emplace();
  c_.setup.prepare(*call_context_, /*with_deadline=*/true);
  c_.in_flight.sent();
  started_ = std::chrono::steady_clock::now();
  stub->async()->ModelInfer(&*call_context_, &c_.setup.request(), &response_,
                            [this](grpc::Status status) { on_done(status); });
}

void RateCall::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (call_context_) call_context_->TryCancel();
}

void RateCall::on_done(const grpc::Status& status) {
  auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - started_);
  c_.recorder.record(index_,
                     c_.setup.unary_outcome(status, response_, latency.count(), c_.recorder));
  {
    std::lock_guard<std::mutex> lock(mu_);
    call_context_.reset();
  }
  InFlight& in_flight = c_.in_flight;
  c_.release(this);  // the scheduler may reuse this call from here on
  in_flight.end();   // last: the control thread may destroy the pool now
}

}  // namespace infergate::bench
