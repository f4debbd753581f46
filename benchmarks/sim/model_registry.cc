#include "benchmarks/sim/model_registry.h"

#include <algorithm>
#include <charconv>

namespace infergate::sim {
namespace {

std::uint64_t ns(std::chrono::nanoseconds d) {
  return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

// One input or output of a model kind, as its metadata and config describe it.
struct TensorDecl {
  const char* name;
  const char* datatype;
  inference::DataType type;
  std::int64_t dim;
};

struct KindTensors {
  std::vector<TensorDecl> inputs;
  std::vector<TensorDecl> outputs;
};

KindTensors tensors_of(const ModelSpec& spec) {
  using K = ModelSpec::Kind;
  switch (spec.kind) {
    case K::kIdentity:
      return {{{"INPUT0", "FP32", inference::TYPE_FP32, -1}},
              {{"OUTPUT0", "FP32", inference::TYPE_FP32, -1}}};
    case K::kAccumulate:
      return {{{"INPUT0", "INT32", inference::TYPE_INT32, 1}},
              {{"OUTPUT0", "INT32", inference::TYPE_INT32, 1}}};
    case K::kSimpleSequence:
      return {{{"INPUT", "INT32", inference::TYPE_INT32, 1}},
              {{"OUTPUT", "INT32", inference::TYPE_INT32, 1}}};
    case K::kSimple:
    case K::kSimpleString: {
      const bool strings = spec.kind == K::kSimpleString;
      const char* dt = strings ? "BYTES" : "INT32";
      const inference::DataType t = strings ? inference::TYPE_STRING : inference::TYPE_INT32;
      return {{{"INPUT0", dt, t, 16}, {"INPUT1", dt, t, 16}},
              {{"OUTPUT0", dt, t, 16}, {"OUTPUT1", dt, t, 16}}};
    }
  }
  return {};
}

inference::ModelMetadataResponse build_metadata(const ModelSpec& spec) {
  inference::ModelMetadataResponse m;
  m.set_name(spec.name);
  for (std::int64_t v : spec.versions) m.add_versions(std::to_string(v));
  m.set_platform("infergate_sim");
  auto describe = [&](const TensorDecl& d, inference::ModelMetadataResponse::TensorMetadata* t) {
    t->set_name(d.name);
    t->set_datatype(d.datatype);
    if (spec.max_batch > 0) t->add_shape(-1);
    t->add_shape(d.dim);
  };
  const KindTensors tensors = tensors_of(spec);
  for (const TensorDecl& d : tensors.inputs) describe(d, m.add_inputs());
  for (const TensorDecl& d : tensors.outputs) describe(d, m.add_outputs());
  return m;
}

inference::ModelConfig build_config(const ModelSpec& spec) {
  inference::ModelConfig c;
  c.set_name(spec.name);
  c.set_platform("infergate_sim");
  c.set_backend("infergate_sim");
  c.set_max_batch_size(spec.max_batch);
  for (std::int64_t v : spec.versions)
    c.mutable_version_policy()->mutable_specific()->add_versions(v);
  const KindTensors tensors = tensors_of(spec);
  for (const TensorDecl& d : tensors.inputs) {
    inference::ModelInput* in = c.add_input();
    in->set_name(d.name);
    in->set_data_type(d.type);
    in->add_dims(d.dim);
  }
  for (const TensorDecl& d : tensors.outputs) {
    inference::ModelOutput* out = c.add_output();
    out->set_name(d.name);
    out->set_data_type(d.type);
    out->add_dims(d.dim);
  }
  inference::ModelInstanceGroup* group = c.add_instance_group();
  group->set_name(spec.name + "_0");
  group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  group->set_count(spec.instances);
  if (spec.stateful()) {
    c.mutable_sequence_batching()->set_max_sequence_idle_microseconds(ns(spec.seq_idle) / 1000);
  }
  return c;
}

}  // namespace

const char* fail_reason_label(FailReason r) {
  switch (r) {
    case FailReason::kRejected:
      return "REJECTED";
    case FailReason::kCanceled:
      return "CANCELED";
    case FailReason::kBackend:
      return "BACKEND";
    case FailReason::kOther:
      return "OTHER";
  }
  return "OTHER";
}

VersionState::VersionState(const ModelSpec& spec, std::int64_t version)
    : version_(std::to_string(version)),
      number_(version),
      scheduler_(spec.instances, spec.latency, spec.per_mib),
      sequences_(spec.seq_idle) {}

InstanceScheduler::Slot VersionState::schedule(SteadyTime now, std::uint64_t request_bytes) {
  std::lock_guard<std::mutex> lock(scheduler_mu_);
  return scheduler_.schedule(now, request_bytes);
}

VersionState::Load VersionState::load(SteadyTime now) {
  std::lock_guard<std::mutex> lock(scheduler_mu_);
  return Load{.queued = scheduler_.queued(now),
              .busy = scheduler_.busy(now),
              .instances = scheduler_.instances()};
}

SteadyTime VersionState::idle_at() {
  std::lock_guard<std::mutex> lock(scheduler_mu_);
  return scheduler_.idle_at();
}

SequenceTable::Update VersionState::apply_sequence(const std::string& key, bool start, bool end,
                                                   std::int64_t delta, SteadyTime now) {
  std::lock_guard<std::mutex> lock(sequences_mu_);
  return sequences_.apply(key, start, end, delta, now);
}

void VersionState::clear_sequences() {
  std::lock_guard<std::mutex> lock(sequences_mu_);
  sequences_.clear();
}

void VersionState::record_executed(bool success, SteadyTime arrival,
                                   const InstanceScheduler::Slot& slot, std::uint64_t batch) {
  constexpr auto relaxed = std::memory_order_relaxed;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  if (!success) {
    record_failure(FailReason::kBackend, slot.finish - arrival);
    return;
  }
  stats.last_inference_ms.store(static_cast<std::uint64_t>(now_ms.count()), relaxed);
  stats.execution_count.fetch_add(1, relaxed);
  stats.inference_count.fetch_add(batch, relaxed);
  stats.success_count.fetch_add(1, relaxed);
  stats.success_ns.fetch_add(ns(slot.finish - arrival), relaxed);
  stats.queue_ns.fetch_add(ns(slot.start - arrival), relaxed);
  stats.compute_ns.fetch_add(ns(slot.finish - slot.start), relaxed);
}

void VersionState::record_failure(FailReason reason, std::chrono::nanoseconds duration) {
  constexpr auto relaxed = std::memory_order_relaxed;
  stats.fail_count.fetch_add(1, relaxed);
  stats.fail_ns.fetch_add(ns(duration), relaxed);
  stats.fail_by_reason[static_cast<int>(reason)].fetch_add(1, relaxed);
}

SimModel::SimModel(ModelSpec spec, bool ready)
    : spec_(std::move(spec)),
      ready_(ready),
      metadata_(build_metadata(spec_)),
      config_(build_config(spec_)) {
  for (std::int64_t v : spec_.versions)
    versions_.push_back(std::make_unique<VersionState>(spec_, v));
}

void SimModel::set_ready(bool ready) {
  ready_.store(ready, std::memory_order_release);
  if (!ready) {
    for (const auto& v : versions_) v->clear_sequences();
  }
}

VersionState* SimModel::find_version(std::string_view version) const {
  if (version.empty()) return versions_.back().get();
  std::int64_t number = 0;
  auto [ptr, ec] = std::from_chars(version.data(), version.data() + version.size(), number);
  if (ec != std::errc() || ptr != version.data() + version.size()) return nullptr;
  for (const auto& v : versions_) {
    if (v->number() == number) return v.get();
  }
  return nullptr;
}

ModelRegistry::ModelRegistry(const SimOptions& options) {
  for (const ModelSpec& spec : options.models) {
    models_.push_back(std::make_unique<SimModel>(spec, spec.ready && !options.not_ready));
  }
}

SimModel* ModelRegistry::find(std::string_view name) const {
  for (const auto& m : models_) {
    if (m->name() == name) return m.get();
  }
  return nullptr;
}

SteadyTime ModelRegistry::idle_at() const {
  SteadyTime latest{};
  for (const auto& m : models_) {
    for (const auto& v : m->versions()) latest = std::max(latest, v->idle_at());
  }
  return latest;
}

Resolved ModelRegistry::resolve(std::string_view name, std::string_view version,
                                bool require_ready) const {
  Resolved out;
  out.model = find(name);
  if (out.model == nullptr) {
    out.status =
        grpc::Status(grpc::StatusCode::NOT_FOUND,
                     "Request for unknown model: '" + std::string(name) + "' is not found");
    return out;
  }
  out.version = out.model->find_version(version);
  if (out.version == nullptr) {
    out.status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                              "Request for unknown model: '" + std::string(name) + "' version " +
                                  std::string(version) + " is not found");
    return out;
  }
  if (require_ready && !out.model->ready()) {
    out.status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "Request for unknown model: '" + std::string(name) +
                                  "' has no available versions (not ready)");
  }
  return out;
}

}  // namespace infergate::sim
