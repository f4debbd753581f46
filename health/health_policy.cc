#include "health/health_policy.h"

#include <algorithm>

namespace infergate::health {

Transition HealthPolicy::move(HealthRecord& r, BackendState to, std::string reason,
                              TimePoint now) const {
  Transition t{.from = r.state, .to = to, .reason = std::move(reason)};
  if (!t.changed()) return t;
  if (to == BackendState::kHealthy) {
    // Recovering from a failure ramps up; the first success after startup does not.
    const bool recovering =
        r.state == BackendState::kUnhealthy || r.state == BackendState::kEjected;
    r.recovered_at = recovering ? now : TimePoint{};
    r.healthy_since = now;
  }
  r.state = to;
  return t;
}

Transition HealthPolicy::on_probe(HealthRecord& r, bool ok, const std::string& detail,
                                  TimePoint now) const {
  if (r.state == BackendState::kDraining) return {r.state, r.state, ""};
  if (ok) {
    r.probe_failures = 0;
    ++r.probe_successes;
    if (r.state == BackendState::kUnknown) {
      return move(r, BackendState::kHealthy, "first probe succeeded", now);
    }
    if (r.state == BackendState::kUnhealthy && r.probe_successes >= options_.healthy_threshold) {
      return move(r, BackendState::kHealthy,
                  std::to_string(r.probe_successes) + " probes in a row succeeded", now);
    }
    return {r.state, r.state, ""};
  }
  r.probe_successes = 0;
  ++r.probe_failures;
  if (r.probe_failures >= options_.unhealthy_threshold && r.state != BackendState::kUnhealthy) {
    return move(r, BackendState::kUnhealthy,
                std::to_string(r.probe_failures) + " probes in a row failed: " + detail, now);
  }
  return {r.state, r.state, ""};
}

Duration HealthPolicy::ejection_time(std::uint32_t ejections) const {
  // base, 2 base, 4 base, ... capped.
  Duration t = options_.ejection_base;
  for (std::uint32_t i = 1; i < ejections && t < options_.ejection_max; ++i) t *= 2;
  return std::min(t, options_.ejection_max);
}

Transition HealthPolicy::on_outliers(HealthRecord& r, size_t ejected_now, size_t fleet_size,
                                     TimePoint now) const {
  if (r.state != BackendState::kHealthy) return {r.state, r.state, ""};
  const double share = 100.0 * static_cast<double>(ejected_now + 1) /
                       static_cast<double>(std::max<size_t>(fleet_size, 1));
  if (share > options_.max_ejected_percent) {
    return {r.state, r.state,
            "not ejected: " + std::to_string(ejected_now) + " of " + std::to_string(fleet_size) +
                " backends are out already (max_ejected_percent)"};
  }
  ++r.ejections;
  const Duration length = ejection_time(r.ejections);
  r.ejected_until = now + length;
  return move(
      r, BackendState::kEjected,
      std::to_string(options_.consecutive_failures) + " failed requests in a row; ejected for " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(length).count()) +
          "ms",
      now);
}

Transition HealthPolicy::on_tick(HealthRecord& r, TimePoint now) const {
  if (r.state == BackendState::kEjected && now >= r.ejected_until) {
    return move(r, BackendState::kHealthy, "ejection time over", now);
  }
  // A backend that stays healthy for ejection_max is forgiven its past ejections.
  if (r.state == BackendState::kHealthy && r.ejections > 0 &&
      now - r.healthy_since >= options_.ejection_max) {
    r.ejections = 0;
  }
  return {r.state, r.state, ""};
}

Transition HealthPolicy::begin_drain(HealthRecord& r) const {
  Transition t{.from = r.state, .to = BackendState::kDraining, .reason = "removed from the config"};
  r.state = BackendState::kDraining;
  return t;
}

double HealthPolicy::slow_start_factor(const HealthRecord& r, TimePoint now) const {
  if (r.recovered_at == TimePoint{} || options_.slow_start.count() <= 0) return 1.0;
  const double elapsed = std::chrono::duration<double>(now - r.recovered_at).count();
  const double window = std::chrono::duration<double>(options_.slow_start).count();
  return std::clamp(elapsed / window, 0.1, 1.0);
}

}  // namespace infergate::health
