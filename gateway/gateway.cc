#include "gateway/gateway.h"
#include "auth/token_table.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>

#include <boost/asio/post.hpp>

#include "config/loader.h"
#include "gateway/admin/triton_export.h"
#include "gateway/logging.h"
#include "gateway/version.h"

namespace infergate::gateway {

using tcp = boost::asio::ip::tcp;

namespace {

std::string endpoint_text(const tcp::endpoint& e) {
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

// Resolves host:port for binding (an IP literal, or a name such as "localhost").
std::optional<tcp::endpoint> bind_endpoint(boost::asio::io_context& io, const config::HostPort& hp,
                                           std::string& error) {
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    error = "cannot resolve " + hp.to_string() + ": " + ec.message();
    return std::nullopt;
  }
  return results.begin()->endpoint();
}

// The scraped Triton signals the status page shows, by backend name.
std::map<std::string, BackendGpu> gpus(const health::TritonSnapshot& snapshot) {
  std::map<std::string, BackendGpu> out;
  for (const health::TritonStatus& s : snapshot) {
    out[s.backend] = BackendGpu{.utilization = s.signals.gpu_utilization,
                                .memory_used_bytes = s.signals.gpu_memory_used_bytes,
                                .memory_total_bytes = s.signals.gpu_memory_total_bytes,
                                .pending_requests = s.signals.pending_requests,
                                .fresh = s.fresh};
  }
  return out;
}

// A short hash (FNV-1a, 64 bits) of a file's text: which config is running.
std::string file_version(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "unknown";
  std::uint64_t h = 0xcbf29ce484222325ull;
  char c;
  while (in.get(c)) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// frontend.max_connections, within what the process's file-descriptor limit allows (the
// soft limit is raised to the hard one first); the rest stay for backends, the admin
// port and the process itself.
std::uint32_t connection_cap(const config::Config& config) {
  constexpr rlim_t kReserved = 256;
  rlimit fds{};
  if (::getrlimit(RLIMIT_NOFILE, &fds) != 0) return config.frontend.max_connections;
  if (fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &fds) != 0) ::getrlimit(RLIMIT_NOFILE, &fds);
  }
  const rlim_t usable = fds.rlim_cur > 2 * kReserved ? fds.rlim_cur - kReserved : fds.rlim_cur / 2;
  if (usable >= config.frontend.max_connections) return config.frontend.max_connections;
  gateway_log().warn(
      "max_connections_capped configured={} file_descriptor_limit={} effective={} "
      "reason=\"raise the process's RLIMIT_NOFILE to serve more\"",
      config.frontend.max_connections, fds.rlim_cur, usable);
  return static_cast<std::uint32_t>(usable);
}

}  // namespace

StatusInputs Gateway::status_inputs() const {
  return StatusInputs{
      .version = kVersion,
      .policy = config_->routing.policy,
      .config_source = config_->source,
      .config_version = config_version_,
      .started_at = started_at_,
      .config_loaded_at = config_loaded_at_,
      .fleet = fleet_->fleet(),
      .recent = status_->recent(),
      .gpus = gpus(fleet_->triton_signals()),
      .admission_enabled = fleet_->admission().enabled(),
      .limits = fleet_->admission().limits(),
      .admission = fleet_->admission().stats(),
      .active_streams = active_streams(),
      .draining = draining_,
  };
}

AdminServer::Limits admin_limits(const config::Config& config, std::string* tls_error) {
  AdminServer::Limits limits{.max_connections = config.admin.max_connections,
                             .timeout = config.admin.timeout};
  for (const config::TokenHash& t : config.admin.tokens)
    limits.token_hashes.push_back(t.sha256_hex);
  if (config.admin.tls) {
    std::string error;
    limits.tls = AdminServer::load_tls(config.admin.tls->cert, config.admin.tls->key, error);
    if (tls_error != nullptr) *tls_error = error;
  }
  return limits;
}

