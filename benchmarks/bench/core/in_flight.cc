#include "benchmarks/bench/core/in_flight.h"

#include <algorithm>

namespace infergate::bench {

void InFlight::begin() {
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
  counters_.max_outstanding = std::max(counters_.max_outstanding, count_);
}

void InFlight::sent() {
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.issued;
}

void InFlight::end() {
  // Notifying under the lock: the waiter cannot return, and destroy this, before the
  // notification is done.
  std::lock_guard<std::mutex> lock(mu_);
  if (count_ > 0 && --count_ == 0) idle_.notify_all();
}

bool InFlight::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_until(lock, deadline, [this] { return count_ == 0; });
}

std::uint64_t InFlight::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

LoadCounters InFlight::take_counters() {
  std::lock_guard<std::mutex> lock(mu_);
  LoadCounters out = counters_;
  counters_ = {.issued = 0, .max_outstanding = count_};
  return out;
}

}  // namespace infergate::bench
