#include "health/health_monitor.h"

#include <spdlog/spdlog.h>

namespace infergate::health {

using routing::BackendState;

// A settle_every_inventory() call: the backends still to answer, and what runs then.
struct HealthMonitor::Settle {
  size_t pending = 0;
  Settled settled;
};

struct HealthMonitor::Tracked {
  std::uint32_t id = 0;
  BackendSpec spec;
  HealthRecord record;
  std::vector<IndexEntry> index;
  std::vector<std::string> extensions;
  std::string server_name;
  std::string server_version;
  std::shared_ptr<routing::BackendRuntime> runtime = std::make_shared<routing::BackendRuntime>();
  bool probing = false;
  bool inventorying = false;
  // Waiting for this backend's next inventory: asked for while none was running
  // (`settling`: the one now running), or while one was (`settle_next`: that one began
  // before their change and may not show it, so another follows).
  std::vector<std::shared_ptr<Settle>> settling;
  std::vector<std::shared_ptr<Settle>> settle_next;
  bool inventory_known = false;
  bool inventory_failing = false;
  TimePoint last_inventory{};
};

namespace {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("health");
    return l ? l : spdlog::default_logger();
  }();
  return *logger;
}

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr auto kSweepEvery = std::chrono::seconds(5);

}  // namespace

HealthMonitor::HealthMonitor(boost::asio::io_context& io, HealthOptions options,
                             std::shared_ptr<ProbeTransport> transport, Publish publish,
                             Membership membership,
                             std::shared_ptr<routing::AffinityTable> affinity, Clock clock)
    : io_(io),
      policy_(options),
      transport_(std::move(transport)),
      publish_(std::move(publish)),
      membership_(std::move(membership)),
      affinity_(std::move(affinity)),
      clock_(std::move(clock)),
      probe_timer_(io),
      tick_timer_(io),
      lifeline_(io.get_executor()) {}

HealthMonitor::~HealthMonitor() {
  lifeline_.close();  // first: from here on, no answer from a gRPC thread reaches us
  stop();
}

std::vector<std::uint32_t> HealthMonitor::set_backends(const std::vector<BackendSpec>& specs) {
  std::vector<std::uint32_t> added;
  for (const BackendSpec& spec : specs) {
    Tracked* same = nullptr;
    for (auto& t : backends_) {
      if (t->spec.name == spec.name && t->record.state != BackendState::kDraining) same = t.get();
    }
    if (same != nullptr && same->spec.address == spec.address) {
      same->spec.weight = spec.weight;
      same->spec.max_inflight = spec.max_inflight;
      continue;
    }
    if (same != nullptr) {  // a new address is a new backend; the old one drains
      apply(*same, policy_.begin_drain(same->record));
    }
    auto t = std::make_unique<Tracked>();
    t->id = next_id_++;
    t->spec = spec;
    added.push_back(t->id);
    log().info("backend_added backend={} address={} weight={}", spec.name, spec.address,
               spec.weight);
    if (membership_) membership_(t->id, spec, true);
    backends_.push_back(std::move(t));
    if (running_) probe(*backends_.back());
  }
  for (auto& t : backends_) {
    bool wanted = false;
    for (const BackendSpec& spec : specs) {
      wanted = wanted || (spec.name == t->spec.name && spec.address == t->spec.address);
    }
    if (!wanted && t->record.state != BackendState::kDraining) {
      apply(*t, policy_.begin_drain(t->record));
    }
  }
  publish();
  return added;
}

void HealthMonitor::set_options(HealthOptions options) { policy_ = HealthPolicy(options); }

void HealthMonitor::start() {
  running_ = true;
  probe_all();
  tick();
}

void HealthMonitor::stop() {
  running_ = false;
  probe_timer_.cancel();
  tick_timer_.cancel();
}

HealthMonitor::Tracked* HealthMonitor::find(std::uint32_t id) {
  for (auto& t : backends_) {
    if (t->id == id) return t.get();
  }
  return nullptr;
}

void HealthMonitor::probe_all() {
  if (!running_) return;
  for (auto& t : backends_) probe(*t);
  probe_timer_.expires_after(policy_.options().interval);
  // A wait that completed just before stop() still runs its handler without an error.
  probe_timer_.async_wait([this, link = lifeline_.link()](const boost::system::error_code& ec) {
    if (!ec && link.alive()) probe_all();
  });
}

void HealthMonitor::probe(Tracked& t) {
  if (t.probing || t.record.state == BackendState::kDraining) return;
  t.probing = true;
  const std::uint32_t id = t.id;
  // The answer comes on a gRPC thread: `this` only on the control thread, if alive.
  transport_->probe(id, policy_.options().timeout,
                    [this, link = lifeline_.link(), id](ProbeResult r) {
                      link.post_if_alive([this, id, r = std::move(r)] { on_probe(id, r); });
                    });
  const TimePoint now = clock_();
  if (t.record.state == BackendState::kHealthy &&
      (!t.inventory_known || now - t.last_inventory >= policy_.options().inventory_interval)) {
    refresh_inventory(t);
  }
}

