// What the gateway knows of one backend's own Triton metrics: the last good scrape's
// signals, whether they are fresh, and why the last scrape failed. TritonRecord holds
// it and decides, as a pure function of scrape outcomes and the time they were seen,
// what is fresh, what routing may use and when the failure is worth a log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "health/triton_metrics.h"

namespace infergate::health {

// One backend with a metrics_url, as FleetControl::triton_signals() reports it.
struct TritonStatus {
  std::string backend;  // its name, the metric label
  std::string url;
  // The last scrape succeeded and is younger than the freshness limit (3 intervals).
  bool fresh = false;
  TritonSignals signals;  // from the last successful scrape; all absent before one
  // Mean time a request spent in Triton's queue, over the requests that succeeded
  // between the last two successful scrapes; absent when none did, or a counter reset.
  std::optional<double> queue_seconds_per_request;
  std::optional<double> seconds_since_success;  // absent before the first success
  std::string last_error;     // why the last scrape failed; empty when it succeeded
  std::uint64_t scrapes = 0;  // finished scrapes, good or not
  std::uint64_t failures = 0;
};

// Every backend with a metrics_url, in name order.
using TritonSnapshot = std::vector<TritonStatus>;

class TritonRecord {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // What a scrape outcome means for the logs.
  enum class Change : std::uint8_t {
    kNone,       // as before
    kFailing,    // the first failure since the last success (or ever): warn once
    kRecovered,  // the first success after failures: an info line
  };

  // A scrape returned usable signals at `now`.
  Change on_success(const TritonSignals& signals, TimePoint now);
  // A scrape failed at `now` (connect, timeout, HTTP status, garbage): stale until the
  // next success.
  Change on_failure(std::string error, TimePoint now);

  // The last scrape succeeded less than `max_age` ago.
  bool fresh(TimePoint now, std::chrono::nanoseconds max_age) const;
  // Triton's pending count for routing's tie-break: -1 unless fresh and reported.
  std::int64_t routing_pending(TimePoint now, std::chrono::nanoseconds max_age) const;
  // The record as the snapshot shows it (backend and url left to the caller).
  TritonStatus status(TimePoint now, std::chrono::nanoseconds max_age) const;

 private:
  TritonSignals signals_;
  std::optional<double> queue_per_request_;
  std::optional<TimePoint> last_success_;
  bool last_ok_ = false;
  bool failing_ = false;
  std::string last_error_;
  std::uint64_t scrapes_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace infergate::health
