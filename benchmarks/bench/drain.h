// The end of a level, shared by both drivers: let outstanding requests finish for a
// while, cancel the rest, and wait until every callback has run.
#pragma once

#include <chrono>
#include <functional>

#include "benchmarks/bench/core/in_flight.h"

namespace infergate::bench {

// Control thread. Returns once in_flight is idle. gRPC runs the callback of every
// cancelled call, so the wait after cancel_all ends; should it not within a minute, the
// process exits (status 1) rather than free memory that callbacks still use.
void drain_then_cancel(InFlight& in_flight, std::chrono::nanoseconds drain,
                       const std::function<void()>& cancel_all);

}  // namespace infergate::bench
