// The simulator's Prometheus text exposition, with Triton's metric names: per model and
// version the request, count and duration counters and the pending-request gauge; the
// synthetic GPU gauges; and infergate_sim_inflight_requests / infergate_sim_inflight_max.
#pragma once

#include <string>

#include "benchmarks/sim/hang_registry.h"
#include "benchmarks/sim/model_registry.h"

namespace infergate::sim {

// Renders every metric at `now`; any thread.
std::string render_metrics(const SimOptions& options, const ModelRegistry& registry,
                           const InflightGauge& inflight, SteadyTime now);

}  // namespace infergate::sim
