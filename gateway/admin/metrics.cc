#include "gateway/admin/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <set>

#include "gateway/stats.h"
#include "gateway/stream/admission_gate.h"
#include "gateway/version.h"
#include "gateway/worker.h"

namespace infergate::gateway {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric counter(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

ClientMetric gauge(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

// A histogram sample from non-cumulative bucket counts (the last one is +Inf).
template <typename Counts>
ClientMetric histogram(std::vector<ClientMetric::Label> labels, std::uint64_t count,
                       double sum_seconds, const Counts& buckets,
                       const std::array<double, 17>& bounds) {
  ClientMetric h;
  h.label = std::move(labels);
  h.histogram.sample_count = count;
  h.histogram.sample_sum = sum_seconds;
  std::uint64_t cumulative = 0;
  for (size_t b = 0; b < bounds.size(); ++b) {
    cumulative += buckets[b];
    h.histogram.bucket.push_back({cumulative, bounds[b]});
  }
  h.histogram.bucket.push_back({count, std::numeric_limits<double>::infinity()});
  return h;
}

// A backend that drains while another of the same name serves (its address changed: a
// reload, or discovery following a host name to a new IP) is left out of the per-backend
// series, so that no two series carry the same labels.
bool shadowed(const routing::Fleet& fleet, const routing::BackendInfo& b) {
  if (b.state != routing::BackendState::kDraining) return false;
  for (const routing::BackendInfo& other : fleet.backends()) {
    if (&other != &b && other.name == b.name && other.state != routing::BackendState::kDraining) {
      return true;
    }
  }
  return false;
}

// Sums the workers' series for each (method, code) that has seen a request.
class DataPlaneCollector : public prometheus::Collectable {
 public:
  explicit DataPlaneCollector(std::vector<const Worker*> workers) : workers_(std::move(workers)) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    collect_requests(out);
    collect_totals(out);
    return out;
  }

  // The models with per-model series on some worker (routing.models from the start,
  // others once the fleet has listed them), less "other". Any thread.
  std::vector<std::string> expected_models() const {
    std::set<std::string> names;
    for (const Worker* w : workers_) {
      for (const WorkerStats::ModelSeries& m : w->stats().models()) {
        const std::string* name = m.name.load(std::memory_order_acquire);
        if (name != nullptr && *name != "other") names.insert(*name);
      }
    }
    return {names.begin(), names.end()};
  }

 private:
  void collect_requests(std::vector<MetricFamily>& out) const {
    MetricFamily requests{"infergate_requests_total",
                          "RPCs finished by the gateway, by method and gRPC status code",
                          MetricType::Counter,
                          {}};
    MetricFamily latency{"infergate_request_duration_seconds",
                         "Time from a request's headers to the end of its response, as seen "
                         "by the gateway",
                         MetricType::Histogram,
                         {}};
    for (int m = 0; m < kMethodCount; ++m) {
      for (int c = 0; c < kGrpcCodeCount; ++c) {
        std::uint64_t count = 0;
        std::uint64_t sum_ns = 0;
        std::array<std::uint64_t, WorkerStats::kBuckets> buckets{};
        for (const Worker* w : workers_) {
          const WorkerStats::Series& s =
              w->stats().series(static_cast<Method>(m), static_cast<GrpcCode>(c));
          count += s.count.get();
          sum_ns += s.sum_ns.get();
          for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += s.buckets[b].get();
        }
        if (count == 0) continue;
        std::vector<ClientMetric::Label> labels = {
            {"code", std::string(grpc_code_name(static_cast<GrpcCode>(c)))},
            {"method", std::string(method_info(static_cast<Method>(m)).name)}};
        requests.metric.push_back(counter(static_cast<double>(count), labels));
        latency.metric.push_back(histogram(labels, count, static_cast<double>(sum_ns) * 1e-9,
                                           buckets, WorkerStats::kLatencyBounds));
      }
    }
    out.push_back(std::move(requests));
    out.push_back(std::move(latency));
    collect_models(out);
    collect_overhead(out);
  }

  // Summed over workers; each worker has its own slots, so labels are merged by name.
  void collect_models(std::vector<MetricFamily>& out) const {
    struct Sum {
      std::uint64_t count = 0;
      std::uint64_t sum_ns = 0;
      std::array<std::uint64_t, WorkerStats::kBuckets> buckets{};
      void add(const WorkerStats::Series& series) {
        count += series.count.get();
        sum_ns += series.sum_ns.get();
        for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += series.buckets[b].get();
      }
    };
    struct Load {
      std::int64_t waiting = 0;
      std::int64_t inflight = 0;
      Sum waited;
    };
    std::map<std::string, Sum> by_model;
    std::map<std::string, Load> load;
    for (const Worker* w : workers_) {
      for (const WorkerStats::ModelSeries& m : w->stats().models()) {
        const std::string* name = m.name.load(std::memory_order_acquire);
        if (name == nullptr) continue;
        by_model[*name].add(m.series);
        Load& l = load[*name];
        l.waiting += m.waiting.load(std::memory_order_relaxed);
        l.inflight += m.inflight.load(std::memory_order_relaxed);
        l.waited.add(m.queue_wait);
      }
    }
    MetricFamily waiting{"infergate_model_waiting_requests",
                         "Requests of the model waiting in the gateway (admission queue, a "
                         "backend slot): with in-flight requests, what an autoscaler scales on",
                         MetricType::Gauge,
                         {}};
    MetricFamily inflight{"infergate_model_inflight_requests",
                          "Requests (and stream messages) of the model on a backend now",
                          MetricType::Gauge,
                          {}};
    MetricFamily waited{"infergate_model_queue_wait_seconds",
                        "Time each request of the model waited in the gateway before it went to "
                        "a backend",
                        MetricType::Histogram,
                        {}};
    for (const auto& [model, l] : load) {
      // Read from several workers a moment apart: a sum can dip below zero briefly.
      waiting.metric.push_back(
          gauge(static_cast<double>(std::max<std::int64_t>(0, l.waiting)), {{"model", model}}));
      inflight.metric.push_back(
          gauge(static_cast<double>(std::max<std::int64_t>(0, l.inflight)), {{"model", model}}));
      waited.metric.push_back(histogram({{"model", model}}, l.waited.count,
                                        static_cast<double>(l.waited.sum_ns) * 1e-9,
                                        l.waited.buckets, WorkerStats::kLatencyBounds));
    }
    out.push_back(std::move(waiting));
    out.push_back(std::move(inflight));
    out.push_back(std::move(waited));
    MetricFamily f{"infergate_model_request_duration_seconds",
                   "End-to-end time of inference RPCs (ModelInfer, ModelStreamInfer) by model, "
                   "as seen by the gateway; models the fleet does not know are 'other'",
                   MetricType::Histogram,
                   {}};
    for (const auto& [model, s] : by_model) {
      f.metric.push_back(histogram({{"model", model}}, s.count,
                                   static_cast<double>(s.sum_ns) * 1e-9, s.buckets,
                                   WorkerStats::kLatencyBounds));
    }
    out.push_back(std::move(f));
  }

  void collect_overhead(std::vector<MetricFamily>& out) const {
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    std::array<std::uint64_t, WorkerStats::kBuckets> buckets{};
    for (const Worker* w : workers_) {
      const WorkerStats::Series& s = w->stats().overhead();
      count += s.count.get();
      sum_ns += s.sum_ns.get();
      for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += s.buckets[b].get();
    }
    out.push_back(MetricFamily{
        "infergate_gateway_overhead_seconds",
        "Time a successful ModelInfer spent in the gateway itself: end to end, less the "
        "backends' time and the admission queue wait",
        MetricType::Histogram,
        {histogram({}, count, static_cast<double>(sum_ns) * 1e-9, buckets,
                   WorkerStats::kOverheadBounds)}});
  }

  void collect_totals(std::vector<MetricFamily>& out) const {
    double buffered = 0;
    for (const Worker* w : workers_) buffered += static_cast<double>(w->blocks().bytes_in_use());
    double streams = 0, connections = 0, accepted = 0, upstream = 0, failures = 0, req_bytes = 0,
           resp_bytes = 0, retries = 0;
    for (const Worker* w : workers_) {
      streams += static_cast<double>(w->active_streams());
      connections += static_cast<double>(w->downstream_connections());
      accepted += static_cast<double>(w->stats().downstream_connections_total.get());
      upstream += static_cast<double>(w->stats().upstream_connections_total.get());
      failures += static_cast<double>(w->stats().upstream_connect_failures_total.get());
      req_bytes += static_cast<double>(w->stats().request_bytes_total.get());
      resp_bytes += static_cast<double>(w->stats().response_bytes_total.get());
      retries += static_cast<double>(w->stats().retries_total.get());
    }
    auto one = [&](const char* name, const char* help, MetricType type, ClientMetric m) {
      out.push_back(MetricFamily{name, help, type, {std::move(m)}});
    };
    one("infergate_active_streams", "RPCs in flight through the gateway", MetricType::Gauge,
        gauge(streams));
    one("infergate_client_connections", "Open client HTTP/2 connections", MetricType::Gauge,
        gauge(connections));
    one("infergate_client_connections_total", "Client connections accepted", MetricType::Counter,
        counter(accepted));
    one("infergate_backend_connections_total", "HTTP/2 connections opened to backends",
        MetricType::Counter, counter(upstream));
    one("infergate_backend_connect_failures_total", "Failed attempts to connect to a backend",
        MetricType::Counter, counter(failures));
    one("infergate_request_body_bytes_total", "Request message bytes forwarded to backends",
        MetricType::Counter, counter(req_bytes));
    one("infergate_response_body_bytes_total", "Response message bytes forwarded to clients",
        MetricType::Counter, counter(resp_bytes));
    one("infergate_retries_total", "Requests tried again on another backend", MetricType::Counter,
        counter(retries));
    one("infergate_buffered_bytes",
        "Memory held for message bytes in transit (pooled blocks in use)", MetricType::Gauge,
        gauge(buffered));
    double reserved = 0;
    if (!workers_.empty() && workers_.front()->blocks().budget() != nullptr) {
      reserved = static_cast<double>(workers_.front()->blocks().budget()->reserved());
    }
    one("infergate_buffer_reserved_bytes",
        "limits.max_buffered_bytes set aside for large messages' widened stream windows "
        "(frontend.max_stream_window) until their bytes arrive",
        MetricType::Gauge, gauge(reserved));
    one("infergate_build_info", "The running infergate's version", MetricType::Gauge,
        gauge(1, {{"version", kVersion}}));
    labelled(
        out, "infergate_client_protocol_errors_total",
        "Client connections closed for abusing HTTP/2 or overstaying a bound, by reason", "reason",
        kProtocolErrorNames, [](const WorkerStats& s) -> const auto& { return s.protocol_errors; });
    labelled(
        out, "infergate_auth_failures_total",
        "Requests refused UNAUTHENTICATED before reaching a backend, by reason", "reason",
        kAuthFailureNames, [](const WorkerStats& s) -> const auto& { return s.auth_failures; });
    labelled(
        out, "infergate_tls_handshake_failures_total",
        "Client connections whose TLS handshake failed, by reason", "reason", kTlsFailureNames,
        [](const WorkerStats& s) -> const auto& { return s.tls_failures; });
    labelled(
        out, "infergate_stream_timeouts_total",
        "Streams the gateway ended on a deadline: the client's grpc-timeout, "
        "frontend.stream_idle_timeout, upstream.stream_idle_timeout, "
        "limits.backend_wait_timeout (and limits.queue_timeout with "
        "routing.wait_for_backend)",
        "reason", kExpiryNames, [](const WorkerStats& s) -> const auto& { return s.expiries; });
    labelled(
        out, "infergate_requests_over_limit_total",
        "Requests refused with RESOURCE_EXHAUSTED for passing a byte cap", "limit", kByteCapNames,
        [](const WorkerStats& s) -> const auto& { return s.over_limit; });
  }

  // One counter family with a label per slot of a per-worker array, summed over workers.
  template <size_t N, typename Get>
  void labelled(std::vector<MetricFamily>& out, const char* name, const char* help,
                const char* label, const std::array<std::string_view, N>& values, Get get) const {
    MetricFamily f{name, help, MetricType::Counter, {}};
    for (size_t i = 0; i < N; ++i) {
      double total = 0;
      for (const Worker* w : workers_) total += static_cast<double>(get(w->stats())[i].get());
      f.metric.push_back(counter(total, {{label, std::string(values[i])}}));
    }
    out.push_back(std::move(f));
  }

  std::vector<const Worker*> workers_;
};

// What each backend answered and how fast, its failures, retries and ejections.
std::vector<MetricFamily> backend_outcomes(const routing::Fleet& fleet) {
  MetricFamily answers{"infergate_backend_requests_total",
                       "Attempts the backend answered, by gRPC status code",
                       MetricType::Counter,
                       {}};
  MetricFamily latency{"infergate_backend_request_duration_seconds",
                       "Time from a stream's start on the backend to the end of its answer",
                       MetricType::Histogram,
                       {}};
  MetricFamily transport{"infergate_backend_transport_failures_total",
                         "Attempts that ended without an answer (reset, connection lost, "
                         "refused stream)",
                         MetricType::Counter,
                         {}};
  MetricFamily retries{"infergate_backend_retries_total",
                       "Requests retried on another backend after failing on this one",
                       MetricType::Counter,
                       {}};
  MetricFamily ejections{"infergate_backend_ejections_total",
                         "Times passive outlier detection ejected the backend",
                         MetricType::Counter,
                         {}};
  for (const routing::BackendInfo& b : fleet.backends()) {
    if (shadowed(fleet, b)) continue;
    const routing::BackendStats& s = b.runtime->stats;
    std::uint64_t count = 0;
    for (size_t c = 0; c < s.answers.size(); ++c) {
      const std::uint64_t n = s.answers[c].load(std::memory_order_relaxed);
      count += n;
      if (n == 0) continue;
      answers.metric.push_back(counter(
          static_cast<double>(n),
          {{"backend", b.name}, {"code", std::string(grpc_code_name(static_cast<GrpcCode>(c)))}}));
    }
    std::array<std::uint64_t, routing::BackendStats::kBuckets> buckets{};
    for (size_t i = 0; i < buckets.size(); ++i) {
      buckets[i] = s.latency_buckets[i].load(std::memory_order_relaxed);
    }
    latency.metric.push_back(
        histogram({{"backend", b.name}}, count,
                  static_cast<double>(s.latency_sum_ns.load(std::memory_order_relaxed)) * 1e-9,
                  buckets, routing::kLatencyBounds));
    auto load = [](const std::atomic<std::uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    transport.metric.push_back(counter(load(s.transport_failures), {{"backend", b.name}}));
    retries.metric.push_back(counter(load(s.retries), {{"backend", b.name}}));
    ejections.metric.push_back(counter(load(s.ejections), {{"backend", b.name}}));
  }
  std::vector<MetricFamily> out;
  out.push_back(std::move(answers));
  out.push_back(std::move(latency));
  out.push_back(std::move(transport));
  out.push_back(std::move(retries));
  out.push_back(std::move(ejections));
  return out;
}

// For each model the fleet has listed, and each in `expected` (routing.models): how many
// backends take requests for it now.
MetricFamily model_backends(const routing::Fleet& fleet, const std::vector<std::string>& expected) {
  std::map<std::string, size_t> serving;
  for (const std::string& model : expected) serving[model] += 0;
  for (const routing::BackendInfo& b : fleet.backends()) {
    for (const auto& [model, versions] : b.models) serving[model] += 0;
    for (const routing::ModelIndexEntry& e : b.index) serving[e.name] += 0;
  }
  for (auto& [model, n] : serving) n = fleet.candidates(model, "").size();
  MetricFamily f{"infergate_model_backends",
                 "Healthy backends on which the model is ready (0: listed, but nowhere ready)",
                 MetricType::Gauge,
                 {}};
  for (const auto& [model, n] : serving) {
    f.metric.push_back(gauge(static_cast<double>(n), {{"model", model}}));
  }
  return f;
}

// Per-backend state from the latest fleet snapshot.
std::vector<MetricFamily> fleet_families(const routing::Fleet& fleet,
                                         const std::vector<std::string>& expected) {
  MetricFamily state{"infergate_backend_state",
                     "1 for the backend's current health state, 0 for the others",
                     MetricType::Gauge,
                     {}};
  MetricFamily outstanding{"infergate_backend_outstanding_requests",
                           "Requests the gateway has in flight on the backend",
                           MetricType::Gauge,
                           {}};
  MetricFamily weight{"infergate_backend_effective_weight",
                      "The backend's weight, times its slow-start ramp",
                      MetricType::Gauge,
                      {}};
  // Per-backend byte counters: on the wire (after compression), and compression's work.
  struct CounterSpec {
    const char* name;
    const char* help;
    std::atomic<std::uint64_t> routing::BackendRuntime::*field;
    double scale;
  };
  static const CounterSpec kCounters[] = {
      {"infergate_backend_request_bytes_total",
       "Request message bytes sent to the backend, as sent (after compression)",
       &routing::BackendRuntime::request_wire_bytes, 1},
      {"infergate_backend_response_bytes_total",
       "Response message bytes received from the backend, as received",
       &routing::BackendRuntime::response_wire_bytes, 1},
      {"infergate_backend_compressed_requests_total",
       "Requests the gateway compressed for the backend (backends[].compression)",
       &routing::BackendRuntime::compressed_requests, 1},
      {"infergate_backend_compression_input_bytes_total",
       "Bytes of the compressed requests before compression",
       &routing::BackendRuntime::compression_in_bytes, 1},
      {"infergate_backend_compression_output_bytes_total",
       "Bytes of the compressed requests after compression (what was sent)",
       &routing::BackendRuntime::compression_out_bytes, 1},
      {"infergate_backend_compression_cpu_seconds_total",
       "Time spent compressing requests for the backend (one pool thread each)",
       &routing::BackendRuntime::compression_ns, 1e-9},
  };
  std::vector<MetricFamily> counters;
  for (const CounterSpec& c : kCounters) {
    counters.push_back(MetricFamily{c.name, c.help, MetricType::Counter, {}});
  }
  static constexpr routing::BackendState kStates[] = {
      routing::BackendState::kUnknown, routing::BackendState::kHealthy,
      routing::BackendState::kUnhealthy, routing::BackendState::kEjected,
      routing::BackendState::kDraining};
  for (const routing::BackendInfo& b : fleet.backends()) {
    if (shadowed(fleet, b)) continue;
    for (routing::BackendState s : kStates) {
      state.metric.push_back(
          gauge(b.state == s ? 1 : 0,
                {{"backend", b.name}, {"state", std::string(routing::backend_state_name(s))}}));
    }
    outstanding.metric.push_back(
        gauge(static_cast<double>(b.runtime->outstanding.load(std::memory_order_relaxed)),
              {{"backend", b.name}}));
    weight.metric.push_back(gauge(b.effective_weight(), {{"backend", b.name}}));
    for (size_t i = 0; i < std::size(kCounters); ++i) {
      const auto& value = (*b.runtime).*(kCounters[i].field);
      counters[i].metric.push_back(
          counter(static_cast<double>(value.load(std::memory_order_relaxed)) * kCounters[i].scale,
                  {{"backend", b.name}}));
    }
  }
  std::vector<MetricFamily> out;
  out.push_back(std::move(state));
  out.push_back(std::move(outstanding));
  out.push_back(std::move(weight));
  for (MetricFamily& f : backend_outcomes(fleet)) out.push_back(std::move(f));
  out.push_back(model_backends(fleet, expected));
  for (MetricFamily& f : counters) out.push_back(std::move(f));
  out.push_back(MetricFamily{"infergate_healthy_backends",
                             "Backends taking new requests",
                             MetricType::Gauge,
                             {gauge(static_cast<double>(fleet.healthy_count()))}});
  return out;
}

// Admission control: what is held, what waits, what was refused and how long waits are.
std::vector<MetricFamily> admission_families(const AdmissionGate::Stats& s) {
  std::vector<MetricFamily> out;
  auto one = [&](const char* name, const char* help, MetricType type, ClientMetric m) {
    out.push_back(MetricFamily{name, help, type, {std::move(m)}});
  };
  one("infergate_admission_active_jobs",
      "Jobs with requests in flight or one within limits.job_idle_timeout", MetricType::Gauge,
      gauge(static_cast<double>(s.active_jobs)));
  one("infergate_admission_inflight_requests", "Admitted requests not yet finished",
      MetricType::Gauge, gauge(s.inflight));
  one("infergate_admission_queued_requests", "Requests waiting in the admission queue",
      MetricType::Gauge, gauge(static_cast<double>(s.queued)));
  one("infergate_admission_bytes_in_flight", "Request bytes of admitted, unfinished requests",
      MetricType::Gauge, gauge(static_cast<double>(s.bytes_in_flight)));
  one("infergate_admission_admitted_total", "Requests admitted (at once or after waiting)",
      MetricType::Counter, counter(static_cast<double>(s.admitted_total)));
  MetricFamily rejected{"infergate_admission_rejections_total",
                        "Requests refused by admission control, by the limit that refused them",
                        MetricType::Counter,
                        {}};
  for (size_t i = 1; i < s.rejected.size(); ++i) {
    const auto limit = static_cast<routing::Limit>(i);
    rejected.metric.push_back(counter(static_cast<double>(s.rejected[i]),
                                      {{"limit", std::string(routing::limit_name(limit))}}));
  }
  out.push_back(std::move(rejected));
  ClientMetric h;
  h.histogram.sample_count = s.wait_count;
  h.histogram.sample_sum = s.wait_sum_s;
  std::uint64_t cumulative = 0;
  for (size_t b = 0; b < AdmissionGate::kWaitBounds.size(); ++b) {
    cumulative += s.wait_buckets[b];
    h.histogram.bucket.push_back({cumulative, AdmissionGate::kWaitBounds[b]});
  }
  h.histogram.bucket.push_back({s.wait_count, std::numeric_limits<double>::infinity()});
  one("infergate_admission_queue_wait_seconds",
      "Time admitted requests waited in the admission queue (0 for those admitted at once)",
      MetricType::Histogram, std::move(h));
  return out;
}

}  // namespace

std::vector<MetricFamily> admin_families(size_t open, std::uint64_t refused,
                                         std::uint64_t displaced) {
  std::vector<MetricFamily> out;
  out.push_back(MetricFamily{"infergate_admin_connections",
                             "Open connections to the admin port",
                             MetricType::Gauge,
                             {gauge(static_cast<double>(open))}});
  out.push_back(MetricFamily{
      "infergate_admin_connections_limited_total",
      "Admin connections at admin.max_connections: refused (every held one was busy) or "
      "displaced (an idle one closed to make room)",
      MetricType::Counter,
      {counter(static_cast<double>(refused), {{"action", "refused"}}),
       counter(static_cast<double>(displaced), {{"action", "displaced"}})}});
  return out;
}

std::vector<MetricFamily> cluster_families(const ClusterGauges& cluster) {
  std::vector<MetricFamily> out;
  out.push_back(MetricFamily{"infergate_cluster_connected",
                             "1 while Redis answers (the limits are shared across replicas); 0 "
                             "while each replica applies an even split of them",
                             MetricType::Gauge,
                             {gauge(cluster.connected ? 1 : 0)}});
  out.push_back(MetricFamily{"infergate_cluster_replicas",
                             "Gateway replicas sharing the limits, as last seen in Redis (or "
                             "assumed: cluster.expected_replicas)",
                             MetricType::Gauge,
                             {gauge(static_cast<double>(cluster.replicas))}});
  MetricFamily shares{"infergate_cluster_share",
                      "This replica's share of a shared limit (requests, bytes, bytes per "
                      "second)",
                      MetricType::Gauge,
                      {}};
  for (const auto& [limit, value] : cluster.shares) {
    shares.metric.push_back(gauge(value, {{"limit", limit}}));
  }
  out.push_back(std::move(shares));
  return out;
}

MetricsExporter::MetricsExporter(std::vector<const Worker*> workers, FleetSource fleet,
                                 const AdmissionGate* admission, ExtraFamilies extra)
    : registry_(std::make_shared<prometheus::Registry>()),
      data_plane_(std::make_shared<DataPlaneCollector>(std::move(workers))),
      fleet_(std::move(fleet)),
      admission_(admission),
      extra_(std::move(extra)) {}

MetricsExporter::~MetricsExporter() = default;

std::string MetricsExporter::render() const {
  std::vector<MetricFamily> families = data_plane_->Collect();
  if (fleet_) {
    if (auto fleet = fleet_()) {
      for (MetricFamily& f : fleet_families(
               *fleet, static_cast<const DataPlaneCollector&>(*data_plane_).expected_models())) {
        families.push_back(std::move(f));
      }
    }
  }
  if (admission_ != nullptr) {
    for (MetricFamily& f : admission_families(admission_->stats()))
      families.push_back(std::move(f));
  }
  if (extra_) {
    for (MetricFamily& f : extra_()) families.push_back(std::move(f));
  }
  std::vector<MetricFamily> registered = registry_->Collect();
  families.insert(families.end(), std::make_move_iterator(registered.begin()),
                  std::make_move_iterator(registered.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace infergate::gateway
