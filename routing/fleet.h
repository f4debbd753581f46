// The fleet as routing sees it: an immutable snapshot of every backend's state, weight
// and ready models, published by the control plane and pinned by each request for its
// life. Live per-backend counters (outstanding requests) are atomics in BackendRuntime,
// shared by all snapshots that contain the backend. Standard library only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/backend_stats.h"

namespace infergate::routing {

// Hashes std::string keys and looks them up by std::string_view without building a
// string (a lookup per request must not allocate).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

enum class BackendState : std::uint8_t { kUnknown, kHealthy, kUnhealthy, kEjected, kDraining };

std::string_view backend_state_name(BackendState state);

// Counters the data plane updates as requests come and go. Any thread.
struct BackendRuntime {
  std::atomic<std::int64_t> outstanding{0};
  // Of those, requests outstanding far longer than this backend usually takes (marked
  // by the gateway's tick): a backend that stops answering scores as heavily loaded.
  std::atomic<std::int64_t> overdue{0};
  // Consecutive transport failures or UNAVAILABLE/INTERNAL answers (passive detection).
  std::atomic<std::uint32_t> consecutive_failures{0};
  // Message bytes sent to the backend and received from it, as they crossed the wire
  // (after compression); and the requests compressed for it: bytes in and out, CPU time.
  std::atomic<std::uint64_t> request_wire_bytes{0};
  std::atomic<std::uint64_t> response_wire_bytes{0};
  std::atomic<std::uint64_t> compressed_requests{0};
  std::atomic<std::uint64_t> compression_in_bytes{0};
  std::atomic<std::uint64_t> compression_out_bytes{0};
  std::atomic<std::uint64_t> compression_ns{0};
  // Answers, latencies, failures, retries and ejections (for /metrics and /status).
  BackendStats stats;

  // Takes one of at most `cap` concurrent slots (0: no cap): outstanding + 1, unless that
  // would exceed the cap. The one place a capped backend's count may grow.
  bool try_acquire(std::uint32_t cap);

  // Moving average of recent completed inference latencies, in nanoseconds; 0 until the
  // first one. Includes the backend's queueing, which is what makes it useful.
  std::atomic<std::uint64_t> latency_ewma_ns{0};

  // Folds one completed request's latency into latency_ewma_ns (weight 1/8).
  void observe_latency(std::uint64_t ns);

  // Requests waiting inside the backend itself (Triton's own
  // nv_inference_pending_request_count), from its scraped metrics; -1 when unknown or
  // stale. Set by the control plane's metrics scraper; least-loaded breaks ties with it.
  std::atomic<std::int64_t> triton_pending{-1};
};

// The versions of one model that a backend has ready.
struct ModelVersions {
  std::vector<std::string> ready;  // empty: the inventory said READY without versions

  bool has(std::string_view version) const;
};

// One model version as a backend's RepositoryIndex lists it.
struct ModelIndexEntry {
  std::string name;
  std::string version;
  std::string state;  // "READY", "UNAVAILABLE", ...
  std::string reason;
};

struct BackendInfo {
  std::uint32_t id = 0;  // stable for the backend's life; indexes per-worker pools
  std::string name;
  std::string address;
  double weight = 1.0;
  std::uint32_t max_inflight = 0;  // concurrent requests the gateway may send it; 0: no cap
  BackendState state = BackendState::kUnknown;
  double slow_start_factor = 1.0;                         // (0, 1]: ramps up after recovery
  std::unordered_map<std::string, ModelVersions> models;  // READY ones, for routing
  std::vector<ModelIndexEntry> index;                     // everything listed
  std::vector<std::string> extensions;                    // from ServerMetadata
  std::string server_name;  // what its ServerMetadata says it is ("triton"); may be empty
  std::string server_version;
  std::shared_ptr<BackendRuntime> runtime;

  // Takes new requests: healthy (slow start included).
  bool routable() const { return state == BackendState::kHealthy; }
  double effective_weight() const { return weight * slow_start_factor; }
  // At its max_inflight now (a hint: try_acquire decides).
  bool full() const {
    return max_inflight != 0 &&
           runtime->outstanding.load(std::memory_order_relaxed) >= std::int64_t{max_inflight};
  }
};

class Fleet {
 public:
  explicit Fleet(std::vector<BackendInfo> backends, std::uint64_t generation = 0);

  const std::vector<BackendInfo>& backends() const { return backends_; }
  std::uint64_t generation() const { return generation_; }

  // Position of the backend with this id, or -1.
  int find(std::uint32_t id) const;

  // Positions (in backends()) of the routable backends on which `model` (and
  // `version`, if not empty) is ready.
  const std::vector<std::uint32_t>& candidates(std::string_view model,
                                               std::string_view version) const;
  // True if any backend of the fleet, in any state, has listed the model (with this
  // version, if not empty; a backend that lists the model without versions knows them
  // all). Not known: NOT_FOUND, as Triton answers; known but not ready: UNAVAILABLE.
  bool known(std::string_view model) const;
  bool known(std::string_view model, std::string_view version) const;
  // Positions of the routable backends, whatever their models.
  const std::vector<std::uint32_t>& routable() const { return routable_; }
  size_t healthy_count() const { return routable_.size(); }
  // Some backend has a max_inflight.
  bool has_caps() const { return has_caps_; }

 private:
  std::vector<BackendInfo> backends_;
  std::uint64_t generation_;
  // Positions in backends_, by "model" and by "model\0version".
  StringMap<std::vector<std::uint32_t>> candidates_;
  StringMap<std::vector<std::uint32_t>> unversioned_;
  StringMap<bool> known_;              // by "model" and by "model\0version"
  StringMap<bool> known_any_version_;  // models some backend lists without versions
  std::vector<std::uint32_t> routable_;
  std::vector<std::uint32_t> none_;
  bool has_caps_ = false;
};

}  // namespace infergate::routing