void HealthMonitor::on_probe(std::uint32_t id, ProbeResult result) {
  Tracked* t = find(id);
  if (t == nullptr) return;
  t->probing = false;
  apply(*t, policy_.on_probe(t->record, result.ok, result.detail, clock_()));
  if (t->record.state == BackendState::kHealthy && !t->inventory_known) refresh_inventory(*t);
}

void HealthMonitor::refresh_inventory(Tracked& t) {
  if (t.inventorying) return;
  t.inventorying = true;
  const std::uint32_t id = t.id;
  transport_->inventory(
      id, policy_.options().timeout, [this, link = lifeline_.link(), id](InventoryResult r) {
        link.post_if_alive(
            [this, id, r = std::move(r)]() mutable { on_inventory(id, std::move(r)); });
      });
}

void HealthMonitor::on_inventory(std::uint32_t id, InventoryResult result) {
  Tracked* t = find(id);
  if (t == nullptr) return;
  t->inventorying = false;
  // Counted once this inventory is applied (and published), whatever it says.
  std::vector<std::shared_ptr<Settle>> answered = std::move(t->settling);
  t->settling = std::move(t->settle_next);
  t->settle_next.clear();
  if (!t->settling.empty()) refresh_inventory(*t);
  struct SettleAtExit {
    std::vector<std::shared_ptr<Settle>>& settles;
    ~SettleAtExit() { settle(std::move(settles)); }
  } at_exit{answered};
  if (!result.ok) {
    if (!t->inventory_failing) {
      log().warn("inventory_failed backend={} error=\"{}\"", t->spec.name, result.detail);
    }
    t->inventory_failing = true;
    // Stale inventory: ask each model it listed as ready whether it still is.
    check_models(*t, /*recheck_ready=*/true);
    return;
  }
  if (t->inventory_failing) log().info("inventory_recovered backend={}", t->spec.name);
  t->inventory_failing = false;
  const bool first = !t->inventory_known;
  t->inventory_known = true;
  t->last_inventory = clock_();
  t->index = std::move(result.models);
  t->extensions = std::move(result.extensions);
  if (!result.server_name.empty()) {
    t->server_name = std::move(result.server_name);
    t->server_version = std::move(result.server_version);
  }
  if (first) {
    size_t ready = 0;
    for (const IndexEntry& e : t->index) ready += e.state == "READY";
    log().info("inventory backend={} models={} ready={}", t->spec.name, t->index.size(), ready);
  }
  check_models(*t, /*recheck_ready=*/false);
  publish();
}

void HealthMonitor::check_models(Tracked& t, bool recheck_ready) {
  // Entries whose state the index did not give (and, when the index itself failed,
  // the ones it last called ready) are settled by ModelReady.
  const std::uint32_t id = t.id;
  for (const IndexEntry& e : t.index) {
    if (!e.state.empty() && !(recheck_ready && e.state == "READY")) continue;
    auto done = [this, link = lifeline_.link(), id, name = e.name, version = e.version](
                    bool answered, bool ready) {
      link.post_if_alive([this, id, name, version, answered, ready] {
        on_model_ready(id, name, version, answered, ready);
      });
    };
    transport_->model_ready(id, e.name, e.version, policy_.options().timeout, std::move(done));
  }
}

void HealthMonitor::on_model_ready(std::uint32_t id, const std::string& name,
                                   const std::string& version, bool answered, bool ready) {
  Tracked* t = find(id);
  if (t == nullptr) return;
  for (IndexEntry& entry : t->index) {
    if (entry.name != name || entry.version != version) continue;
    if (answered) {
      entry.state = ready ? "READY" : "UNAVAILABLE";
    } else if (entry.state.empty()) {
      entry.state = "UNKNOWN";
    }
  }
  publish();
}

void HealthMonitor::refresh_all_inventories() {
  lifeline_.link().post_if_alive([this] { refresh_every_inventory(); });
}

void HealthMonitor::report_outliers(std::uint32_t id) {
  lifeline_.link().post_if_alive([this, id] { on_outliers(id); });
}

std::function<void(std::uint32_t)> HealthMonitor::outlier_reporter() {
  return [this, link = lifeline_.link()](std::uint32_t id) {
    link.post_if_alive([this, id] { on_outliers(id); });
  };
}

std::function<void(HealthMonitor::Settled)> HealthMonitor::inventory_refresher() {
  return [this, link = lifeline_.link()](Settled settled) {
    auto shared = std::make_shared<Settled>(std::move(settled));
    link.post_if_alive([this, shared] { settle_every_inventory(std::move(*shared)); },
                       [shared] {
                         if (*shared) (*shared)();
                       });
  };
}

