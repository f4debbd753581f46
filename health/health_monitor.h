// Watches every backend from the control io_context: probes on an interval, refreshes
// model inventories, applies passive outlier reports from the data plane, expires
// ejections, ramps slow starts, drains removed backends, and publishes a new
// routing::Fleet whenever what routing sees has changed. Every state transition is
// logged with its reason. Control thread only, except report_outliers(),
// refresh_all_inventories() and the functions that outlier_reporter() and
// inventory_refresher() return.
//
// Shutdown: the transport's answers come back on gRPC threads, which outlive the
// monitor; they reach it only through its Lifeline, which the destructor closes first, so
// an answer that arrives later touches neither the monitor nor its io_context. Destroy
// the monitor on the control thread, or after that thread has stopped running `io`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "health/health_policy.h"
#include "health/post_if_alive.h"
#include "health/probe_transport.h"
#include "routing/affinity.h"
#include "routing/fleet.h"

namespace infergate::health {

struct BackendSpec {
  std::string name;
  std::string address;
  double weight = 1.0;
  std::uint32_t max_inflight = 0;  // the gateway's concurrency cap toward it; 0: none
};

class HealthMonitor {
 public:
  using Publish = std::function<void(std::shared_ptr<const routing::Fleet>)>;
  using Clock = std::function<TimePoint()>;
  // Told when a backend joins (added = true) or, drained, leaves the fleet.
  using Membership = std::function<void(std::uint32_t id, const BackendSpec&, bool added)>;

  HealthMonitor(boost::asio::io_context& io, HealthOptions options,
                std::shared_ptr<ProbeTransport> transport, Publish publish, Membership membership,
                std::shared_ptr<routing::AffinityTable> affinity, Clock clock);
  ~HealthMonitor();

  // Sets the fleet's members: new names are added (state unknown, probed at once),
  // missing ones start draining, changed weights apply. Returns the ids of added
  // backends, in spec order. Control thread.
  std::vector<std::uint32_t> set_backends(const std::vector<BackendSpec>& specs);
  void set_options(HealthOptions options);

  // Starts the probe and tick timers. Control thread.
  void start();
  void stop();

  // The data plane saw `consecutive_failures` failures in a row on backend `id`.
  // Any thread (posts to the control thread).
  void report_outliers(std::uint32_t id);

  // Asks every backend for its models again (after repository changes). Any thread.
  void refresh_all_inventories();

  // report_outliers() and an inventory refresh as functions that may outlive the monitor
  // (they do nothing once it is gone), for the data plane to hold. Any thread.
  // The refresher asks every backend (but draining ones) for its models again, then
  // runs `settled` on the control thread once each of them has answered (or failed to)
  // with an inventory asked for after the call, and the fleet that shows it has been
  // published: after a repository load or unload, the gateway's answers agree with it.
  // `settled` runs at once, on the calling thread, if the monitor is gone.
  std::function<void(std::uint32_t id)> outlier_reporter();
  using Settled = std::function<void()>;
  std::function<void(Settled settled)> inventory_refresher();

  // The last published fleet. Control thread.
  std::shared_ptr<const routing::Fleet> fleet() const { return fleet_; }

 private:
  struct Tracked;
  void probe_all();
  void probe(Tracked& t);
  void refresh_inventory(Tracked& t);
  void on_probe(std::uint32_t id, ProbeResult result);
  void on_inventory(std::uint32_t id, InventoryResult result);
  void on_outliers(std::uint32_t id);
  void refresh_every_inventory();
  struct Settle;
  void settle_every_inventory(Settled settled);
  // Counts this backend's finished inventory toward the settles that waited for it.
  static void settle(std::vector<std::shared_ptr<Settle>> settles);
  void tick();
  void check_models(Tracked& t, bool recheck_ready);
  void on_model_ready(std::uint32_t id, const std::string& name, const std::string& version,
                      bool answered, bool ready);
  void apply(Tracked& t, const Transition& transition);
  void publish();
  Tracked* find(std::uint32_t id);
  size_t ejected_count() const;

  boost::asio::io_context& io_;
  HealthPolicy policy_;
  std::shared_ptr<ProbeTransport> transport_;
  Publish publish_;
  Membership membership_;
  std::shared_ptr<routing::AffinityTable> affinity_;
  Clock clock_;
  boost::asio::steady_timer probe_timer_;
  boost::asio::steady_timer tick_timer_;
  std::vector<std::unique_ptr<Tracked>> backends_;
  std::uint32_t next_id_ = 0;
  std::uint64_t generation_ = 0;
  std::shared_ptr<const routing::Fleet> fleet_;
  bool running_ = false;
  TimePoint last_sweep_{};
  // Last member: closed first, in the destructor, before anything else goes.
  Lifeline lifeline_;
};

}  // namespace infergate::health
