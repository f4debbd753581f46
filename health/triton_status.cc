#include "health/triton_status.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace infergate::health {

TritonRecord::Change TritonRecord::on_success(const TritonSignals& signals, TimePoint now) {
  // Queue time per request, from what both counters gained since the last good scrape.
  queue_per_request_.reset();
  if (last_success_ && signals_.queue_seconds && signals_.success_requests &&
      signals.queue_seconds && signals.success_requests) {
    const double queued = *signals.queue_seconds - *signals_.queue_seconds;
    const double served = *signals.success_requests - *signals_.success_requests;
    if (queued >= 0 && served > 0) queue_per_request_ = queued / served;
  }
  signals_ = signals;
  last_success_ = now;
  last_ok_ = true;
  last_error_.clear();
  ++scrapes_;
  const bool recovered = failing_;
  failing_ = false;
  return recovered ? Change::kRecovered : Change::kNone;
}

TritonRecord::Change TritonRecord::on_failure(std::string error, TimePoint) {
  last_ok_ = false;
  last_error_ = std::move(error);
  ++scrapes_;
  ++failures_;
  const bool first = !failing_;
  failing_ = true;
  return first ? Change::kFailing : Change::kNone;
}

bool TritonRecord::fresh(TimePoint now, std::chrono::nanoseconds max_age) const {
  return last_ok_ && last_success_ && now - *last_success_ < max_age;
}

std::int64_t TritonRecord::routing_pending(TimePoint now, std::chrono::nanoseconds max_age) const {
  if (!fresh(now, max_age) || !signals_.pending_requests) return -1;
  return std::llround(std::min(*signals_.pending_requests, 1e15));  // finite, >= 0
}

TritonStatus TritonRecord::status(TimePoint now, std::chrono::nanoseconds max_age) const {
  TritonStatus s;
  s.fresh = fresh(now, max_age);
  s.signals = signals_;
  s.queue_seconds_per_request = queue_per_request_;
  if (last_success_) {
    s.seconds_since_success = std::chrono::duration<double>(now - *last_success_).count();
  }
  s.last_error = last_error_;
  s.scrapes = scrapes_;
  s.failures = failures_;
  return s;
}

}  // namespace infergate::health
