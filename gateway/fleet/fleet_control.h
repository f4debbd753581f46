// The control plane's hold on the fleet: the health monitor and its gRPC channels, the
// fan-out client, the sequence affinity table, and where each backend is. Publishes
// every new fleet snapshot (with the backends' addresses) to the workers. Control
// thread, except what WorkerShared hands to workers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "gateway/fleet/cluster.h"
#include "gateway/fleet/fanout.h"
#include "gateway/options.h"
#include "gateway/stream/admission_gate.h"
#include "gateway/worker.h"
#include "health/backend_channels.h"
#include "health/health_monitor.h"
#include "health/metrics_scraper.h"
#include "routing/affinity.h"

namespace infergate::gateway {

class FleetControl {
 public:
  FleetControl(boost::asio::io_context& control, const config::Config& config);
  ~FleetControl();

  // What workers share with the control plane.
  WorkerShared worker_shared();
  // Called (on the control thread) when a worker fails to connect to a backend.
  void on_connect_failure(std::function<void()> hook) { connect_failure_hook_ = std::move(hook); }
  // The workers that receive fleet snapshots. Before start().
  void attach(std::vector<Worker*> workers) { workers_ = std::move(workers); }

  // Adds the configured backends and starts probing.
  void start(const config::Config& config);
  // A reloaded config: backends added, drained or re-weighted; health options applied.
  void apply(const config::Config& config);
  void stop();

  std::shared_ptr<const routing::Fleet> fleet() const { return monitor_->fleet(); }
  const routing::AffinityTable& affinity() const { return *affinity_; }
  const AdmissionGate& admission() const { return *admission_; }
  // The backends' own Triton metrics (those with a metrics_url), in name order: the last
  // good scrape's signals, whether they are fresh, and the last error. Any thread.
  health::TritonSnapshot triton_signals() const { return scraper_->snapshot(); }
  // With cluster.redis: how this replica shares the limits now. Any thread.
  std::optional<ClusterLimits::Snapshot> cluster() const;

 private:
  void publish(std::shared_ptr<const routing::Fleet> fleet);
  // cluster.redis: starts, reconfigures or ends the sharing of the limits.
  void apply_cluster(const config::Config& config);
  void on_membership(std::uint32_t id, const health::BackendSpec& spec, bool added);
  // Takes the config's per-backend compression and TLS and applies them to the known
  // targets (new connections use them; open ones keep what they began with).
  void set_backend_settings(const config::Config& config);
  // A backend's TLS as its target and its probe channel see it.
  struct BackendTls {
    std::shared_ptr<const TlsContext> context;
    std::string name;   // its certificate's name: server_name, else the address's host
    std::string error;  // the files did not load
    health::ChannelTls channel;
  };
  void apply_tls(BackendTarget& target, const std::string& address) const;

  boost::asio::io_context& control_;
  std::shared_ptr<health::BackendChannels> channels_;
  std::shared_ptr<FanOut> fanout_;
  std::shared_ptr<routing::AffinityTable> affinity_;
  std::shared_ptr<AdmissionGate> admission_;
  std::unique_ptr<ClusterLimits> cluster_;  // with cluster.redis; control thread
  std::atomic<const ClusterLimits*> cluster_view_{nullptr};
  std::shared_ptr<std::atomic<std::int64_t>> parked_;
  std::shared_ptr<boost::asio::thread_pool> compression_pool_;
  std::shared_ptr<BufferBudget> buffer_budget_;
  std::unique_ptr<health::MetricsScraper> scraper_;  // before monitor_, which publishes to it
  std::unique_ptr<health::HealthMonitor> monitor_;
  std::shared_ptr<const TargetTable> targets_;
  // Per backend name: how requests to it are compressed (from the config).
  std::unordered_map<std::string, std::pair<Encoding, std::uint64_t>> compression_;
  std::unordered_map<std::string, BackendTls> tls_;  // by backend name
  std::vector<Worker*> workers_;
  std::function<void()> connect_failure_hook_;
};

health::HealthOptions health_options(const config::Config& config);
RoutingOptions routing_options(const config::Config& config,
                               std::shared_ptr<const auth::Authenticator> auth);
routing::AdmissionLimits admission_limits(const config::Config& config);
std::vector<health::BackendSpec> backend_specs(const config::Config& config);
health::ScrapeOptions scrape_options(const config::Config& config);
// The backends that have a metrics_url, by name.
std::map<std::string, health::HttpEndpoint> metrics_endpoints(const config::Config& config);

}  // namespace infergate::gateway