void HealthMonitor::settle_every_inventory(Settled settled) {
  auto s = std::make_shared<Settle>();
  s->settled = std::move(settled);
  for (auto& t : backends_) {
    if (t->record.state == BackendState::kDraining) continue;
    ++s->pending;
    if (t->inventorying) {
      t->settle_next.push_back(s);
    } else {
      t->settling.push_back(s);
      refresh_inventory(*t);
    }
  }
  if (s->pending == 0 && s->settled) s->settled();
}

void HealthMonitor::settle(std::vector<std::shared_ptr<Settle>> settles) {
  for (const std::shared_ptr<Settle>& s : settles) {
    if (--s->pending == 0 && s->settled) s->settled();
  }
}

void HealthMonitor::refresh_every_inventory() {
  for (auto& t : backends_) {
    if (t->record.state != BackendState::kDraining) refresh_inventory(*t);
  }
}

size_t HealthMonitor::ejected_count() const {
  size_t n = 0;
  for (const auto& t : backends_) n += t->record.state == BackendState::kEjected;
  return n;
}

void HealthMonitor::on_outliers(std::uint32_t id) {
  Tracked* t = find(id);
  if (t == nullptr) return;
  size_t members = 0;
  for (const auto& b : backends_) members += b->record.state != BackendState::kDraining;
  Transition tr = policy_.on_outliers(t->record, ejected_count(), members, clock_());
  if (!tr.changed() && !tr.reason.empty()) {
    log().warn("outlier_not_ejected backend={} reason=\"{}\"", t->spec.name, tr.reason);
  }
  t->runtime->consecutive_failures.store(0, std::memory_order_relaxed);
  apply(*t, tr);
}

void HealthMonitor::apply(Tracked& t, const Transition& transition) {
  if (!transition.changed()) return;
  const bool degraded =
      transition.to == BackendState::kUnhealthy || transition.to == BackendState::kEjected;
  auto level = degraded ? spdlog::level::warn : spdlog::level::info;
  log().log(level, "backend_state backend={} from={} to={} reason=\"{}\"", t.spec.name,
            routing::backend_state_name(transition.from),
            routing::backend_state_name(transition.to), transition.reason);
  if (transition.to == BackendState::kEjected) {
    t.runtime->stats.ejections.fetch_add(1, std::memory_order_relaxed);
  }
  if (degraded && affinity_) {
    if (size_t lost = affinity_->mark_lost(t.id); lost > 0) {
      log().warn("sequences_lost backend={} count={}", t.spec.name, lost);
    }
  }
  publish();
}

void HealthMonitor::tick() {
  if (!running_) return;
  const TimePoint now = clock_();
  bool ramping = false;
  for (auto it = backends_.begin(); it != backends_.end();) {
    Tracked& t = **it;
    apply(t, policy_.on_tick(t.record, now));
    ramping = ramping || (t.record.state == BackendState::kHealthy &&
                          policy_.slow_start_factor(t.record, now) < 1.0);
    if (t.record.state == BackendState::kDraining &&
        t.runtime->outstanding.load(std::memory_order_relaxed) == 0) {
      log().info("backend_removed backend={} reason=\"drained\"", t.spec.name);
      if (membership_) membership_(t.id, t.spec, false);
      settle(std::move(t.settling));  // it will not answer for them now
      settle(std::move(t.settle_next));
      it = backends_.erase(it);
      publish();
      continue;
    }
    ++it;
  }
  // Slow-start weights change with time: republish while any backend ramps.
  if (ramping) publish();
  if (affinity_ && now - last_sweep_ >= kSweepEvery) {
    affinity_->sweep(now);
    last_sweep_ = now;
  }
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this, link = lifeline_.link()](const boost::system::error_code& ec) {
    if (!ec && link.alive()) tick();
  });
}

void HealthMonitor::publish() {
  const TimePoint now = clock_();
  std::vector<routing::BackendInfo> infos;
  infos.reserve(backends_.size());
  for (const auto& t : backends_) {
    routing::BackendInfo b;
    b.id = t->id;
    b.name = t->spec.name;
    b.address = t->spec.address;
    b.weight = t->spec.weight;
    b.max_inflight = t->spec.max_inflight;
    // Healthy but not yet inventoried: not routable until its models are known.
    b.state = (t->record.state == BackendState::kHealthy && !t->inventory_known)
                  ? BackendState::kUnknown
                  : t->record.state;
    b.slow_start_factor = policy_.slow_start_factor(t->record, now);
    for (const IndexEntry& e : t->index) {
      if (e.state != "READY") continue;
      auto& versions = b.models[e.name].ready;
      if (!e.version.empty()) versions.push_back(e.version);
    }
    b.index = t->index;
    b.extensions = t->extensions;
    b.server_name = t->server_name;
    b.server_version = t->server_version;
    b.runtime = t->runtime;
    infos.push_back(std::move(b));
  }
  fleet_ = std::make_shared<const routing::Fleet>(std::move(infos), ++generation_);
  if (publish_) publish_(fleet_);
}

}  // namespace infergate::health