DataPlaneOptions data_plane_options(const config::Config& config) {
  return DataPlaneOptions{
      .stream_window_bytes = static_cast<std::uint32_t>(config.frontend.stream_window_bytes),
      .max_stream_window_bytes =
          static_cast<std::uint32_t>(config.frontend.max_stream_window_bytes),
      .connection_window_bytes =
          static_cast<std::uint32_t>(config.frontend.connection_window_bytes),
      .max_concurrent_streams = config.frontend.max_concurrent_streams,
      .upstream_streams_per_connection = config.upstream.streams_per_connection,
      .upstream_connections_per_backend = config.upstream.connections_per_backend,
      .connect_timeout =
          std::chrono::duration_cast<std::chrono::milliseconds>(config.upstream.connect_timeout),
      .response_compression = parse_encoding(config.frontend.response_compression == "none"
                                                 ? ""
                                                 : config.frontend.response_compression),
      .response_compression_min_bytes = config.frontend.response_compression_min_bytes,
      .access_log = config.access_log,
      .max_reorder_buffer_bytes = config.limits.max_reorder_bytes,
      .max_routing_fields_bytes = config.limits.max_routing_fields_bytes,
      .max_control_message_bytes = config.limits.max_control_message_bytes,
      .max_header_bytes = config.frontend.max_header_bytes,
      .max_stream_messages_in_flight = config.limits.max_stream_messages_in_flight,
      .handshake_timeout = config.frontend.handshake_timeout,
      .idle_timeout = config.frontend.idle_timeout,
      .stream_idle_timeout = config.frontend.stream_idle_timeout,
      .upstream_stream_idle_timeout = config.upstream.stream_idle_timeout,
      .backend_wait_timeout = config.limits.backend_wait_timeout,
      .keepalive_interval = config.upstream.keepalive_interval,
      .keepalive_timeout = config.upstream.keepalive_timeout,
      .upstream_max_streams_per_connection = config.upstream.max_streams_per_connection,
  };
}

