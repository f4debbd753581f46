#include "benchmarks/sim/metrics_text.h"

#include <cinttypes>
#include <cstdio>
#include <functional>

namespace infergate::sim {
namespace {

constexpr std::uint64_t kGpuMemoryTotal = 80ull << 30;  // an 80 GiB GPU
constexpr std::uint64_t kGpuMemoryUsed = 4ull << 30;

// A label value with \, " and newline escaped.
std::string escaped(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? 'n' : c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += buf;
  out += '\n';
}

struct VersionMetric {
  const char* name;
  const char* type;
  const char* help;
  std::function<double(VersionState&, SteadyTime)> value;
};

std::uint64_t get(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); }

const std::vector<VersionMetric>& version_metrics() {
  static const auto* metrics = new std::vector<VersionMetric>{
      {"nv_inference_request_success", "counter",
       "Number of successful inference requests, all batch sizes",
       [](VersionState& v, SteadyTime) { return get(v.stats.success_count); }},
      {"nv_inference_count", "counter",
       "Number of inferences performed (does not include cached requests)",
       [](VersionState& v, SteadyTime) { return get(v.stats.inference_count); }},
      {"nv_inference_exec_count", "counter",
       "Number of model executions performed (does not include cached requests)",
       [](VersionState& v, SteadyTime) { return get(v.stats.execution_count); }},
      {"nv_inference_request_duration_us", "counter",
       "Cumulative inference request duration in microseconds (includes cached requests)",
       [](VersionState& v, SteadyTime) { return get(v.stats.success_ns) / 1000; }},
      {"nv_inference_queue_duration_us", "counter",
       "Cumulative inference queuing duration in microseconds (includes cached requests)",
       [](VersionState& v, SteadyTime) { return get(v.stats.queue_ns) / 1000; }},
      {"nv_inference_compute_infer_duration_us", "counter",
       "Cumulative compute inference duration in microseconds (does not include cached "
       "requests)",
       [](VersionState& v, SteadyTime) { return get(v.stats.compute_ns) / 1000; }},
      {"nv_inference_pending_request_count", "gauge",
       "Instantaneous number of pending requests awaiting execution per-model.",
       [](VersionState& v, SteadyTime now) { return v.load(now).queued; }},
  };
  return *metrics;
}

void render_versions(std::string& out, const ModelRegistry& registry, SteadyTime now) {
  for (const VersionMetric& m : version_metrics()) {
    header(out, m.name, m.type, m.help);
    for (const auto& model : registry.models()) {
      for (const auto& v : model->versions()) {
        sample(out, m.name,
               "model=\"" + escaped(model->name()) + "\",version=\"" + v->version() + "\"",
               m.value(*v, now));
      }
    }
  }
  header(out, "nv_inference_request_failure", "counter",
         "Number of failed inference requests, all batch sizes");
  for (const auto& model : registry.models()) {
    for (const auto& v : model->versions()) {
      for (int r = 0; r < kFailReasons; ++r) {
        sample(out, "nv_inference_request_failure",
               "model=\"" + escaped(model->name()) + "\",reason=\"" +
                   fail_reason_label(static_cast<FailReason>(r)) + "\",version=\"" + v->version() +
                   "\"",
               get(v->stats.fail_by_reason[r]));
      }
    }
  }
}

}  // namespace

std::string render_metrics(const SimOptions& options, const ModelRegistry& registry,
                           const InflightGauge& inflight, SteadyTime now) {
  std::string out;
  out.reserve(4096);
  render_versions(out, registry, now);
  int busy = 0;
  int instances = 0;
  for (const auto& model : registry.models()) {
    for (const auto& v : model->versions()) {
      VersionState::Load load = v->load(now);
      busy += load.busy;
      instances += load.instances;
    }
  }
  const double utilization = instances > 0 ? static_cast<double>(busy) / instances : 0.0;
  const std::string gpu = "gpu_uuid=\"GPU-infergate-sim-" + escaped(options.name) + "\"";
  header(out, "nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)");
  sample(out, "nv_gpu_utilization", gpu, utilization);
  header(out, "nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes");
  sample(out, "nv_gpu_memory_total_bytes", gpu, static_cast<double>(kGpuMemoryTotal));
  header(out, "nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes");
  sample(out, "nv_gpu_memory_used_bytes", gpu, static_cast<double>(kGpuMemoryUsed));
  header(out, "nv_gpu_power_usage", "gauge", "GPU power usage in watts");
  sample(out, "nv_gpu_power_usage", gpu, 60.0 + 240.0 * utilization);
  header(out, "infergate_sim_inflight_requests", "gauge",
         "Inference requests currently inside this simulator");
  sample(out, "infergate_sim_inflight_requests", "",
         static_cast<double>(inflight.current.load(std::memory_order_relaxed)));
  header(out, "infergate_sim_inflight_max", "gauge",
         "The most inference requests ever inside this simulator at once");
  sample(out, "infergate_sim_inflight_max", "",
         static_cast<double>(inflight.max.load(std::memory_order_relaxed)));
  return out;
}

}  // namespace infergate::sim
