#include "gateway/admin/triton_export.h"

#include <map>
#include <optional>
#include <string>

namespace infergate::gateway {
namespace {

using health::TritonStatus;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric sample(MetricType type, double value, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

struct PerBackend {
  const char* name;
  const char* help;
  MetricType type;
  std::optional<double> (*value)(const TritonStatus&);
};

const PerBackend kPerBackend[] = {
    {"infergate_backend_pending_requests",
     "Requests waiting inside the backend's Triton for execution, all models "
     "(nv_inference_pending_request_count)",
     MetricType::Gauge, [](const TritonStatus& s) { return s.signals.pending_requests; }},
    {"infergate_backend_queue_duration_seconds_total",
     "Time requests spent in the backend's Triton queues, all models "
     "(nv_inference_queue_duration_us)",
     MetricType::Counter, [](const TritonStatus& s) { return s.signals.queue_seconds; }},
    {"infergate_backend_compute_duration_seconds_total",
     "Time the backend's Triton spent computing inferences, all models "
     "(nv_inference_compute_infer_duration_us)",
     MetricType::Counter, [](const TritonStatus& s) { return s.signals.compute_seconds; }},
    {"infergate_backend_inference_success_total",
     "Successful inference requests, as the backend's Triton counts them "
     "(nv_inference_request_success)",
     MetricType::Counter, [](const TritonStatus& s) { return s.signals.success_requests; }},
    {"infergate_backend_inference_failure_total",
     "Failed inference requests, as the backend's Triton counts them "
     "(nv_inference_request_failure)",
     MetricType::Counter, [](const TritonStatus& s) { return s.signals.failure_requests; }},
    {"infergate_backend_gpu_utilization",
     "Mean utilization of the backend's GPUs, 0 to 1 (nv_gpu_utilization)", MetricType::Gauge,
     [](const TritonStatus& s) { return s.signals.gpu_utilization; }},
    {"infergate_backend_gpu_memory_used_bytes",
     "GPU memory in use on the backend, all GPUs (nv_gpu_memory_used_bytes)", MetricType::Gauge,
     [](const TritonStatus& s) { return s.signals.gpu_memory_used_bytes; }},
    {"infergate_backend_gpu_memory_total_bytes",
     "GPU memory on the backend, all GPUs (nv_gpu_memory_total_bytes)", MetricType::Gauge,
     [](const TritonStatus& s) { return s.signals.gpu_memory_total_bytes; }},
    {"infergate_backend_queue_seconds_per_request",
     "Mean time in the backend's Triton queues of the requests that succeeded between its "
     "last two scrapes",
     MetricType::Gauge, [](const TritonStatus& s) { return s.queue_seconds_per_request; }},
};

// A fleet-wide value over the fresh backends that report the signal: their sum, or
// their mean; absent when none does.
std::optional<double> over_fleet(const health::TritonSnapshot& snapshot,
                                 std::optional<double> health::TritonSignals::*signal, bool mean) {
  double sum = 0;
  int count = 0;
  for (const TritonStatus& s : snapshot) {
    const std::optional<double>& v = s.signals.*signal;
    if (!s.fresh || !v) continue;
    sum += *v;
    ++count;
  }
  if (count == 0) return std::nullopt;
  return mean ? sum / count : sum;
}

// Per model, summed over the backends with fresh metrics: what the model's requests
// wait inside Triton (for an autoscaler, with the gateway's own queue wait).
std::vector<MetricFamily> per_model(const health::TritonSnapshot& snapshot) {
  std::map<std::string, health::TritonModelSignals> models;
  for (const TritonStatus& s : snapshot) {
    if (!s.fresh) continue;
    for (const auto& [model, m] : s.signals.models) {
      health::TritonModelSignals& sum = models[model];
      sum.pending_requests += m.pending_requests;
      sum.queue_seconds += m.queue_seconds;
      sum.requests += m.requests;
    }
  }
  std::vector<MetricFamily> out;
  if (models.empty()) return out;
  MetricFamily pending{"infergate_model_backend_pending_requests",
                       "Requests of the model waiting inside the backends' Tritons "
                       "(nv_inference_pending_request_count), over backends with fresh metrics",
                       MetricType::Gauge,
                       {}};
  MetricFamily queue{"infergate_model_backend_queue_seconds_total",
                     "Time the model's requests spent in the backends' Triton queues "
                     "(nv_inference_queue_duration_us), over backends with fresh metrics; "
                     "divided by the rate of infergate_model_backend_requests_total: the "
                     "queue time per request",
                     MetricType::Counter,
                     {}};
  MetricFamily requests{"infergate_model_backend_requests_total",
                        "The model's requests as the backends' Tritons count them (success "
                        "and failure; per request, not per batch execution), over backends "
                        "with fresh metrics",
                        MetricType::Counter,
                        {}};
  for (const auto& [model, m] : models) {
    pending.metric.push_back(sample(MetricType::Gauge, m.pending_requests, {{"model", model}}));
    queue.metric.push_back(sample(MetricType::Counter, m.queue_seconds, {{"model", model}}));
    requests.metric.push_back(sample(MetricType::Counter, m.requests, {{"model", model}}));
  }
  out.push_back(std::move(pending));
  out.push_back(std::move(queue));
  out.push_back(std::move(requests));
  return out;
}

}  // namespace

std::vector<MetricFamily> triton_families(const health::TritonSnapshot& snapshot) {
  std::vector<MetricFamily> out;
  if (snapshot.empty()) return out;
  for (const PerBackend& spec : kPerBackend) {
    MetricFamily f{spec.name, spec.help, spec.type, {}};
    for (const TritonStatus& s : snapshot) {
      const std::optional<double> v = spec.value(s);
      if (s.fresh && v) f.metric.push_back(sample(spec.type, *v, {{"backend", s.backend}}));
    }
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
  MetricFamily fresh{"infergate_backend_metrics_fresh",
                     "1 while the backend's Triton metrics (metrics_url) were scraped "
                     "successfully within the last 3 intervals, else 0 (its values are "
                     "then left out)",
                     MetricType::Gauge,
                     {}};
  for (const TritonStatus& s : snapshot) {
    fresh.metric.push_back(sample(MetricType::Gauge, s.fresh ? 1 : 0, {{"backend", s.backend}}));
  }
  out.push_back(std::move(fresh));
  using S = health::TritonSignals;
  const struct {
    const char* name;
    const char* help;
    std::optional<double> S::*signal;
    bool mean;
  } kFleet[] = {
      {"infergate_fleet_pending_requests",
       "Requests waiting inside the backends' Tritons, over backends with fresh metrics",
       &S::pending_requests, false},
      {"infergate_fleet_gpu_memory_used_bytes",
       "GPU memory in use, over backends with fresh metrics", &S::gpu_memory_used_bytes, false},
      {"infergate_fleet_gpu_memory_total_bytes", "GPU memory, over backends with fresh metrics",
       &S::gpu_memory_total_bytes, false},
      {"infergate_fleet_gpu_utilization",
       "Mean of the backends' GPU utilization (0 to 1), over backends with fresh metrics",
       &S::gpu_utilization, true},
  };
  for (const auto& spec : kFleet) {
    if (auto v = over_fleet(snapshot, spec.signal, spec.mean)) {
      out.push_back(MetricFamily{
          spec.name, spec.help, MetricType::Gauge, {sample(MetricType::Gauge, *v, {})}});
    }
  }
  for (MetricFamily& f : per_model(snapshot)) out.push_back(std::move(f));
  return out;
}

}  // namespace infergate::gateway
