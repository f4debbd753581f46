#include "gateway/fleet/fleet_answers.h"

#include <algorithm>
#include <map>
#include <set>

namespace infergate::gateway {

inference::ServerReadyResponse fleet_server_ready(const routing::Fleet& fleet) {
  inference::ServerReadyResponse r;
  r.set_ready(fleet.healthy_count() > 0);
  return r;
}

inference::ModelReadyResponse fleet_model_ready(const routing::Fleet& fleet,
                                                const inference::ModelReadyRequest& request) {
  inference::ModelReadyResponse r;
  r.set_ready(!fleet.candidates(request.name(), request.version()).empty());
  return r;
}

inference::RepositoryIndexResponse fleet_repository_index(const routing::Fleet& fleet,
                                                          bool ready_only) {
  // (name, version) -> entry; std::map keeps the answer in a stable order.
  std::map<std::pair<std::string, std::string>, routing::ModelIndexEntry> merged;
  for (std::uint32_t pos : fleet.routable()) {
    for (const routing::ModelIndexEntry& e : fleet.backends()[pos].index) {
      auto [it, inserted] = merged.emplace(std::make_pair(e.name, e.version), e);
      if (!inserted && e.state == "READY") it->second = e;
    }
  }
  inference::RepositoryIndexResponse r;
  for (const auto& [key, e] : merged) {
    if (ready_only && e.state != "READY") continue;
    auto* m = r.add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  return r;
}

namespace {

// Orders dotted versions by their numeric parts ("2.9.0" < "2.41.0"); parts that are not
// numbers compare as text.
bool version_less(std::string_view a, std::string_view b) {
  while (!a.empty() || !b.empty()) {
    const std::string_view pa = a.substr(0, a.find('.'));
    const std::string_view pb = b.substr(0, b.find('.'));
    a.remove_prefix(std::min(a.size(), pa.size() + 1));
    b.remove_prefix(std::min(b.size(), pb.size() + 1));
    const bool na = !pa.empty() && std::all_of(pa.begin(), pa.end(), ::isdigit);
    const bool nb = !pb.empty() && std::all_of(pb.begin(), pb.end(), ::isdigit);
    if (na && nb && pa.size() != pb.size()) return pa.size() < pb.size();
    if (pa != pb) return pa < pb;
  }
  return false;
}

}  // namespace

inference::ServerMetadataResponse fleet_server_metadata(const routing::Fleet& fleet) {
  // The name most healthy backends give (Triton's is "triton"), and the oldest version
  // among them: what a client may rely on wherever its request lands.
  std::map<std::string, int> names;
  for (std::uint32_t pos : fleet.routable()) {
    if (!fleet.backends()[pos].server_name.empty()) ++names[fleet.backends()[pos].server_name];
  }
  std::string name = "triton";
  int most = 0;
  for (const auto& [n, count] : names) {
    if (count > most) {
      name = n;
      most = count;
    }
  }
  std::string version;
  for (std::uint32_t pos : fleet.routable()) {
    const routing::BackendInfo& b = fleet.backends()[pos];
    if (b.server_name == name && (version.empty() || version_less(b.server_version, version))) {
      version = b.server_version;
    }
  }
  inference::ServerMetadataResponse r;
  r.set_name(name);
  r.set_version(version);
  std::vector<std::string> shared;
  bool first = true;
  for (std::uint32_t pos : fleet.routable()) {
    std::vector<std::string> ext = fleet.backends()[pos].extensions;
    std::sort(ext.begin(), ext.end());
    if (first) {
      shared = std::move(ext);
      first = false;
      continue;
    }
    std::vector<std::string> both;
    std::set_intersection(shared.begin(), shared.end(), ext.begin(), ext.end(),
                          std::back_inserter(both));
    shared = std::move(both);
  }
  for (const std::string& e : shared) r.add_extensions(e);
  return r;
}

namespace {

void add(inference::StatisticDuration* into, const inference::StatisticDuration& from) {
  into->set_count(into->count() + from.count());
  into->set_ns(into->ns() + from.ns());
}

void add(inference::InferStatistics* into, const inference::InferStatistics& from) {
  add(into->mutable_success(), from.success());
  add(into->mutable_fail(), from.fail());
  add(into->mutable_queue(), from.queue());
  add(into->mutable_compute_input(), from.compute_input());
  add(into->mutable_compute_infer(), from.compute_infer());
  add(into->mutable_compute_output(), from.compute_output());
  add(into->mutable_cache_hit(), from.cache_hit());
  add(into->mutable_cache_miss(), from.cache_miss());
}

void add(inference::InferResponseStatistics* into, const inference::InferResponseStatistics& from) {
  add(into->mutable_compute_infer(), from.compute_infer());
  add(into->mutable_compute_output(), from.compute_output());
  add(into->mutable_success(), from.success());
  add(into->mutable_fail(), from.fail());
  add(into->mutable_empty_response(), from.empty_response());
  add(into->mutable_cancel(), from.cancel());
}

void add(inference::ModelStatistics* into, const inference::ModelStatistics& from) {
  into->set_last_inference(std::max(into->last_inference(), from.last_inference()));
  into->set_inference_count(into->inference_count() + from.inference_count());
  into->set_execution_count(into->execution_count() + from.execution_count());
  add(into->mutable_inference_stats(), from.inference_stats());
  for (const auto& b : from.batch_stats()) {
    inference::InferBatchStatistics* target = nullptr;
    for (auto& mine : *into->mutable_batch_stats()) {
      if (mine.batch_size() == b.batch_size()) target = &mine;
    }
    if (target == nullptr) {
      *into->add_batch_stats() = b;
      continue;
    }
    add(target->mutable_compute_input(), b.compute_input());
    add(target->mutable_compute_infer(), b.compute_infer());
    add(target->mutable_compute_output(), b.compute_output());
  }
  for (const auto& m : from.memory_usage()) *into->add_memory_usage() = m;
  for (const auto& [key, stats] : from.response_stats()) {
    add(&(*into->mutable_response_stats())[key], stats);
  }
}

}  // namespace

inference::ModelStatisticsResponse merge_statistics(
    const std::vector<inference::ModelStatisticsResponse>& responses) {
  inference::ModelStatisticsResponse out;
  std::map<std::pair<std::string, std::string>, int> where;  // -> index in out
  for (const auto& response : responses) {
    for (const auto& stats : response.model_stats()) {
      auto key = std::make_pair(stats.name(), stats.version());
      auto it = where.find(key);
      if (it == where.end()) {
        where.emplace(key, out.model_stats_size());
        *out.add_model_stats() = stats;  // unknown fields come along
      } else {
        add(out.mutable_model_stats(it->second), stats);
      }
    }
  }
  return out;
}

}  // namespace infergate::gateway
