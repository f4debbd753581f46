#include "benchmarks/sim/core/sequence_table.h"

namespace infergate::sim {

SequenceTable::Update SequenceTable::apply(const std::string& key, bool start, bool end,
                                           std::int64_t delta, TimePoint now) {
  sweep(now);
  auto it = sequences_.find(key);
  if (it != sequences_.end() && now - it->second.last_seen > idle_) {
    sequences_.erase(it);
    it = sequences_.end();
  }
  if (start) {
    it = sequences_.insert_or_assign(key, State{}).first;
  } else if (it == sequences_.end()) {
    return Update{};
  }
  State& s = it->second;
  // Unsigned addition: a sum that overflows wraps instead of being undefined.
  s.sum = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.sum) +
                                    static_cast<std::uint64_t>(delta));
  s.count += 1;
  s.last_seen = now;
  Update out{.known = true, .sum = s.sum, .count = s.count};
  if (end) sequences_.erase(it);
  return out;
}

void SequenceTable::sweep(TimePoint now) {
  if (now - last_sweep_ < idle_) return;
  last_sweep_ = now;
  std::erase_if(sequences_,
                [&](const auto& entry) { return now - entry.second.last_seen > idle_; });
}

}  // namespace infergate::sim
