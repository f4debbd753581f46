// Health decisions for one backend, as pure functions of what was observed and when:
// active probe results, passive outlier reports from real traffic, the passage of time.
// The caller (HealthMonitor) applies the transitions, logs them and publishes the fleet.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "routing/fleet.h"

namespace infergate::health {

using routing::BackendState;
using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::nanoseconds;

struct HealthOptions {
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(500);
  std::uint32_t unhealthy_threshold = 2;  // consecutive probe failures
  std::uint32_t healthy_threshold = 2;    // consecutive probe successes to recover
  Duration inventory_interval = std::chrono::seconds(10);
  std::uint32_t consecutive_failures = 5;  // passive: failures in a row that eject
  Duration ejection_base = std::chrono::seconds(5);
  Duration ejection_max = std::chrono::seconds(60);
  double max_ejected_percent = 50;
  Duration slow_start = std::chrono::seconds(10);
};

// What the policy remembers about one backend.
struct HealthRecord {
  BackendState state = BackendState::kUnknown;
  std::uint32_t probe_failures = 0;   // consecutive
  std::uint32_t probe_successes = 0;  // consecutive
  std::uint32_t ejections = 0;        // recent ejections, for the growing ejection time
  TimePoint ejected_until{};
  TimePoint recovered_at{};  // start of the slow-start ramp; epoch = no ramp
  TimePoint healthy_since{};
};

struct Transition {
  BackendState from = BackendState::kUnknown;
  BackendState to = BackendState::kUnknown;
  std::string reason;

  bool changed() const { return from != to; }
};

class HealthPolicy {
 public:
  explicit HealthPolicy(HealthOptions options) : options_(options) {}
  const HealthOptions& options() const { return options_; }

  // One active probe (ServerLive and ServerReady) finished.
  Transition on_probe(HealthRecord& r, bool ok, const std::string& detail, TimePoint now) const;

  // Real traffic saw `consecutive_failures` failures in a row. `ejected_now` and
  // `fleet_size` enforce max_ejected_percent.
  Transition on_outliers(HealthRecord& r, size_t ejected_now, size_t fleet_size,
                         TimePoint now) const;

  // Time passing: ejections expire.
  Transition on_tick(HealthRecord& r, TimePoint now) const;

  // A backend being removed: no new requests; it leaves once idle.
  Transition begin_drain(HealthRecord& r) const;

  // The weight multiplier during slow start: ramps from 0.1 to 1 over slow_start.
  double slow_start_factor(const HealthRecord& r, TimePoint now) const;
  // How long the next ejection lasts.
  Duration ejection_time(std::uint32_t ejections) const;

 private:
  Transition move(HealthRecord& r, BackendState to, std::string reason, TimePoint now) const;

  HealthOptions options_;
};

}  // namespace infergate::health
