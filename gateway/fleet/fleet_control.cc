#include "gateway/fleet/fleet_control.h"
#include "gateway/h2/tls.h"

#include <fstream>
#include <sstream>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "gateway/logging.h"
#include "health/grpc_probe_transport.h"

namespace infergate::gateway {

using tcp = boost::asio::ip::tcp;

health::HealthOptions health_options(const config::Config& config) {
  const config::HealthConfig& h = config.health;
  return health::HealthOptions{
      .interval = h.interval,
      .timeout = h.timeout,
      .unhealthy_threshold = static_cast<std::uint32_t>(h.unhealthy_threshold),
      .healthy_threshold = static_cast<std::uint32_t>(h.healthy_threshold),
      .inventory_interval = h.inventory_interval,
      .consecutive_failures = static_cast<std::uint32_t>(h.consecutive_failures),
      .ejection_base = h.ejection_base,
      .ejection_max = h.ejection_max,
      .max_ejected_percent = h.max_ejected_percent,
      .slow_start = h.slow_start,
  };
}

routing::AdmissionLimits admission_limits(const config::Config& config) {
  const config::LimitsConfig& l = config.limits;
  std::vector<routing::GroupLimits> groups;
  for (const config::GroupLimitsConfig& g : l.groups) {
    groups.push_back({.name = g.name,
                      .max_jobs = g.max_jobs,
                      .max_inflight = g.max_inflight,
                      .link_share = g.link_bandwidth_share});
  }
  return routing::AdmissionLimits{
      .max_jobs = l.max_jobs,
      .job_idle_timeout = l.job_idle_timeout,
      .max_inflight = l.max_inflight,
      .per_job_max_inflight = l.per_job_max_inflight,
      .max_bytes_in_flight = l.max_bytes_in_flight,
      .link_bytes_per_second = l.link_bandwidth,
      .link_burst_bytes = l.link_burst,
      .max_queue = l.max_queue,
      .queue_timeout = l.queue_timeout,
      .groups = groups,
      .max_job_table_bytes = l.max_job_table_bytes,
  };
}

RoutingOptions routing_options(const config::Config& config,
                               std::shared_ptr<const auth::Authenticator> auth) {
  return RoutingOptions{
      .policy = config.routing.policy,
      .latency_aware = config.routing.latency_aware,
      .sequence_hash = config.routing.sequence_placement == "hash",
      .retries = config.routing.retries,
      .retry_budget_percent = config.routing.retry_budget_percent,
      .retry_buffer_bytes = config.routing.retry_buffer_bytes,
      .consecutive_failures = static_cast<std::uint32_t>(config.health.consecutive_failures),
      .allow_repository_control = config.allow_repository_control,
      .job_header = config.limits.job_header,
      .auth = std::move(auth),
      .allow_unauthenticated_health = config.auth.allow_unauthenticated_health,
      .wait_for_backend = config.routing.wait_for_backend,
      .wait_for_backend_timeout = config.limits.queue_timeout,
      .models = config.routing.models,
  };
}

std::vector<health::BackendSpec> backend_specs(const config::Config& config) {
  std::vector<health::BackendSpec> specs;
  for (const config::BackendConfig& b : config.backends) {
    specs.push_back({.name = b.name,
                     .address = b.address.to_string(),
                     .weight = b.weight,
                     .max_inflight = b.max_inflight});
  }
  return specs;
}

health::ScrapeOptions scrape_options(const config::Config& config) {
  return health::ScrapeOptions{
      .interval = config.health.metrics_interval,
      .timeout = config.health.metrics_timeout,
  };
}

std::map<std::string, health::HttpEndpoint> metrics_endpoints(const config::Config& config) {
  std::map<std::string, health::HttpEndpoint> endpoints;
  for (const config::BackendConfig& b : config.backends) {
    if (!b.metrics_url) continue;
    // An https:// metrics URL trusts the backend's tls.ca, else the system's CAs.
    endpoints[b.name] = health::HttpEndpoint{.host = b.metrics_url->address.host,
                                             .port = b.metrics_url->address.port,
                                             .target = b.metrics_url->path,
                                             .tls = b.metrics_url->tls,
                                             .ca_file = b.tls ? b.tls->ca : std::string()};
  }
  return endpoints;
}

FleetControl::FleetControl(boost::asio::io_context& control, const config::Config& config)
    : control_(control),
      channels_(std::make_shared<health::BackendChannels>()),
      fanout_(std::make_shared<FanOut>(channels_)),
      affinity_(std::make_shared<routing::AffinityTable>(config.routing.sequence_idle_timeout,
                                                         config.limits.max_sequence_table_bytes)),
      admission_(
          std::make_shared<AdmissionGate>(control, admission_limits(config), config.limits.any())),
      parked_(std::make_shared<std::atomic<std::int64_t>>(0)),
      compression_pool_(std::make_shared<boost::asio::thread_pool>(2)),
      buffer_budget_(std::make_shared<BufferBudget>(config.limits.max_buffered_bytes)),
      targets_(std::make_shared<const TargetTable>()) {
  scraper_ = std::make_unique<health::MetricsScraper>(
      control_, scrape_options(config), [] { return std::chrono::steady_clock::now(); });
  monitor_ = std::make_unique<health::HealthMonitor>(
      control_, health_options(config), std::make_shared<health::GrpcProbeTransport>(channels_),
      [this](std::shared_ptr<const routing::Fleet> fleet) { publish(std::move(fleet)); },
      [this](std::uint32_t id, const health::BackendSpec& spec, bool added) {
        on_membership(id, spec, added);
      },
      affinity_, [] { return std::chrono::steady_clock::now(); });
  apply_cluster(config);
}

FleetControl::~FleetControl() { stop(); }

WorkerShared FleetControl::worker_shared() {
  return WorkerShared{
      .affinity = affinity_,
      .fanout = fanout_,
      // Workers may call these after the monitor is gone: they do nothing then.
      .report_outliers = monitor_->outlier_reporter(),
      .refresh_inventory = monitor_->inventory_refresher(),
      .admission = admission_,
      .parked = parked_,
      .wake_parked_elsewhere =
          [this](const Worker* from) {
            for (Worker* w : workers_) {
              if (w == from || w->parked_here() == 0) continue;
              boost::asio::post(w->io(), [w] { w->wake_one_parked(); });
              return;
            }
          },
      .compression = compression_pool_,
      .buffer_budget = buffer_budget_,
      .connect_failed =
          [this] {
            boost::asio::post(control_, [this] {
              if (connect_failure_hook_) connect_failure_hook_();
            });
          },
  };
}

namespace {

std::string read_pem(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The host of "host:port" or "[v6]:port".
std::string host_of(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

}  // namespace

void FleetControl::set_backend_settings(const config::Config& config) {
  compression_.clear();
  std::unordered_map<std::string, BackendTls> tls;
  for (const config::BackendConfig& b : config.backends) {
    compression_[b.name] = {parse_encoding(b.compression == "none" ? "" : b.compression),
                            b.compression_min_bytes};
    if (!b.tls) continue;
    BackendTls& t = tls[b.name];
    std::string error;
    t.context =
        TlsContext::load_client({.ca = b.tls->ca, .cert = b.tls->cert, .key = b.tls->key}, &error);
    if (!t.context) {
      t.error = "backends[].tls: " + error;
      gateway_log().error("backend_tls_unusable backend={} error=\"{}\"", b.name, error);
    }
    t.name = b.tls->server_name;
    t.channel = health::ChannelTls{.root_certs = read_pem(b.tls->ca),
                                   .cert_chain = read_pem(b.tls->cert),
                                   .private_key = read_pem(b.tls->key),
                                   .server_name = b.tls->server_name};
  }
  tls_ = std::move(tls);
  auto next = std::make_shared<TargetTable>(*targets_);
  for (auto& [id, target] : *next) {
    if (auto it = compression_.find(target.name); it != compression_.end()) {
      target.compression = it->second.first;
      target.compression_min_bytes = it->second.second;
    }
    apply_tls(target, target.address);
    auto tls = tls_.find(target.name);
    channels_->add(id, target.address,
                   tls == tls_.end() ? std::nullopt : std::optional(tls->second.channel));
  }
  targets_ = std::move(next);
}

void FleetControl::apply_tls(BackendTarget& target, const std::string& address) const {
  auto it = tls_.find(target.name);
  if (it == tls_.end()) {
    target.tls.reset();
    target.tls_name.clear();
    target.tls_error.clear();
    return;
  }
  target.tls = it->second.context;
  target.tls_name = it->second.name.empty() ? host_of(address) : it->second.name;
  target.tls_error = it->second.error;
}

void FleetControl::start(const config::Config& config) {
  set_backend_settings(config);
  scraper_->set_endpoints(metrics_endpoints(config));
  monitor_->set_backends(backend_specs(config));
  monitor_->start();
  scraper_->start();
}

void FleetControl::apply(const config::Config& config) {
  monitor_->set_options(health_options(config));
  affinity_->set_idle_timeout(config.routing.sequence_idle_timeout);
  affinity_->set_max_bytes(config.limits.max_sequence_table_bytes);
  admission_->set_limits(admission_limits(config), config.limits.any());
  apply_cluster(config);
  buffer_budget_->set_limit(config.limits.max_buffered_bytes);
  set_backend_settings(config);
  scraper_->set_options(scrape_options(config));
  scraper_->set_endpoints(metrics_endpoints(config));
  monitor_->set_backends(backend_specs(config));
}

void FleetControl::apply_cluster(const config::Config& config) {
  if (!config.cluster) {
    cluster_view_.store(nullptr);
    cluster_.reset();  // the configured limits apply again
    return;
  }
  if (!cluster_) cluster_ = std::make_unique<ClusterLimits>(control_, admission_);
  cluster_->configure(*config.cluster, admission_limits(config));
  cluster_view_.store(cluster_.get());
}

std::optional<ClusterLimits::Snapshot> FleetControl::cluster() const {
  // The admin thread reads it: the cluster is replaced only on the control thread, which
  // is the admin's thread too (one io_context).
  const ClusterLimits* c = cluster_view_.load();
  if (c == nullptr) return std::nullopt;
  return c->snapshot();
}

void FleetControl::stop() {
  cluster_view_.store(nullptr);
  cluster_.reset();
  // Before the workers go: once it returns, the gate posts nothing to their io_contexts.
  if (admission_) admission_->stop();
  if (monitor_) monitor_->stop();
  if (scraper_) scraper_->stop();
  if (compression_pool_) compression_pool_->join();
}

void FleetControl::on_membership(std::uint32_t id, const health::BackendSpec& spec, bool added) {
  auto next = std::make_shared<TargetTable>(*targets_);
  if (!added) {
    next->erase(id);
    channels_->remove(id);
    targets_ = std::move(next);
    return;
  }
  BackendTarget t{.name = spec.name, .address = spec.address};
  if (auto it = compression_.find(spec.name); it != compression_.end()) {
    t.compression = it->second.first;
    t.compression_min_bytes = it->second.second;
  }
  apply_tls(t, spec.address);
  // Resolved once, here; the probes' own channel resolves on its own.
  const size_t colon = spec.address.rfind(':');
  const std::string host = host_of(spec.address);
  boost::system::error_code ec;
  tcp::resolver resolver(control_);
  auto results =
      resolver.resolve(host, spec.address.substr(colon + 1), tcp::resolver::numeric_service, ec);
  if (!ec && !results.empty()) {
    t.endpoint = results.begin()->endpoint();
    t.resolved = true;
  } else {
    t.resolve_error = ec ? ec.message() : "no addresses";
    gateway_log().warn("backend_unresolved backend={} address={} error=\"{}\"", spec.name,
                       spec.address, t.resolve_error);
  }
  (*next)[id] = std::move(t);
  targets_ = std::move(next);
  auto tls = tls_.find(spec.name);
  channels_->add(id, spec.address,
                 tls == tls_.end() ? std::nullopt : std::optional(tls->second.channel));
}

void FleetControl::publish(std::shared_ptr<const routing::Fleet> fleet) {
  if (scraper_) scraper_->set_fleet(fleet);  // scrapes follow membership and draining
  for (Worker* w : workers_) {
    boost::asio::post(w->io(), [w, fleet, targets = targets_] { w->set_fleet(fleet, targets); });
  }
}

}  // namespace infergate::gateway
