#include "benchmarks/bench/drain.h"

#include <cstdio>
#include <cstdlib>

namespace infergate::bench {

void drain_then_cancel(InFlight& in_flight, std::chrono::nanoseconds drain,
                       const std::function<void()>& cancel_all) {
  using Clock = std::chrono::steady_clock;
  if (in_flight.wait_idle(Clock::now() + drain)) return;
  cancel_all();
  if (in_flight.wait_idle(Clock::now() + std::chrono::minutes(1))) return;
  std::fprintf(stderr, "infergate-bench: %llu cancelled calls never completed; giving up\n",
               static_cast<unsigned long long>(in_flight.count()));
  std::_Exit(1);
}

}  // namespace infergate::bench
