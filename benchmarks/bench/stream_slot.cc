#include "benchmarks/bench/stream_slot.h"

#include "benchmarks/bench/stream_call.h"

namespace infergate::bench {

void StreamSlot::start() {
  running_.store(true, std::memory_order_release);
  c_.in_flight.begin();
  StreamCall* call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = next_stream_locked();
  }
  if (call == nullptr) {
    c_.in_flight.end();
    return;
  }
  call->start();  // nothing of `call` may be touched after this
}

StreamCall* StreamSlot::next_stream_locked() {
  if (!running_.load(std::memory_order_acquire) || cancelled_) return nullptr;
  call_ = new StreamCall(*this, c_, running_);
  return call_;
}

void StreamSlot::stop() { running_.store(false, std::memory_order_release); }

void StreamSlot::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  // A call not started yet is cancelled too: its context remembers, and the stream
  // ends as soon as it opens.
  if (call_ != nullptr) call_->cancel(/*timed_out=*/false);
}

void StreamSlot::check_timeout(std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (call_ != nullptr && call_->overdue(now)) call_->cancel(/*timed_out=*/true);
}

void StreamSlot::on_stream_done(StreamCall* call) {
  StreamCall* next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call_ = nullptr;
    next = next_stream_locked();
  }
  delete call;
  if (next != nullptr) {
    next->start();
    return;
  }
  InFlight& in_flight = c_.in_flight;
  in_flight.end();  // last: the control thread may destroy this slot now
}

}  // namespace infergate::bench
