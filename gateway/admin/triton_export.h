// The backends' own Triton metrics, re-exported on the gateway's /metrics: per backend
// (label `backend`, only backends with a metrics_url) and summed for the fleet. Values
// show only while fresh; infergate_backend_metrics_fresh says which are. Pure: a
// function of the scraper's snapshot.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "health/triton_status.h"

namespace infergate::gateway {

// infergate_backend_{pending_requests, queue_duration_seconds_total,
// compute_duration_seconds_total, inference_success_total, inference_failure_total,
// gpu_utilization, gpu_memory_used_bytes, gpu_memory_total_bytes,
// queue_seconds_per_request, metrics_fresh} and infergate_fleet_{pending_requests,
// gpu_memory_used_bytes, gpu_memory_total_bytes, gpu_utilization}. Families without a
// sample are left out; an empty snapshot gives none. Any thread.
std::vector<prometheus::MetricFamily> triton_families(const health::TritonSnapshot& snapshot);

}  // namespace infergate::gateway
