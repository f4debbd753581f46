// /metrics: the data plane's per-worker statistics, summed when scraped, plus whatever
// the control plane registers. Rendering happens on the admin (control) thread.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "routing/fleet.h"

namespace infergate::gateway {

class Worker;
class AdmissionGate;

// The admin port's own connections: open, and those turned away or displaced at
// admin.max_connections.
std::vector<prometheus::MetricFamily> admin_families(size_t open, std::uint64_t refused,
                                                     std::uint64_t displaced);

// cluster.redis: whether Redis answers, the live replicas, and this replica's shares of
// the shared limits (by name: max_inflight, max_bytes_in_flight, link_bandwidth; only
// those configured).
struct ClusterGauges {
  bool connected = false;
  size_t replicas = 0;
  std::vector<std::pair<std::string, double>> shares;
};
std::vector<prometheus::MetricFamily> cluster_families(const ClusterGauges& cluster);

class MetricsExporter {
 public:
  using FleetSource = std::function<std::shared_ptr<const routing::Fleet>()>;

  using ExtraFamilies = std::function<std::vector<prometheus::MetricFamily>()>;

  MetricsExporter(std::vector<const Worker*> workers, FleetSource fleet,
                  const AdmissionGate* admission = nullptr, ExtraFamilies extra = {});
  ~MetricsExporter();

  // Control-plane metrics are registered here (gauges and counters off the hot path).
  prometheus::Registry& registry() { return *registry_; }

  // The Prometheus text exposition of everything. Control thread.
  std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> data_plane_;
  FleetSource fleet_;
  const AdmissionGate* admission_;
  ExtraFamilies extra_;
};

}  // namespace infergate::gateway
