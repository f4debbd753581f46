// Per-worker request statistics. Written only by the owning worker (relaxed atomic
// stores, no read-modify-write), read by the admin thread when /metrics is scraped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.h"
#include "gateway/wire/grpc_status.h"
#include "gateway/wire/methods.h"
#include "routing/backend_stats.h"
#include "routing/fleet.h"

namespace infergate::gateway {

// A single-writer counter: the writer adds without a locked instruction.
class LocalCounter {
 public:
  void add(std::uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Why a client connection was closed for abusing the protocol or a bound on it (the
// reason label of infergate_client_protocol_errors_total).
enum class ProtocolError : std::uint8_t {
  kRapidReset,
  kHeaderFlood,
  kSettingsFlood,
  kPingFlood,
  kFlowControl,
  kProtocol,
  kHandshakeTimeout,
  kIdleTimeout,
  kWriteStalled,
  kConnectionLimit,
};
inline constexpr std::array<std::string_view, 10> kProtocolErrorNames = {
    "rapid_reset", "header_flood",      "settings_flood", "ping_flood",    "flow_control",
    "protocol",    "handshake_timeout", "idle_timeout",   "write_stalled", "connection_limit"};

// Why a TLS handshake failed (infergate_tls_handshake_failures_total{reason}); in the
// order of TlsFailure (gateway/h2/tls.h).
inline constexpr std::array<std::string_view, 6> kTlsFailureNames = {"plaintext",
                                                                     "no_common_protocol",
                                                                     "no_client_certificate",
                                                                     "bad_client_certificate",
                                                                     "client_rejected_certificate",
                                                                     "other"};

// Why a request was refused before it reached a backend, for who it was
// (infergate_auth_failures_total{reason}).
inline constexpr auto kAuthFailureNames = auth::kFailureNames;

// Why the gateway ended a stream on a deadline (infergate_stream_timeouts_total{reason});
// in the order of ProxyStream::Expiry.
inline constexpr std::array<std::string_view, 4> kExpiryNames = {"deadline", "stream_idle",
                                                                 "backend_idle", "backend_wait"};
// The byte caps a request can run into (infergate_requests_over_limit_total{limit}).
inline constexpr std::array<std::string_view, 5> kByteCapNames = {
    "limits.max_buffered_bytes", "limits.max_routing_fields_bytes", "limits.max_reorder_bytes",
    "limits.max_control_message_bytes", "limits.max_sequence_table_bytes"};

class WorkerStats {
 public:
  // Upper bounds of the latency histogram buckets, in seconds (+Inf is implicit).
  static constexpr const std::array<double, 17>& kLatencyBounds = routing::kLatencyBounds;
  // The gateway's own time per request is far smaller: finer buckets.
  static constexpr std::array<double, 17> kOverheadBounds = {
      0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,    0.01,    0.025,    0.05,    0.1,    0.25,    0.5,    1.0};
  static constexpr size_t kBuckets = kLatencyBounds.size() + 1;
  static constexpr size_t kMaxModels = 64;  // distinct model labels; then "other"

  struct Series {
    LocalCounter count;
    LocalCounter sum_ns;
    std::array<LocalCounter, kBuckets> buckets;  // non-cumulative
  };

  // A model's series; its name is published once the slot is claimed.
  struct ModelSeries {
    std::atomic<const std::string*> name{nullptr};
    Series series;
    // What an autoscaler needs: requests of the model waiting in the gateway (admission
    // queue, a backend slot) and on a backend now (owner writes, anyone reads), and how
    // long each waited before it went to a backend.
    std::atomic<std::int64_t> waiting{0};
    std::atomic<std::int64_t> inflight{0};
    Series queue_wait;
  };

  // One finished RPC: its method, final status and end-to-end time in the gateway.
  void record(Method method, GrpcCode code, std::chrono::nanoseconds latency);
  // An inference RPC's end-to-end time, by model (a name the fleet does not know is
  // passed as "other" by the caller, keeping the label set bounded). Owner only.
  void record_model(std::string_view model, std::chrono::nanoseconds latency);
  // The same, for the model in `slot` (from model_slot()). Owner only.
  void record_model(size_t slot, std::chrono::nanoseconds latency);
  // The slot of `model` ("other" past kMaxModels). Owner only.
  size_t model_slot(std::string_view model);
  // A request of the model in `slot` began waiting, went to a backend after `waited`, or
  // left the gateway. Owner only.
  void model_waiting(size_t slot, int delta) { bump(models_[slot].waiting, delta); }
  void model_inflight(size_t slot, int delta) { bump(models_[slot].inflight, delta); }
  void model_waited(size_t slot, std::chrono::nanoseconds waited);
  // A ModelInfer's time inside the gateway: end to end, less the backend's time and the
  // admission queue wait. Owner only.
  void record_overhead(std::chrono::nanoseconds overhead);

  const std::array<ModelSeries, kMaxModels>& models() const { return models_; }
  const Series& overhead() const { return overhead_; }

  const Series& series(Method method, GrpcCode code) const {
    return series_[static_cast<size_t>(method)][static_cast<size_t>(code)];
  }

  LocalCounter downstream_connections_total;
  LocalCounter upstream_connections_total;
  LocalCounter upstream_connect_failures_total;
  LocalCounter request_bytes_total;   // request body bytes forwarded to backends
  LocalCounter response_bytes_total;  // response body bytes forwarded to clients
  LocalCounter retries_total;         // requests tried again on another backend
  std::array<LocalCounter, kProtocolErrorNames.size()> protocol_errors;
  std::array<LocalCounter, kExpiryNames.size()> expiries;
  std::array<LocalCounter, kByteCapNames.size()> over_limit;
  std::array<LocalCounter, kTlsFailureNames.size()> tls_failures;
  std::array<LocalCounter, kAuthFailureNames.size()> auth_failures;

  void count_protocol_error(ProtocolError e) { protocol_errors[static_cast<size_t>(e)].add(1); }
  void count_expiry(size_t reason) { expiries[reason].add(1); }
  // `limit` is one of kByteCapNames.
  void count_refusal(std::string_view limit) {
    for (size_t i = 0; i < kByteCapNames.size(); ++i) {
      if (kByteCapNames[i] == limit) over_limit[i].add(1);
    }
  }

 private:
  static void bump(std::atomic<std::int64_t>& gauge, int delta) {
    gauge.store(gauge.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  std::array<std::array<Series, kGrpcCodeCount>, kMethodCount> series_;
  std::array<ModelSeries, kMaxModels> models_;
  routing::StringMap<size_t> model_slots_;  // owner only
  std::vector<std::unique_ptr<const std::string>> model_names_;
  Series overhead_;
};

}  // namespace infergate::gateway