Gateway::Gateway(std::shared_ptr<const config::Config> config, int workers)
    : config_(std::move(config)),
      worker_count_(workers > 0 ? workers : config_->workers),
      signals_(control_),
      drain_timer_(control_),
      tls_timer_(control_) {
  if (worker_count_ <= 0) {
    worker_count_ = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
}

Gateway::~Gateway() { stop(); }

void Gateway::discover(const config::Config& config, bool at_start) {
  if (!uses_discovery(config)) {
    discovery_.reset();
    found_.clear();
    return;
  }
  if (!discovery_) {
    discovery_ = std::make_unique<Discovery>(control_, [this](const Discovery::Found& found) {
      found_ = found;
      std::string sets;
      for (const auto& [name, addresses] : found_) {
        sets += (sets.empty() ? "" : " ") + name + ":" + std::to_string(addresses.size());
      }
      gateway_log().info("discovery_changed sets=\"{}\"", sets);
      fleet_->apply(expand_backends(*config_, found_));
    });
    if (at_start) found_ = discovery_->first_round(config);
    // A member that refuses connections may have moved: ask again now, not at the next
    // interval (Discovery spaces its rounds by kMinPeriod whatever asks).
    fleet_->on_connect_failure([this] {
      if (discovery_) discovery_->resolve_now();
    });
  }
  discovery_->configure(config);
}

std::shared_ptr<const auth::Authenticator> Gateway::authenticator(const config::Config& config) {
  if (auth_ && config.auth == auth_config_) return auth_;
  auth_config_ = config.auth;
  jwks_fetcher_.reset();
  jwt_.reset();
  auth_.reset();
  if (config.auth.mode == "token") {
    auth_ = std::make_shared<const auth::TokenTable>(config.auth.tokens);
  } else if (config.auth.mode == "jwt") {
    jwt_ = std::make_shared<auth::JwtValidator>(config.auth);
    for (const std::string& error : jwt_->load_errors()) {
      gateway_log().error("jwks_not_loaded issuer={}", error);
    }
    jwks_fetcher_ = std::make_unique<JwksFetcher>(control_, jwt_, config.auth);
    auth_ = jwt_;
  }
  return auth_;
}

std::string Gateway::start() {
  std::string error;
  auto grpc = bind_endpoint(control_, config_->listen, error);
  if (!grpc) return error;
  auto admin = bind_endpoint(control_, config_->admin_listen, error);
  if (!admin) return error;

  const DataPlaneOptions options = data_plane_options(*config_);
  fleet_ = std::make_unique<FleetControl>(control_, *config_);
  std::vector<Worker*> raw;
  std::vector<const Worker*> const_raw;
  for (int i = 0; i < worker_count_; ++i) {
    workers_.push_back(std::make_unique<Worker>(
        i, options, routing_options(*config_, authenticator(*config_)), fleet_->worker_shared()));
    raw.push_back(workers_.back().get());
    const_raw.push_back(workers_.back().get());
  }
  fleet_->attach(raw);
  metrics_ = std::make_unique<MetricsExporter>(
      const_raw, [this] { return fleet_->fleet(); }, &fleet_->admission(),
      [this] {
        std::vector<prometheus::MetricFamily> families = triton_families(fleet_->triton_signals());
        if (const auto cluster = fleet_->cluster()) {
          ClusterGauges gauges{.connected = cluster->connected, .replicas = cluster->replicas};
          const routing::AdmissionLimits limits = fleet_->admission().limits();
          const std::array<std::uint64_t, 3> configured = {
              limits.max_inflight, limits.max_bytes_in_flight, limits.link_bytes_per_second};
          for (size_t k = 0; k < configured.size(); ++k) {
            if (configured[k] == 0) continue;
            gauges.shares.emplace_back(ClusterLimits::kSharedNames[k],
                                       static_cast<double>(cluster->shares[k]));
          }
          for (auto& f : cluster_families(gauges)) families.push_back(std::move(f));
        }
        if (admin_) {
          const AdminServer::Counters c = admin_->counters();
          for (auto& f : admin_families(c.open, c.refused, c.displaced)) {
            families.push_back(std::move(f));
          }
        }
        return families;
      });
  std::string admin_tls_error;
  AdminServer::Limits admin_settings = admin_limits(*config_, &admin_tls_error);
  if (!admin_tls_error.empty()) return admin_tls_error;
  admin_ = std::make_unique<AdminServer>(control_, admin_settings);
  admin_->route("/healthz", [this] {
    if (draining_) return AdminResponse{.status = 503, .body = "draining\n"};
    return AdminResponse{.body = "ok\n"};
  });
  // Ready to take traffic: a backend is healthy (what grpc.health.v1 Check answers on the
  // gRPC port), for probes that cannot speak gRPC over TLS (Kubernetes' grpc probe).
  admin_->route("/readyz", [this] {
    if (draining_) return AdminResponse{.status = 503, .body = "draining\n"};
    const size_t healthy = fleet_->fleet()->healthy_count();
    if (healthy == 0) return AdminResponse{.status = 503, .body = "no healthy backend\n"};
    return AdminResponse{.body = "ready: " + std::to_string(healthy) + " healthy backend" +
                                 (healthy == 1 ? "" : "s") + "\n"};
  });
  admin_->route("/metrics", [this] {
    return AdminResponse{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                         .body = metrics_->render()};
  });
  status_ = std::make_unique<StatusTracker>(control_, [this] { return fleet_->fleet(); });
  admin_->route("/status", [this] {
    return AdminResponse{.content_type = "text/html; charset=utf-8",
                         .body = status_html(status_inputs())};
  });
  admin_->route("/status.json", [this] {
    return AdminResponse{.content_type = "application/json", .body = status_json(status_inputs())};
  });
  listener_ = std::make_unique<Listener>(control_, raw, connection_cap(*config_));
  if (config_->frontend.tls) {
    if (std::string e = load_tls(*config_->frontend.tls, /*at_start=*/true); !e.empty()) return e;
  }
  if (std::string e = listener_->listen(*grpc); !e.empty()) {
    return "cannot listen on " + config_->listen.to_string() + ": " + e;
  }
  if (config_->listen_plaintext) {
    auto plain = bind_endpoint(control_, *config_->listen_plaintext, error);
    if (!plain) {
      listener_->close();
      return error;
    }
    plaintext_listener_ = std::make_unique<Listener>(control_, raw, connection_cap(*config_));
    if (std::string e = plaintext_listener_->listen(*plain); !e.empty()) {
      listener_->close();
      return "cannot listen on " + config_->listen_plaintext->to_string() + ": " + e;
    }
  }
  if (std::string e = admin_->listen(*admin); !e.empty()) {
    listener_->close();
    if (plaintext_listener_) plaintext_listener_->close();
    return "cannot listen on " + config_->admin_listen.to_string() + " (admin): " + e;
  }
  discover(*config_, /*at_start=*/true);
  fleet_->start(expand_backends(*config_, found_));
  for (auto& w : workers_) w->start();
  status_->start();
  started_at_ = config_loaded_at_ = std::chrono::system_clock::now();
  config_version_ = file_version(config_->source);

  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGHUP);
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) on_signal(sig);
  });
  gateway_log().info("started version={} workers={} backends={} policy={} config={}", kVersion,
                     worker_count_, config_->backends.size(), config_->routing.policy,
                     config_->source);
  gateway_log().info("admin_listening address={}", endpoint_text(admin_->local_endpoint()));
  gateway_log().info("listening address={} tls={}", endpoint_text(listener_->local_endpoint()),
                     config_->frontend.tls ? "on" : "off");
  if (plaintext_listener_) {
    gateway_log().info("listening_plaintext address={}",
                       endpoint_text(plaintext_listener_->local_endpoint()));
  }
  if (config_->frontend.tls) watch_tls();
  return "";
}

