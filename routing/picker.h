// Chooses the backend for one request: least-loaded (outstanding requests divided by
// effective weight; a full scan for small candidate sets, power of two choices beyond),
// or round-robin or random for comparison. One Picker per worker; not thread-safe.
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
  };
  Status status = Status::kUnavailable;
  int position = -1;  // in fleet.backends() when picked
};

class Picker {
 public:
  // At or below this many candidates every one is compared; above it, two are sampled.
  static constexpr size_t kFullScanMax = 4;

  Picker(Policy policy, std::uint64_t seed) : policy_(policy), random_(seed) {}

  PickResult pick(const Fleet& fleet, const PickRequest& request);

  // The load score the least-loaded policy minimises.
  static double score(const BackendInfo& backend);

 private:
  bool excluded(const Fleet& fleet, std::uint32_t position, const PickRequest& request) const;
  int least_loaded(const Fleet& fleet, std::span<const std::uint32_t> candidates,
                   const PickRequest& request);

  Policy policy_;
  Random random_;
  std::uint64_t round_robin_ = 0;
};

}  // namespace infergate::routing
