// Which backend holds each live stateful sequence, so every request of a sequence
// reaches the server (and model instance) that holds its state. Shared by all workers:
// the table is sharded and a shard's lock is held only for one map operation, never
// across I/O. Time is passed in. Clients choose the sequence ids, so what the table holds
// is bounded: each entry is charged its key, its backend's name and kEntryOverhead, and a
// new sequence that would take the table past max_bytes is refused.
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

  // The map node and the entry's own fields, as charged against max_bytes.
  static constexpr std::uint64_t kEntryOverhead = 128;

  explicit AffinityTable(std::chrono::nanoseconds idle_timeout,
                         std::uint64_t max_bytes = UINT64_MAX)
      : idle_timeout_ns_(idle_timeout.count()), max_bytes_(max_bytes) {}

  // The sequence's entry (and marks it used now), or nullopt if it has none or has been
  // idle past the timeout.
  std::optional<Entry> find(const std::string& key, TimePoint now);
  // Binds the sequence to a backend (replacing any entry). False, and nothing changes, when
  // the sequence is new and its entry would take the table past max_bytes; replacing an
  // entry always succeeds.
  [[nodiscard]] bool assign(const std::string& key, std::uint32_t backend_id,
                            const std::string& backend_name, TimePoint now);
  // The sequence ended (sequence_end): forget it.
  void erase(const std::string& key);
  // A backend died: every sequence on it is lost. Returns how many.
  size_t mark_lost(std::uint32_t backend_id);
  // Drops entries idle past the timeout. Returns how many.
  size_t sweep(TimePoint now);
  size_t size() const;
  // What the entries are charged, together.
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  void set_idle_timeout(std::chrono::nanoseconds timeout);
  // A lower cap refuses new sequences until enough entries end or expire.
  void set_max_bytes(std::uint64_t max_bytes) { max_bytes_.store(max_bytes); }
  std::uint64_t max_bytes() const { return max_bytes_.load(std::memory_order_relaxed); }

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
  static std::uint64_t charge(const std::string& key, const Entry& e) {
    return key.size() + e.backend_name.size() + kEntryOverhead;
  }
  // Takes `n` bytes of the cap; false if they are not there.
  bool reserve(std::uint64_t n);
  void release(std::uint64_t n) { bytes_.fetch_sub(n, std::memory_order_relaxed); }

  std::atomic<std::int64_t> idle_timeout_ns_;
  std::atomic<std::uint64_t> max_bytes_;
  std::atomic<std::uint64_t> bytes_{0};
  std::array<Shard, kShards> shards_;
};

}  // namespace infergate::routing
