// /status and /status.json: the fleet at a glance. A tracker samples each backend's
// counters every few seconds on the control thread, so rates and latency percentiles
// describe the recent past rather than the whole life of the process.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gateway/stream/admission_gate.h"
#include "routing/admission.h"
#include "routing/fleet.h"

namespace infergate::gateway {

// A backend's recent traffic, from the tracker's samples.
struct BackendRecent {
  double requests_per_second = 0;
  double errors_per_second = 0;  // non-OK answers and transport failures
  std::optional<double> p50_seconds;
  std::optional<double> p99_seconds;
  double window_seconds = 0;  // what the rates cover (0: no second sample yet)
};

// Triton's own signals for a backend (from its metrics_url), when fresh.
struct BackendGpu {
  std::optional<double> utilization;  // 0..1
  std::optional<double> memory_used_bytes;
  std::optional<double> memory_total_bytes;
  std::optional<double> pending_requests;
  bool fresh = false;
};

struct StatusInputs {
  std::string version;  // infergate's
  std::string policy;
  std::string config_source;
  std::string config_version;  // a hash of the config file's text
  std::chrono::system_clock::time_point started_at;
  std::chrono::system_clock::time_point config_loaded_at;
  std::shared_ptr<const routing::Fleet> fleet;
  std::map<std::string, BackendRecent> recent;  // by backend name
  std::map<std::string, BackendGpu> gpus;       // by backend name (metrics_url set)
  bool admission_enabled = false;
  routing::AdmissionLimits limits;
  AdmissionGate::Stats admission;
  std::uint64_t active_streams = 0;
  bool draining = false;
};

std::string status_json(const StatusInputs& in);
std::string status_html(const StatusInputs& in);

// The p-quantile (0..1) of a histogram with non-cumulative bucket counts over
// routing::kLatencyBounds (+Inf last), interpolated within its bucket; nullopt if empty.
std::optional<double> histogram_quantile(
    double q, const std::array<std::uint64_t, routing::BackendStats::kBuckets>& buckets);

class StatusTracker {
 public:
  using FleetSource = std::function<std::shared_ptr<const routing::Fleet>()>;
  static constexpr std::chrono::seconds kInterval{2};
  static constexpr size_t kKeep = 6;  // samples per backend: ~10 s of window

  StatusTracker(boost::asio::io_context& control, FleetSource fleet);
  void start();
  void stop();
  // The recent traffic of every backend sampled so far. Control thread.
  std::map<std::string, BackendRecent> recent() const;

 private:
  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t answered = 0;
    std::uint64_t errors = 0;
    std::array<std::uint64_t, routing::BackendStats::kBuckets> buckets{};
  };
  void sample();
  void arm();

  boost::asio::steady_timer timer_;
  FleetSource fleet_;
  std::map<std::string, std::deque<Sample>> samples_;
  bool running_ = false;
};

}  // namespace infergate::gateway
