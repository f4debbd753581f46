#include "benchmarks/bench/open_loop_driver.h"

#include "benchmarks/bench/drain.h"

namespace infergate::bench {

OpenLoopDriver::OpenLoopDriver(const CallSetup& setup, const ChannelPool& pool, Recorder& recorder,
                               Distribution distribution, std::uint64_t seed,
                               size_t max_outstanding)
    : pool_(pool),
      distribution_(distribution),
      rng_(seed),
      max_outstanding_(max_outstanding),
      call_context_{.setup = setup,
                    .recorder = recorder,
                    .in_flight = in_flight_,
                    .release = [this](RateCall* call) { release(call); }} {}

OpenLoopDriver::~OpenLoopDriver() { stop(std::chrono::nanoseconds(0)); }

void OpenLoopDriver::start(double rate) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  scheduler_ = std::thread([this, rate] { schedule_loop(rate); });
}

void OpenLoopDriver::stop(std::chrono::nanoseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  free_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  drain_then_cancel(in_flight_, drain, [this] {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& call : calls_) call->cancel();
  });
}

void OpenLoopDriver::schedule_loop(double rate) {
  RateSchedule schedule(rate, distribution_, [this] { return rng_.uniform01(); });
  auto t0 = std::chrono::steady_clock::now();
  for (size_t n = 0;; ++n) {
    auto planned = t0 + schedule.next();
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_cv_.wait_until(lock, planned, [this] { return stopping_; })) return;
    }
    RateCall* call = acquire();
    if (call == nullptr) return;
    in_flight_.begin();
    call->issue(pool_.stub(n));
  }
}

RateCall* OpenLoopDriver::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (free_.empty() && calls_.size() < max_outstanding_) {
    calls_.push_back(std::make_unique<RateCall>(call_context_, calls_.size()));
    return calls_.back().get();
  }
  waiting_for_free_ = true;
  free_cv_.wait(lock, [this] { return stopping_ || !free_.empty(); });
  waiting_for_free_ = false;
  if (stopping_) return nullptr;
  RateCall* call = free_.back();
  free_.pop_back();
  return call;
}

void OpenLoopDriver::release(RateCall* call) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(call);
  if (waiting_for_free_) free_cv_.notify_one();
}

}  // namespace infergate::bench
