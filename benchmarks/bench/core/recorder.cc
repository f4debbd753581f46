#include "benchmarks/bench/core/recorder.h"

namespace infergate::bench {

Recorder::Recorder(size_t shards, size_t reserve_per_shard)
    : shard_count_(shards == 0 ? 1 : shards), shards_(new Shard[shard_count_]) {
  for (size_t i = 0; i < shard_count_; ++i) shards_[i].samples.reserve(reserve_per_shard);
}

void Recorder::record(size_t hint, const Sample& sample) {
  Shard& shard = shards_[hint % shard_count_];
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.samples.push_back(sample);
}

void Recorder::drain(std::vector<Sample>& out) {
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    std::lock_guard<std::mutex> lock(shard.mu);
    out.insert(out.end(), shard.samples.begin(), shard.samples.end());
    shard.samples.clear();
  }
}

void Recorder::note_error(int code, std::string_view message) {
  if (code <= kCodeOk || code >= kCodeCount) code = kCodeUnknown;
  std::lock_guard<std::mutex> lock(errors_mu_);
  if (seen_[code]) return;
  seen_[code] = true;
  first_messages_[code] = std::string(message.substr(0, 300));
}

std::string Recorder::first_error() const {
  std::lock_guard<std::mutex> lock(errors_mu_);
  for (int c = 0; c < kCodeCount; ++c) {
    if (seen_[c]) return std::string(code_name(c)) + ": " + first_messages_[c];
  }
  return "";
}

void Recorder::reset_errors() {
  std::lock_guard<std::mutex> lock(errors_mu_);
  seen_.fill(false);
  for (std::string& m : first_messages_) m.clear();
}

}  // namespace infergate::bench
