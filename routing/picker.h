// Chooses the backend for one request: least-loaded (outstanding requests divided by
// effective weight; a full scan for small candidate sets, power of two choices beyond;
// equal scores go to the backend with fewer requests pending inside Triton, when its
// scraped metrics say so), or round-robin or random for comparison. One Picker per
// worker; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "routing/fleet.h"
#include "routing/random.h"

namespace infergate::routing {

enum class Policy : std::uint8_t { kLeastLoaded, kRoundRobin, kRandom };

struct PickRequest {
  std::string_view model;                  // empty: any routable backend will do
  std::string_view version;                // empty: any version
  std::span<const std::uint32_t> exclude;  // backend ids already tried (retries)
};

struct PickResult {
  enum class Status : std::uint8_t {
    kPicked,
    kNotFound,     // no backend in the fleet knows the model
    kUnavailable,  // the model is known, but no routable backend has it ready
    kFull,         // the backends that could serve it are all at their max_inflight
  };
  Status status = Status::kUnavailable;
  int position = -1;  // in fleet.backends() when picked
};

class Picker {
 public:
  // At or below this many candidates every one is compared; above it, two are sampled.
  static constexpr size_t kFullScanMax = 4;
  // How many outstanding requests one overdue request (BackendRuntime::overdue) weighs.
  static constexpr std::int64_t kOverdueWeight = 8;

  // latency_aware: least-loaded multiplies each backend's load by its recent latency, so
  // a backend that is slower per request gets proportionally fewer of them.
  Picker(Policy policy, std::uint64_t seed, bool latency_aware = false)
      : policy_(policy), random_(seed), latency_aware_(latency_aware) {}

  PickResult pick(const Fleet& fleet, const PickRequest& request);

  // The backend for a new sequence, by weighted rendezvous hashing of `key` (model and
  // sequence id) over the candidates' names and configured weights: every gateway with
  // the same view of the fleet picks the same one, with no shared state, and a backend
  // joining or leaving moves only the sequences it wins or held. When the winner is at
  // its max_inflight: kFull (the sequence waits for it; nowhere else is the same).
  static PickResult pick_by_hash(const Fleet& fleet, const PickRequest& request,
                                 std::string_view key);
  // The rendezvous score of a backend named `name` with `weight` for `key` (higher wins).
  static double rendezvous_score(std::string_view key, std::string_view name, double weight);

  // The load score the least-loaded policy minimises: (outstanding + 1) / effective
  // weight; with a latency unit (the fastest compared backend's recent latency), times
  // how much slower than that this backend has been. An idle backend's past latency is
  // not held against it (otherwise one slow moment could starve it for good).
  static double score(const BackendInfo& backend, double latency_unit_ns = 0);
  // Between two backends of equal score: true if both report how many requests wait
  // inside them (Triton's pending count, while fresh) and `a` has fewer. Unknown counts
  // never win or lose a tie.
  static bool fewer_pending(const BackendInfo& a, const BackendInfo& b);
  // The smallest recent latency among these backends, or 0 if any has none yet.
  static double latency_unit(const std::vector<BackendInfo>& backends,
                             std::span<const std::uint32_t> positions);

 private:
  // Already tried by this request (its retries exclude them).
  static bool tried(const Fleet& fleet, std::uint32_t position, const PickRequest& request);
  // Tried, or at its max_inflight.
  bool excluded(const Fleet& fleet, std::uint32_t position, const PickRequest& request) const;
  int least_loaded(const Fleet& fleet, std::span<const std::uint32_t> candidates,
                   const PickRequest& request);

  Policy policy_;
  Random random_;
  std::uint64_t round_robin_ = 0;
  bool latency_aware_ = false;
};

}  // namespace infergate::routing
