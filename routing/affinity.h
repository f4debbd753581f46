// Which backend holds each live stateful sequence, so every request of a sequence
// reaches the server (and model instance) that holds its state. Shared by all workers:
// the table is sharded and a shard's lock is held only for one map operation, never
// across I/O. Time is passed in.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace infergate::routing {

class AffinityTable {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Entry {
    std::uint32_t backend_id = 0;
    std::string backend_name;
    bool lost = false;  // the owner died: the sequence's state is gone
    TimePoint last_used;
  };

  explicit AffinityTable(std::chrono::nanoseconds idle_timeout)
      : idle_timeout_ns_(idle_timeout.count()) {}

  // The sequence's entry (and marks it used now), or nullopt if it has none or has been
  // idle past the timeout.
  std::optional<Entry> find(const std::string& key, TimePoint now);
  // Binds the sequence to a backend (replacing any entry).
  void assign(const std::string& key, std::uint32_t backend_id, const std::string& backend_name,
              TimePoint now);
  // The sequence ended (sequence_end): forget it.
  void erase(const std::string& key);
  // A backend died: every sequence on it is lost. Returns how many.
  size_t mark_lost(std::uint32_t backend_id);
  // Drops entries idle past the timeout. Returns how many.
  size_t sweep(TimePoint now);
  size_t size() const;
  void set_idle_timeout(std::chrono::nanoseconds timeout);

  // "model\0kind:id": one key per (model, sequence id).
  static std::string key(std::string_view model, bool numeric, std::uint64_t number,
                         std::string_view text);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };
  Shard& shard(const std::string& key);

  bool expired(const Entry& e, TimePoint now) const;

  std::atomic<std::int64_t> idle_timeout_ns_;
  std::array<Shard, kShards> shards_;
};

}  // namespace infergate::routing
