#include "routing/picker.h"

#include <cmath>

#include <algorithm>
#include <limits>

namespace infergate::routing {

double Picker::score(const BackendInfo& backend, double latency_unit_ns) {
  // An overdue request counts as kOverdueWeight outstanding ones.
  const std::int64_t outstanding =
      backend.runtime->outstanding.load(std::memory_order_relaxed) +
      kOverdueWeight * backend.runtime->overdue.load(std::memory_order_relaxed);
  // +1: among idle backends the heavier weight still wins.
  double s = (static_cast<double>(outstanding) + 1.0) / std::max(backend.effective_weight(), 1e-6);
  if (latency_unit_ns > 0 && outstanding > 0) {
    const double latency =
        static_cast<double>(backend.runtime->latency_ewma_ns.load(std::memory_order_relaxed));
    s *= std::max(1.0, latency / latency_unit_ns);
  }
  return s;
}

double Picker::latency_unit(const std::vector<BackendInfo>& backends,
                            std::span<const std::uint32_t> positions) {
  double unit = 0;
  for (std::uint32_t p : positions) {
    const std::uint64_t ns = backends[p].runtime->latency_ewma_ns.load(std::memory_order_relaxed);
    if (ns == 0) return 0;  // compare only what has been measured
    if (unit == 0 || static_cast<double>(ns) < unit) unit = static_cast<double>(ns);
  }
  return unit;
}

bool Picker::tried(const Fleet& fleet, std::uint32_t position, const PickRequest& request) {
  const std::uint32_t id = fleet.backends()[position].id;
  return std::find(request.exclude.begin(), request.exclude.end(), id) != request.exclude.end();
}

bool Picker::excluded(const Fleet& fleet, std::uint32_t position,
                      const PickRequest& request) const {
  return tried(fleet, position, request) || fleet.backends()[position].full();
}

namespace {

// 64-bit FNV-1a over `a`, a separator and `b`, then a 64-bit finaliser (splitmix64): a
// hash that is the same in every process and build, as rendezvous hashing across
// gateways needs.
std::uint64_t stable_hash(std::string_view a, std::string_view b) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(a);
  mix(std::string_view("\0", 1));
  mix(b);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

}  // namespace

double Picker::rendezvous_score(std::string_view key, std::string_view name, double weight) {
  // u uniform in (0, 1); -weight / ln(u) is weighted rendezvous hashing: each backend wins
  // in proportion to its weight.
  const double u = (static_cast<double>(stable_hash(key, name) >> 11) + 0.5) / 9007199254740992.0;
  return -weight / std::log(u);
}

PickResult Picker::pick_by_hash(const Fleet& fleet, const PickRequest& request,
                                std::string_view key) {
  const std::vector<std::uint32_t>& candidates =
      request.model.empty() ? fleet.routable() : fleet.candidates(request.model, request.version);
  int best = -1;
  double best_score = 0;
  for (std::uint32_t p : candidates) {
    if (tried(fleet, p, request)) continue;
    const BackendInfo& b = fleet.backends()[p];
    const double s = rendezvous_score(key, b.name, b.weight);
    if (best < 0 || s > best_score || (s == best_score && b.name < fleet.backends()[best].name)) {
      best = static_cast<int>(p);
      best_score = s;
    }
  }
  if (best < 0) {
    const bool known = request.model.empty() || fleet.known(request.model, request.version);
    return {known ? PickResult::Status::kUnavailable : PickResult::Status::kNotFound, -1};
  }
  if (fleet.backends()[best].full()) return {PickResult::Status::kFull, -1};
  return {PickResult::Status::kPicked, best};
}

PickResult Picker::pick(const Fleet& fleet, const PickRequest& request) {
  const std::vector<std::uint32_t>& candidates =
      request.model.empty() ? fleet.routable() : fleet.candidates(request.model, request.version);
  size_t usable = candidates.size();
  if (!request.exclude.empty() || fleet.has_caps()) {
    size_t untried = 0;
    usable = 0;
    for (std::uint32_t p : candidates) {
      if (tried(fleet, p, request)) continue;
      ++untried;
      usable += !fleet.backends()[p].full();
    }
    if (untried > 0 && usable == 0) return {PickResult::Status::kFull, -1};
  }
  if (usable == 0) {
    const bool known = request.model.empty() || fleet.known(request.model, request.version);
    return {known ? PickResult::Status::kUnavailable : PickResult::Status::kNotFound, -1};
  }
  int chosen = -1;
  switch (policy_) {
    case Policy::kLeastLoaded:
      chosen = least_loaded(fleet, candidates, request);
      break;
    case Policy::kRoundRobin:
    case Policy::kRandom: {
      std::uint64_t n =
          policy_ == Policy::kRandom ? random_.below(usable) : round_robin_++ % usable;
      for (std::uint32_t p : candidates) {
        if (excluded(fleet, p, request)) continue;
        if (n-- == 0) {
          chosen = static_cast<int>(p);
          break;
        }
      }
      break;
    }
  }
  // Another worker may fill the last free backend between the count above and the
  // choice: then nothing is left to pick, and the request waits as for a full fleet.
  if (chosen < 0) return {PickResult::Status::kFull, -1};
  return {PickResult::Status::kPicked, chosen};
}

bool Picker::fewer_pending(const BackendInfo& a, const BackendInfo& b) {
  const std::int64_t pa = a.runtime->triton_pending.load(std::memory_order_relaxed);
  const std::int64_t pb = b.runtime->triton_pending.load(std::memory_order_relaxed);
  return pa >= 0 && pb >= 0 && pa < pb;
}

int Picker::least_loaded(const Fleet& fleet, std::span<const std::uint32_t> candidates,
                         const PickRequest& request) {
  const auto& backends = fleet.backends();
  if (candidates.size() <= kFullScanMax || !request.exclude.empty() || fleet.has_caps()) {
    // Small sets: compare all. Among the best scores, a backend whose Triton reports more
    // pending requests than another tied one loses; the rest (the fewest known pending,
    // and those with no known count) share the load at random, so equal backends do.
    int best = -1;        // a random one of the tied backends with no known pending count
    int best_known = -1;  // a random one of those with the fewest known pending
    double best_score = std::numeric_limits<double>::infinity();
    std::int64_t least_pending = std::numeric_limits<std::int64_t>::max();
    std::uint64_t ties = 0;
    std::uint64_t known_ties = 0;
    const double unit = latency_aware_ ? latency_unit(backends, candidates) : 0;
    for (std::uint32_t p : candidates) {
      if (excluded(fleet, p, request)) continue;
      const double s = score(backends[p], unit);
      if (s > best_score) continue;
      if (s < best_score) {
        best_score = s;
        best = best_known = -1;
        ties = known_ties = 0;
        least_pending = std::numeric_limits<std::int64_t>::max();
      }
      const std::int64_t pending =
          backends[p].runtime->triton_pending.load(std::memory_order_relaxed);
      if (pending < 0) {
        if (++ties == 1 || random_.below(ties) == 0) best = static_cast<int>(p);
      } else if (pending < least_pending) {
        least_pending = pending;
        best_known = static_cast<int>(p);
        known_ties = 1;
      } else if (pending == least_pending && random_.below(++known_ties) == 0) {
        best_known = static_cast<int>(p);
      }
    }
    if (known_ties == 0) return best;
    if (ties == 0) return best_known;
    return random_.below(ties + known_ties) < known_ties ? best_known : best;
  }
  // Power of two choices: two distinct random candidates, the less loaded wins.
  const std::uint64_t n = candidates.size();
  const std::uint64_t a = random_.below(n);
  std::uint64_t b = random_.below(n - 1);
  if (b >= a) ++b;
  const std::uint32_t pair[2] = {candidates[a], candidates[b]};
  const double unit = latency_aware_ ? latency_unit(backends, pair) : 0;
  const double sa = score(backends[pair[0]], unit);
  const double sb = score(backends[pair[1]], unit);
  if (sa == sb && fewer_pending(backends[pair[1]], backends[pair[0]])) {
    return static_cast<int>(candidates[b]);
  }
  return static_cast<int>(sa <= sb ? candidates[a] : candidates[b]);
}

}  // namespace infergate::routing
