#include "routing/affinity.h"

#include <functional>

namespace infergate::routing {

std::string AffinityTable::key(std::string_view model, bool numeric, std::uint64_t number,
                               std::string_view text) {
  std::string k(model);
  k.push_back('\0');
  if (numeric) {
    k.push_back('n');
    k += std::to_string(number);
  } else {
    k.push_back('s');
    k.append(text);
  }
  return k;
}

AffinityTable::Shard& AffinityTable::shard(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

bool AffinityTable::expired(const Entry& e, TimePoint now) const {
  return now - e.last_used > std::chrono::nanoseconds(idle_timeout_ns_.load());
}

std::optional<AffinityTable::Entry> AffinityTable::find(const std::string& key, TimePoint now) {
  Shard& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(key);
  if (it == s.entries.end()) return std::nullopt;
  if (expired(it->second, now)) {
    release(charge(it->first, it->second));
    s.entries.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second;
}

bool AffinityTable::reserve(std::uint64_t n) {
  std::uint64_t held = bytes_.load(std::memory_order_relaxed);
  do {
    if (held + n > max_bytes_.load(std::memory_order_relaxed)) return false;
  } while (!bytes_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
  return true;
}

bool AffinityTable::assign(const std::string& key, std::uint32_t backend_id,
                           const std::string& backend_name, TimePoint now) {
  Entry entry{.backend_id = backend_id, .backend_name = backend_name, .last_used = now};
  const std::uint64_t cost = charge(key, entry);
  Shard& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(key);
  if (it != s.entries.end()) {
    // A restart or a move: the same sequence, never refused (only the name's length
    // changes what it is charged). Added before the old charge goes, so that a reserve()
    // in another shard never sees room that is not there.
    bytes_.fetch_add(cost, std::memory_order_relaxed);
    release(charge(it->first, it->second));
    it->second = std::move(entry);
    return true;
  }
  if (!reserve(cost)) return false;
  s.entries.emplace(key, std::move(entry));
  return true;
}

void AffinityTable::erase(const std::string& key) {
  Shard& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(key);
  if (it == s.entries.end()) return;
  release(charge(it->first, it->second));
  s.entries.erase(it);
}

size_t AffinityTable::mark_lost(std::uint32_t backend_id) {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& [key, entry] : s.entries) {
      if (entry.backend_id == backend_id && !entry.lost) {
        entry.lost = true;
        ++n;
      }
    }
  }
  return n;
}

size_t AffinityTable::sweep(TimePoint now) {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += std::erase_if(s.entries, [&](const auto& kv) {
      if (!expired(kv.second, now)) return false;
      release(charge(kv.first, kv.second));
      return true;
    });
  }
  return n;
}

size_t AffinityTable::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.entries.size();
  }
  return n;
}

void AffinityTable::set_idle_timeout(std::chrono::nanoseconds timeout) {
  idle_timeout_ns_.store(timeout.count());
}

}  // namespace infergate::routing
