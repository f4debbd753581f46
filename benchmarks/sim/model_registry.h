// The models a simulator serves: per model its spec, readiness and prebuilt metadata and
// config messages; per version the instance scheduler, the accumulate sequences and the
// statistics counters. Built once at startup; every method is safe from any thread.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/sim/core/latency_model.h"
#include "benchmarks/sim/core/sequence_table.h"
#include "benchmarks/sim/core/sim_options.h"
#include "inference/grpc_service.pb.h"

namespace infergate::sim {

using SteadyTime = std::chrono::steady_clock::time_point;

// Why a request failed, as Triton labels nv_inference_request_failure.
enum class FailReason { kRejected, kCanceled, kBackend, kOther };
inline constexpr int kFailReasons = 4;
const char* fail_reason_label(FailReason r);

// Cumulative counters of one model version, as ModelStatistics and /metrics report them.
struct VersionStats {
  std::atomic<std::uint64_t> last_inference_ms{0};  // since the Unix epoch
  std::atomic<std::uint64_t> inference_count{0};    // batch elements
  std::atomic<std::uint64_t> execution_count{0};
  std::atomic<std::uint64_t> success_count{0};
  std::atomic<std::uint64_t> success_ns{0};
  std::atomic<std::uint64_t> fail_count{0};
  std::atomic<std::uint64_t> fail_ns{0};
  std::atomic<std::uint64_t> queue_ns{0};    // over successful requests
  std::atomic<std::uint64_t> compute_ns{0};  // over successful requests
  std::atomic<std::uint64_t> fail_by_reason[kFailReasons]{};
};

// One served version of a model.
class VersionState {
 public:
  VersionState(const ModelSpec& spec, std::int64_t version);

  const std::string& version() const { return version_; }
  std::int64_t number() const { return number_; }

  // Books an instance for a request arriving at `now`.
  InstanceScheduler::Slot schedule(SteadyTime now, std::uint64_t request_bytes);

  // Requests queued and instances busy at `now`.
  struct Load {
    std::size_t queued = 0;
    int busy = 0;
    int instances = 0;
  };
  Load load(SteadyTime now);
  // When every request booked so far will have finished.
  SteadyTime idle_at();

  // Applies one request of an accumulate sequence.
  SequenceTable::Update apply_sequence(const std::string& key, bool start, bool end,
                                       std::int64_t delta, SteadyTime now);
  void clear_sequences();

  // Counts a request that executed: a success, or an injected failure after its latency
  // (which Triton counts as a failure only, like every failure).
  void record_executed(bool success, SteadyTime arrival, const InstanceScheduler::Slot& slot,
                       std::uint64_t batch);
  // Counts a request that failed without executing.
  void record_failure(FailReason reason, std::chrono::nanoseconds duration);

  VersionStats stats;

 private:
  std::string version_;
  std::int64_t number_;
  std::mutex scheduler_mu_;
  InstanceScheduler scheduler_;
  std::mutex sequences_mu_;
  SequenceTable sequences_;
};

// One served model: all its versions share readiness (load/unload act on the model).
class SimModel {
 public:
  SimModel(ModelSpec spec, bool ready);

  const ModelSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void set_ready(bool ready);

  const std::vector<std::unique_ptr<VersionState>>& versions() const { return versions_; }
  // "" -> the highest version; nullptr if `version` is not served (or not a number).
  VersionState* find_version(std::string_view version) const;

  const inference::ModelMetadataResponse& metadata() const { return metadata_; }
  const inference::ModelConfig& config() const { return config_; }

 private:
  ModelSpec spec_;
  std::atomic<bool> ready_;
  std::vector<std::unique_ptr<VersionState>> versions_;  // ascending
  inference::ModelMetadataResponse metadata_;
  inference::ModelConfig config_;
};

// A model and version resolved from a request, or why not.
struct Resolved {
  SimModel* model = nullptr;
  VersionState* version = nullptr;
  grpc::Status status;
};

class ModelRegistry {
 public:
  explicit ModelRegistry(const SimOptions& options);

  SimModel* find(std::string_view name) const;
  // When every request booked on any model so far will have finished.
  SteadyTime idle_at() const;
  const std::vector<std::unique_ptr<SimModel>>& models() const { return models_; }

  // For inference and model-scoped reads: NOT_FOUND for an unknown model or version,
  // UNAVAILABLE when the model is not ready (if require_ready).
  Resolved resolve(std::string_view name, std::string_view version, bool require_ready) const;

 private:
  std::vector<std::unique_ptr<SimModel>> models_;
};

}  // namespace infergate::sim
