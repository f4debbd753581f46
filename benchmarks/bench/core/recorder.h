// Collects finished requests from gRPC callback threads; the control thread drains them
// once per window. Sharded by a caller-chosen hint (the slot or call index) so callbacks
// of different slots rarely meet on a lock; each shard's buffer is reserved up front and
// keeps its capacity across drains, so recording does not allocate in steady state.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/bench/core/window_stats.h"

namespace infergate::bench {

class Recorder {
 public:
  explicit Recorder(size_t shards = 16, size_t reserve_per_shard = 4096);

  // Any thread.
  void record(size_t hint, const Sample& sample);
  // Control thread: appends every sample recorded since the last drain to `out`.
  void drain(std::vector<Sample>& out);

  // Any thread, error paths only: keeps the first message seen for each code.
  void note_error(int code, std::string_view message);
  // "CODE: message" for the first code (in code order) with an error since the last
  // reset_errors(), or "".
  std::string first_error() const;
  void reset_errors();

 private:
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<Sample> samples;
  };

  size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
  mutable std::mutex errors_mu_;
  std::array<std::string, kCodeCount> first_messages_;
  std::array<bool, kCodeCount> seen_{};
};

}  // namespace infergate::bench
