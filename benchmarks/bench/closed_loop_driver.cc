#include "benchmarks/bench/closed_loop_driver.h"

#include "benchmarks/bench/drain.h"
#include "benchmarks/bench/stream_slot.h"
#include "benchmarks/bench/unary_slot.h"

namespace infergate::bench {

ClosedLoopDriver::ClosedLoopDriver(const CallSetup& setup, const ChannelPool& pool,
                                   Recorder& recorder, bool streaming)
    : setup_(setup), pool_(pool), recorder_(recorder), streaming_(streaming) {}

ClosedLoopDriver::~ClosedLoopDriver() { stop(std::chrono::nanoseconds(0)); }

void ClosedLoopDriver::start(double level) {
  auto n = static_cast<size_t>(level);
  for (size_t i = 0; i < n; ++i) {
    SlotContext context{.setup = setup_,
                        .stub = pool_.stub(i),
                        .index = i,
                        .recorder = recorder_,
                        .in_flight = in_flight_};
    if (streaming_) {
      slots_.push_back(std::make_unique<StreamSlot>(context));
    } else {
      slots_.push_back(std::make_unique<UnarySlot>(context));
    }
  }
  for (auto& slot : slots_) slot->start();
}

void ClosedLoopDriver::stop(std::chrono::nanoseconds drain) {
  for (auto& slot : slots_) slot->stop();
  drain_then_cancel(in_flight_, drain, [this] {
    for (auto& slot : slots_) slot->cancel();
  });
  slots_.clear();
}

void ClosedLoopDriver::poll(std::chrono::steady_clock::time_point now) {
  for (auto& slot : slots_) slot->check_timeout(now);
}

}  // namespace infergate::bench
