#include "routing/retry_budget.h"

#include <algorithm>

namespace infergate::routing {

namespace {
std::int64_t second_of(RetryBudget::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
}  // namespace

RetryBudget::Bucket& RetryBudget::current(TimePoint now) {
  const std::int64_t s = second_of(now);
  Bucket& b = buckets_[static_cast<size_t>(s) % kBuckets];
  if (b.second != s) b = Bucket{.second = s};
  return b;
}

void RetryBudget::on_request(TimePoint now) { ++current(now).requests; }

std::uint64_t RetryBudget::requests_in_window(TimePoint now) {
  const std::int64_t s = second_of(now);
  std::uint64_t n = 0;
  for (const Bucket& b : buckets_) {
    if (b.second > s - static_cast<std::int64_t>(kBuckets)) n += b.requests;
  }
  return n;
}

std::uint64_t RetryBudget::retries_in_window(TimePoint now) {
  const std::int64_t s = second_of(now);
  std::uint64_t n = 0;
  for (const Bucket& b : buckets_) {
    if (b.second > s - static_cast<std::int64_t>(kBuckets)) n += b.retries;
  }
  return n;
}

bool RetryBudget::take_floor(TimePoint now) {
  if (min_retries_ == 0) return false;
  const Duration interval = kWindow / min_retries_;
  if (!floor_started_) {
    // Cold: one retry now, the next one interval later.
    floor_started_ = true;
    floor_next_ = now + interval * (kFloorBurst - 1);
  }
  if (now < floor_next_ - interval * (kFloorBurst - 1)) return false;
  floor_next_ = std::max(floor_next_, now) + interval;
  return true;
}

bool RetryBudget::try_retry(TimePoint now) {
  const double share = percent_ / 100.0 * static_cast<double>(requests_in_window(now));
  if (static_cast<double>(retries_in_window(now)) + 1 > share && !take_floor(now)) return false;
  ++current(now).retries;
  return true;
}

}  // namespace infergate::routing
