#include "benchmarks/bench/stream_call.h"

#include "benchmarks/bench/stream_slot.h"

namespace infergate::bench {
namespace {

std::int64_t since_ns(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start)
      .count();
}

}  // namespace

StreamCall::StreamCall(StreamSlot& slot, const SlotContext& context,
                       const std::atomic<bool>& running)
    : slot_(slot), c_(context), running_(running) {
  c_.setup.prepare(context_, /*with_deadline=*/false);
}

void StreamCall::start() {
  c_.stub->async()->ModelStreamInfer(&context_, this);
  {
    std::lock_guard<std::mutex> lock(mu_);
    send_locked();
  }
  StartRead(&response_);
  StartCall();
}

void StreamCall::send_locked() {
  c_.in_flight.sent();
  started_ = std::chrono::steady_clock::now();
  awaiting_ = true;
  write_pending_ = true;
  StartWrite(&c_.setup.request());
}

void StreamCall::close_locked() {
  if (closed_) return;
  closed_ = true;
  StartWritesDone();
}

void StreamCall::cancel(bool timed_out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    timed_out_ = timed_out_ || timed_out;
  }
  context_.TryCancel();
}

bool StreamCall::overdue(std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  return awaiting_ && !timed_out_ && now - started_ > c_.setup.timeout();
}

void StreamCall::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  write_pending_ = false;
  if (!ok) return;  // the stream is broken; OnDone reports it
  if (write_wanted_) {
    write_wanted_ = false;
    send_locked();
  } else if (close_wanted_) {
    close_locked();
  }
}

void StreamCall::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone reports it
  std::lock_guard<std::mutex> lock(mu_);
  awaiting_ = false;
  c_.recorder.record(c_.index, c_.setup.stream_outcome(response_, since_ns(started_), c_.recorder));
  if (!running_.load(std::memory_order_acquire)) {
    if (write_pending_) {
      close_wanted_ = true;
    } else {
      close_locked();
    }
    return;
  }
  if (write_pending_) {
    write_wanted_ = true;
  } else {
    send_locked();
  }
  StartRead(&response_);
}

void StreamCall::OnDone(const grpc::Status& status) {
  bool lost;
  bool timed_out;
  std::chrono::steady_clock::time_point started;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost = awaiting_;
    timed_out = timed_out_;
    started = started_;
  }
  if (lost) {
    int code = timed_out     ? kCodeDeadlineExceeded
               : status.ok() ? kCodeUnknown
                             : outcome_of_status(status.error_code());
    std::string message = timed_out     ? "no answer on the stream within --timeout"
                          : status.ok() ? "the stream ended before the answer came"
                                        : status.error_message();
    c_.recorder.record(c_.index, CallSetup::failure(code, message, since_ns(started), c_.recorder));
  }
  slot_.on_stream_done(this);  // deletes this; nothing may follow
}

}  // namespace infergate::bench
