// The state of the `accumulate` model: a running sum and a request count per sequence,
// created by a request with sequence_start, dropped by sequence_end or after being idle
// longer than the idle timeout. Pure: time is passed in; not thread-safe (the caller locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace infergate::sim {

class SequenceTable {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // The outcome of one request of a sequence.
  struct Update {
    bool known = false;  // false: no such live sequence and no start flag (the request fails)
    std::int64_t sum = 0;
    std::int64_t count = 0;  // requests seen in the sequence, this one included
  };

  explicit SequenceTable(std::chrono::nanoseconds idle_timeout) : idle_(idle_timeout) {}

  // Applies one request of sequence `key` that adds `delta` to the sum.
  Update apply(const std::string& key, bool start, bool end, std::int64_t delta, TimePoint now);

  // Drops every sequence (the model was unloaded).
  void clear() { sequences_.clear(); }

  // Live sequences, expired ones included until the next sweep.
  std::size_t size() const { return sequences_.size(); }

 private:
  struct State {
    std::int64_t sum = 0;
    std::int64_t count = 0;
    TimePoint last_seen;
  };

  // Removes expired sequences; runs at most once per idle timeout.
  void sweep(TimePoint now);

  std::chrono::nanoseconds idle_;
  std::unordered_map<std::string, State> sequences_;
  TimePoint last_sweep_{};
};

}  // namespace infergate::sim
