#include "benchmarks/bench/unary_slot.h"

namespace infergate::bench {

void UnarySlot::start() {
  std::lock_guard<std::mutex> lock(mu_);
  running_ = true;
  c_.in_flight.begin();
  issue_locked();
}

void UnarySlot::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
}

void UnarySlot::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (call_context_) call_context_->TryCancel();
}

void UnarySlot::issue_locked() {
  call_context_.emplace();
  c_.setup.prepare(*call_context_, /*with_deadline=*/true);
  c_.in_flight.sent();
  started_ = std::chrono::steady_clock::now();
  // gRPC never runs this callback inline, so holding mu_ here cannot deadlock.
  c_.stub->async()->ModelInfer(&*call_context_, &c_.setup.request(), &response_,
                               [this](grpc::Status status) { on_done(status); });
}

void UnarySlot::on_done(const grpc::Status& status) {
  auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - started_);
  c_.recorder.record(c_.index,
                     c_.setup.unary_outcome(status, response_, latency.count(), c_.recorder));
  bool again;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call_context_.reset();
    again = running_;
    if (again) issue_locked();
  }
  InFlight& in_flight = c_.in_flight;
  if (!again) in_flight.end();  // last: the control thread may destroy this slot now
}

}  // namespace infergate::bench