TlsFiles tls_files(const config::FrontendTlsConfig& tls) {
  return TlsFiles{.cert = tls.cert,
                  .key = tls.key,
                  .client_ca = tls.client_ca,
                  .require_client_cert = tls.require_client_cert,
                  .min_version = tls.min_version};
}

std::string Gateway::load_tls(const config::FrontendTlsConfig& c, bool at_start) {
  const TlsFiles files = tls_files(c);
  const std::string stamp = tls_files_stamp();
  std::string error;
  std::shared_ptr<const TlsContext> tls = TlsContext::load(files, &error);
  if (!tls) {
    if (at_start) return "frontend.tls: " + error;
    gateway_log().error("tls_reload_failed error=\"{}\" reason=\"the running certificate stays\"",
                        error);
    tls_stamp_ = stamp;  // not tried again until the files change again
    return error;
  }
  listener_->set_tls(tls);
  tls_stamp_ = stamp;
  gateway_log().info(
      "tls_loaded cert={} subject=\"{}\" not_after=\"{}\" client_ca={} min_version={}", c.cert,
      tls->subject(), tls->not_after(), c.client_ca.empty() ? "-" : c.client_ca, c.min_version);
  return "";
}

std::string Gateway::tls_files_stamp() const {
  std::string stamp;
  if (!config_->frontend.tls) return stamp;
  const config::FrontendTlsConfig& c = *config_->frontend.tls;
  for (const std::string* path : {&c.cert, &c.key, &c.client_ca}) {
    struct stat st {};
    if (path->empty() || ::stat(path->c_str(), &st) != 0) {
      stamp += "-;";
      continue;
    }
    stamp += std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return stamp;
}

void Gateway::watch_tls() {
  tls_timer_.expires_after(std::chrono::seconds(2));
  tls_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_ || !config_->frontend.tls) return;
    if (tls_files_stamp() != tls_stamp_) {
      gateway_log().info("tls_files_changed cert={}", config_->frontend.tls->cert);
      load_tls(*config_->frontend.tls, /*at_start=*/false);
    }
    watch_tls();
  });
}

int Gateway::run() {
  control_.run();
  stop();
  gateway_log().info("stopped");
  return 0;
}

void Gateway::on_signal(int sig) {
  if (sig == SIGHUP) {
    reload();
  } else if (!draining_) {
    gateway_log().info(
        "draining signal={} active_streams={} timeout_ms={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
        active_streams(),
        std::chrono::duration_cast<std::chrono::milliseconds>(config_->drain_timeout).count());
    begin_drain();
  } else {
    gateway_log().warn("drain_interrupted active_streams={} reason=\"second signal\"",
                       active_streams());
    control_.stop();
    return;
  }
  signals_.async_wait([this](const boost::system::error_code& ec, int s) {
    if (!ec) on_signal(s);
  });
}

