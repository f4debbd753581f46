// The gateway process: the control io_context (signals, admin HTTP, drain), the
// frontend listener and the data-plane workers, wired from a validated Config.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt_validator.h"
#include "config/config.h"
#include "gateway/admin/admin_server.h"
#include "gateway/admin/metrics.h"
#include "gateway/admin/status_page.h"
#include "gateway/fleet/discovery.h"
#include "gateway/fleet/fleet_control.h"
#include "gateway/fleet/jwks_fetcher.h"
#include "gateway/h2/listener.h"
#include "gateway/options.h"
#include "gateway/worker.h"

namespace infergate::gateway {

class Gateway {
 public:
  // `workers` 0 = one per core (or the config's value when it sets one).
  Gateway(std::shared_ptr<const config::Config> config, int workers);
  ~Gateway();

  // Resolves backends, starts the workers and binds both listeners. Returns an error
  // message (nothing is left listening), or "" on success.
  std::string start();

  // Runs the control loop until a drain has finished. Returns the exit code.
  int run();

  boost::asio::ip::tcp::endpoint grpc_endpoint() const { return listener_->local_endpoint(); }
  boost::asio::ip::tcp::endpoint admin_endpoint() const { return admin_->local_endpoint(); }

 private:
  void on_signal(int signal);
  // SIGHUP: reads the config file again and applies what can change while running.
  void reload();
  void begin_drain();
  // frontend.tls: loads the certificate and key (again) for new connections; those open
  // keep theirs. A pair that does not load is logged and the running one stays.
  std::string load_tls(const config::FrontendTlsConfig& files, bool at_start);
  // Polls the TLS files (every 2 s): a change (cert-manager, a Kubernetes secret) loads
  // them again.
  void watch_tls();
  std::string tls_files_stamp() const;
  void check_drained();
  void stop();
  // What /status and /status.json show.
  StatusInputs status_inputs() const;
  std::uint64_t active_streams() const;
  // Who may call under `config`: made again only when auth: changes, so a JWT validator
  // keeps its verdicts and the keys it fetched across reloads that do not touch it.
  std::shared_ptr<const auth::Authenticator> authenticator(const config::Config& config);
  // Starts, reconfigures or stops discovery for `config`'s dns and srv entries (and
  // addresses given by host name). At start the first round is awaited (within
  // discovery.timeout) so that the fleet starts with the addresses.
  void discover(const config::Config& config, bool at_start);

  std::shared_ptr<const config::Config> config_;
  config::AuthConfig auth_config_;
  std::shared_ptr<const auth::Authenticator> auth_;
  std::shared_ptr<auth::JwtValidator> jwt_;  // auth_, when it checks JWTs
  int worker_count_;
  boost::asio::io_context control_{1};
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Listener> plaintext_listener_;  // listen_plaintext, beside a TLS listen
  boost::asio::steady_timer tls_timer_;
  std::string tls_stamp_;  // the TLS files' identities when last loaded
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<MetricsExporter> metrics_;
  std::unique_ptr<FleetControl> fleet_;
  std::unique_ptr<JwksFetcher> jwks_fetcher_;  // jwt_'s issuers with a jwks_url
  std::unique_ptr<Discovery> discovery_;       // backends given by dns or srv
  Discovery::Found found_;                     // what discovery_ last found
  std::unique_ptr<StatusTracker> status_;
  std::chrono::system_clock::time_point started_at_;
  std::chrono::system_clock::time_point config_loaded_at_;
  std::string config_version_;  // a hash of the config file's text when loaded
  bool draining_ = false;
};

DataPlaneOptions data_plane_options(const config::Config& config);
TlsFiles tls_files(const config::FrontendTlsConfig& tls);
// The admin port's limits; with admin.tls, its pair loaded (`tls_error` says why not).
AdminServer::Limits admin_limits(const config::Config& config, std::string* tls_error = nullptr);

}  // namespace infergate::gateway
