// Everything the RPC handlers and call objects share. Built in main before the server
// starts and outlives it; every member is thread-safe.
#pragma once

#include "benchmarks/sim/admin_store.h"
#include "benchmarks/sim/core/sim_options.h"
#include "benchmarks/sim/hang_registry.h"
#include "benchmarks/sim/infer_pipeline.h"
#include "benchmarks/sim/model_registry.h"
#include "benchmarks/sim/timer_thread.h"

namespace infergate::sim {

struct SimRuntime {
  const SimOptions& options;
  ModelRegistry& registry;
  InferPipeline& pipeline;
  TimerThread& timers;
  HangRegistry& hangs;
  InflightGauge& inflight;
  AdminStore& admin;
};

}  // namespace infergate::sim