void Gateway::reload() {
  config::LoadResult result = config::load_config_file(config_->source);
  if (!result.ok()) {
    for (const config::Problem& p : result.problems) {
      gateway_log().error("reload_problem {}", p.to_string());
    }
    gateway_log().error("reload_rejected problems={} reason=\"the running config stays\"",
                        result.problems.size());
    return;
  }
  const config::Config& next = *result.config;
  // What the running process cannot change: say so rather than pretend. (The TLS files
  // are loaded again below; turning TLS on or off needs a restart.)
  config::FrontendConfig next_frontend = next.frontend;
  next_frontend.tls = config_->frontend.tls;
  const bool tls_switch = next.frontend.tls.has_value() != config_->frontend.tls.has_value();
  if (!(next.listen == config_->listen) || !(next.admin_listen == config_->admin_listen) ||
      !(next.listen_plaintext == config_->listen_plaintext) || tls_switch ||
      next.workers != config_->workers || next.drain_timeout != config_->drain_timeout ||
      !(next_frontend == config_->frontend) || !(next.upstream == config_->upstream) ||
      next.access_log != config_->access_log) {
    gateway_log().warn(
        "reload_partial reason=\"listen, listen_plaintext, admin_listen, workers, "
        "drain_timeout, frontend (but for the TLS files), upstream and access_log keep their "
        "running values until a restart\"");
  }
  discover(next, /*at_start=*/false);
  fleet_->apply(expand_backends(next, found_));
  std::string admin_tls_error;
  AdminServer::Limits admin = admin_limits(next, &admin_tls_error);
  if (!admin_tls_error.empty()) {
    // A pair half replaced, a key of another certificate: the running one stays.
    gateway_log().error("admin_tls_reload_failed error=\"{}\" reason=\"the running pair stays\"",
                        admin_tls_error);
    admin.tls = admin_->tls();
  }
  admin_->set_limits(admin);
  const RoutingOptions routing = routing_options(next, authenticator(next));
  const DataPlaneOptions options = data_plane_options(next);
  for (auto& w : workers_) {
    Worker* worker = w.get();
    boost::asio::post(worker->io(), [worker, routing, options] {
      worker->set_routing(routing);
      worker->set_stream_limits(options);
    });
  }
  if (next.log_level != config_->log_level) set_log_level(next.log_level);
  // Keep the parts that did not change in the running config.
  auto merged = std::make_shared<config::Config>(next);
  merged->listen = config_->listen;
  merged->admin_listen = config_->admin_listen;
  merged->workers = config_->workers;
  merged->drain_timeout = config_->drain_timeout;
  merged->frontend = config_->frontend;
  merged->listen_plaintext = config_->listen_plaintext;
  if (config_->frontend.tls && next.frontend.tls) {
    // Certificates rotate on SIGHUP: the files (same paths or new ones) load again.
    merged->frontend.tls = next.frontend.tls;
  }
  merged->upstream = config_->upstream;
  merged->access_log = config_->access_log;
  config_ = std::move(merged);
  if (config_->frontend.tls) load_tls(*config_->frontend.tls, /*at_start=*/false);
  config_loaded_at_ = std::chrono::system_clock::now();
  config_version_ = file_version(config_->source);
  gateway_log().info("reloaded config={} version={} backends={}", config_->source, config_version_,
                     config_->backends.size());
}

void Gateway::begin_drain() {
  draining_ = true;
  listener_->close();
  if (plaintext_listener_) plaintext_listener_->close();
  tls_timer_.cancel();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    boost::asio::post(worker->io(), [worker] { worker->begin_drain(); });
  }
  drain_deadline_ =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(config_->drain_timeout);
  check_drained();
}

void Gateway::check_drained() {
  const std::uint64_t active = active_streams();
  if (active == 0) {
    gateway_log().info("drained");
    control_.stop();
    return;
  }
  if (std::chrono::steady_clock::now() >= drain_deadline_) {
    gateway_log().warn("drain_timeout active_streams={}", active);
    control_.stop();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(20));
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check_drained();
  });
}

void Gateway::stop() {
  discovery_.reset();
  if (status_) status_->stop();
  if (fleet_) fleet_->stop();
  if (admin_) admin_->close();
  if (listener_) listener_->close();
  if (plaintext_listener_) plaintext_listener_->close();
  tls_timer_.cancel();
  jwks_fetcher_.reset();
  for (auto& w : workers_) w->stop();
}

std::uint64_t Gateway::active_streams() const {
  std::uint64_t n = 0;
  for (const auto& w : workers_) n += w->active_streams();
  return n;
}

}  // namespace infergate::gateway
