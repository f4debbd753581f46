#include "routing/fleet.h"

#include <algorithm>

namespace infergate::routing {

std::string_view backend_state_name(BackendState state) {
  switch (state) {
    case BackendState::kUnknown:
      return "unknown";
    case BackendState::kHealthy:
      return "healthy";
    case BackendState::kUnhealthy:
      return "unhealthy";
    case BackendState::kEjected:
      return "ejected";
    case BackendState::kDraining:
      return "draining";
  }
  return "unknown";
}

bool BackendRuntime::try_acquire(std::uint32_t cap) {
  if (cap == 0) {
    outstanding.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::int64_t n = outstanding.load(std::memory_order_relaxed);
  do {
    if (n >= std::int64_t{cap}) return false;
  } while (!outstanding.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

void BackendRuntime::observe_latency(std::uint64_t ns) {
  ns = std::max<std::uint64_t>(ns, 1);  // 0 means "no sample yet"
  std::uint64_t old = latency_ewma_ns.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    // Integer EWMA with weight 1/8; the first sample is taken as is.
    next = old == 0 ? ns : old - old / 8 + ns / 8;
  } while (!latency_ewma_ns.compare_exchange_weak(old, next, std::memory_order_relaxed));
}

bool ModelVersions::has(std::string_view version) const {
  return ready.empty() || std::find(ready.begin(), ready.end(), version) != ready.end();
}

namespace {

std::string version_key(std::string_view model, std::string_view version) {
  std::string key(model);
  key.push_back('\0');
  key.append(version);
  return key;
}

}  // namespace

Fleet::Fleet(std::vector<BackendInfo> backends, std::uint64_t generation)
    : backends_(std::move(backends)), generation_(generation) {
  for (std::uint32_t pos = 0; pos < backends_.size(); ++pos) {
    const BackendInfo& b = backends_[pos];
    has_caps_ = has_caps_ || b.max_inflight != 0;
    for (const auto& [model, versions] : b.models) {
      known_[model] = true;
      for (const std::string& v : versions.ready) known_[version_key(model, v)] = true;
      if (versions.ready.empty()) known_any_version_[model] = true;
    }
    if (!b.routable()) continue;
    routable_.push_back(pos);
    for (const auto& [model, versions] : b.models) {
      candidates_[model].push_back(pos);
      for (const std::string& v : versions.ready) candidates_[version_key(model, v)].push_back(pos);
      if (versions.ready.empty()) unversioned_[model].push_back(pos);
    }
  }
}

int Fleet::find(std::uint32_t id) const {
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (backends_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

const std::vector<std::uint32_t>& Fleet::candidates(std::string_view model,
                                                    std::string_view version) const {
  if (version.empty()) {
    auto it = candidates_.find(model);
    return it == candidates_.end() ? none_ : it->second;
  }
  auto it = candidates_.find(version_key(model, version));
  if (it != candidates_.end()) return it->second;
  // Backends that list the model without versions may serve any version.
  auto any = unversioned_.find(model);
  return any == unversioned_.end() ? none_ : any->second;
}

bool Fleet::known(std::string_view model) const { return known_.find(model) != known_.end(); }

bool Fleet::known(std::string_view model, std::string_view version) const {
  if (version.empty()) return known(model);
  return known_.find(version_key(model, version)) != known_.end() ||
         known_any_version_.find(model) != known_any_version_.end();
}

}  // namespace infergate::routing
