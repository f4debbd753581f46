#include "routing/admission.h"

#include <algorithm>

namespace infergate::routing {

std::string_view limit_name(Limit limit) {
  switch (limit) {
    case Limit::kNone:
      return "none";
    case Limit::kMaxJobs:
      return "max_jobs";
    case Limit::kMaxInflight:
      return "max_inflight";
    case Limit::kPerJobInflight:
      return "per_job_max_inflight";
    case Limit::kBytesInFlight:
      return "max_bytes_in_flight";
    case Limit::kLinkBandwidth:
      return "link_bandwidth";
    case Limit::kGroupJobs:
      return "groups.max_jobs";
    case Limit::kGroupInflight:
      return "groups.max_inflight";
    case Limit::kGroupLink:
      return "groups.link_bandwidth_share";
    case Limit::kJobTable:
      return "max_job_table_bytes";
    case Limit::kQueueFull:
      return "max_queue";
    case Limit::kQueueTimeout:
      return "queue_timeout";
    case Limit::kDeadline:
      return "deadline";
  }
  return "none";
}

namespace {

// a + d, saturating at TimePoint::max() (a queue_timeout of years must not wrap).
AdmissionController::TimePoint saturating_add(AdmissionController::TimePoint a,
                                              AdmissionController::Duration d) {
  using TP = AdmissionController::TimePoint;
  if (d.count() <= 0) return a;
  if (a.time_since_epoch().count() > TP::max().time_since_epoch().count() - d.count()) {
    return TP::max();
  }
  return a + d;
}

}  // namespace

AdmissionController::AdmissionController(AdmissionLimits limits) { set_limits(limits); }

void AdmissionController::set_limits(const AdmissionLimits& limits) {
  const bool retime = limits.queue_timeout != limits_.queue_timeout;
  const bool recap = limits.per_job_max_inflight != limits_.per_job_max_inflight;
  limits_ = limits;
  for (auto& [name, group] : groups_) group.limits = GroupLimits{.name = name};
  for (const GroupLimits& g : limits_.groups) groups_[g.name].limits = g;
  if (retime) {
    for (auto& [id, w] : waiters_) {
      w.expires = std::min(w.deadline, saturating_add(w.since, limits_.queue_timeout));
    }
    for (size_t i = heap_.size() / 2; i-- > 0;) heap_sift_down(i);
  }
  if (recap) {
    for (auto& [name, job] : jobs_) update_ring(job);
  }
}

bool AdmissionController::active(const Job& job, TimePoint now) const {
  return job.inflight > 0 || job.first != nullptr ||
         now - job.last_active < limits_.job_idle_timeout;
}

size_t AdmissionController::active_jobs(TimePoint now) const {
  size_t n = 0;
  for (const auto& [name, job] : jobs_) n += active(job, now);
  return n;
}

void AdmissionController::forget_idle(TimePoint now) {
  if (now - last_forget_ < std::chrono::seconds(1)) return;
  last_forget_ = now;
  // An inactive job has no waiter, so nothing points at it.
  std::erase_if(jobs_, [&](const auto& kv) {
    if (active(kv.second, now)) return false;
    job_bytes_ -= kv.second.charged;
    return true;
  });
}

AdmissionController::Group* AdmissionController::find_group(std::string_view name) {
  if (name.empty()) return nullptr;
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

size_t AdmissionController::active_jobs_of(const Group* group, TimePoint now) const {
  size_t n = 0;
  for (const auto& [name, job] : jobs_) n += job.group == group && active(job, now);
  return n;
}

bool AdmissionController::job_active(std::string_view job, TimePoint now) const {
  auto it = jobs_.find(job);
  return it != jobs_.end() && active(it->second, now);
}

std::vector<std::pair<std::string, std::string>> AdmissionController::active_job_list(
    TimePoint now) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, job] : jobs_) {
    if (active(job, now)) out.emplace_back(name, job.group ? job.group->limits.name : "");
  }
  return out;
}

void AdmissionController::forget_job(std::string_view job) {
  // Inactive from now on, unless requests of it are still in flight or queued.
  if (auto it = jobs_.find(job); it != jobs_.end()) it->second.last_active = TimePoint{};
}

Limit AdmissionController::admit_job(std::string_view name, std::string_view group_name,
                                     TimePoint now) {
  forget_idle(now);
  auto it = jobs_.find(name);
  if (it != jobs_.end() && active(it->second, now)) {
    it->second.last_active = now;
    return Limit::kNone;
  }
  if (limits_.max_jobs != 0 && active_jobs(now) >= limits_.max_jobs) return Limit::kMaxJobs;
  Group* group = find_group(group_name);
  if (group != nullptr && group->limits.max_jobs != 0 &&
      active_jobs_of(group, now) >= group->limits.max_jobs) {
    return Limit::kGroupJobs;
  }
  if (it == jobs_.end()) {
    it = new_job(name);
    if (it == jobs_.end()) return Limit::kJobTable;
  }
  it->second.last_active = now;
  it->second.group = group;
  return Limit::kNone;
}

void AdmissionController::refill(TimePoint now) {
  if (limits_.link_bytes_per_second == 0) return;
  const double burst = limits_.link_burst_bytes != 0
                           ? static_cast<double>(limits_.link_burst_bytes)
                           : static_cast<double>(limits_.link_bytes_per_second) / 10;
  if (!bucket_started_) {
    bucket_started_ = true;
    tokens_ = burst;
    refilled_ = now;
    return;
  }
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  if (elapsed <= 0) return;
  tokens_ = std::min(burst, tokens_ + elapsed * static_cast<double>(limits_.link_bytes_per_second));
  refilled_ = now;
}

double AdmissionController::group_rate(const Group& group) const {
  return group.limits.link_share * static_cast<double>(limits_.link_bytes_per_second);
}

void AdmissionController::refill_group(Group& group, TimePoint now) {
  const double rate = group_rate(group);
  if (rate <= 0) return;
  const double whole_burst = limits_.link_burst_bytes != 0
                                 ? static_cast<double>(limits_.link_burst_bytes)
                                 : static_cast<double>(limits_.link_bytes_per_second) / 10;
  const double burst = group.limits.link_share * whole_burst;
  if (!group.bucket_started) {
    group.bucket_started = true;
    group.tokens = burst;
    group.refilled = now;
    return;
  }
  const double elapsed = std::chrono::duration<double>(now - group.refilled).count();
  if (elapsed <= 0) return;
  group.tokens = std::min(burst, group.tokens + elapsed * rate);
  group.refilled = now;
}

double AdmissionController::tokens(TimePoint now) {
  refill(now);
  return tokens_;
}

bool AdmissionController::under_job_cap(const Job& job) const {
  return limits_.per_job_max_inflight == 0 || job.inflight < limits_.per_job_max_inflight;
}

Limit AdmissionController::blocking_limit(const Job& job, std::uint64_t bytes, TimePoint now) {
  if (!under_job_cap(job)) return Limit::kPerJobInflight;
  if (Group* g = job.group) {
    if (g->limits.max_inflight != 0 && g->inflight >= g->limits.max_inflight) {
      return Limit::kGroupInflight;
    }
    if (group_rate(*g) > 0) {
      refill_group(*g, now);
      if (g->tokens < 0) return Limit::kGroupLink;
    }
  }
  if (limits_.closed) return Limit::kMaxInflight;
  if (limits_.max_inflight != 0 && inflight_ >= limits_.max_inflight) return Limit::kMaxInflight;
  // One request larger than the whole budget may still go alone.
  if (limits_.max_bytes_in_flight != 0 && bytes_in_flight_ > 0 &&
      bytes_in_flight_ + bytes > limits_.max_bytes_in_flight) {
    return Limit::kBytesInFlight;
  }
  if (limits_.link_bytes_per_second != 0) {
    refill(now);
    // A request goes when the bucket is not in debt; it may then take it below zero,
    // and the next waits until the link has paid for it.
    if (tokens_ < 0) return Limit::kLinkBandwidth;
  }
  return Limit::kNone;
}

void AdmissionController::take(Job& job, std::uint64_t bytes) {
  ++job.inflight;
  ++inflight_;
  bytes_in_flight_ += bytes;
  if (limits_.link_bytes_per_second != 0) tokens_ -= static_cast<double>(bytes);
  if (Group* g = job.group) {
    ++g->inflight;
    if (group_rate(*g) > 0) g->tokens -= static_cast<double>(bytes);
  }
}

AdmissionController::Duration AdmissionController::estimate_wait(Limit limit,
                                                                 std::uint64_t bytes) const {
  using std::chrono::milliseconds;
  if (limit == Limit::kMaxJobs || limit == Limit::kGroupJobs || limit == Limit::kJobTable) {
    return limits_.job_idle_timeout;
  }
  if (limit == Limit::kLinkBandwidth && limits_.link_bytes_per_second != 0) {
    const double deficit = std::max(0.0, -tokens_) + static_cast<double>(bytes);
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
        deficit / static_cast<double>(limits_.link_bytes_per_second)));
  }
  return milliseconds(1000);
}

AdmissionController::JobMap::iterator AdmissionController::new_job(std::string_view name) {
  const std::uint64_t charge = name.size() + kJobOverhead;
  if (job_bytes_ + charge > limits_.max_job_table_bytes) return jobs_.end();
  job_bytes_ += charge;
  auto it = jobs_.try_emplace(std::string(name)).first;
  it->second.charged = charge;
  return it;
}

AdmissionController::Decision AdmissionController::admit(const Request& r, TimePoint now) {
  // Its job was seen by admit_job (touch_job) first, unless the job went idle since.
  auto it = jobs_.find(r.job);
  if (it == jobs_.end()) it = new_job(r.job);
  if (it == jobs_.end()) return {Verdict::kRejected, Limit::kJobTable, limits_.job_idle_timeout};
  Job& job = it->second;
  job.last_active = now;
  if (job.group == nullptr) job.group = find_group(r.group);
  const Limit limit = blocking_limit(job, r.bytes, now);
  if (limit == Limit::kNone && waiters_.empty()) {
    take(job, r.bytes);
    return {};
  }
  if (r.deadline <= now) return {Verdict::kRejected, Limit::kDeadline, Duration(0)};
  // A second request with a queued one's id cannot be told apart from it: refused.
  if (waiters_.size() >= limits_.max_queue || waiters_.contains(r.id)) {
    return {Verdict::kRejected, Limit::kQueueFull, estimate_wait(limit, r.bytes)};
  }
  enqueue(job, r, now);
  return {Verdict::kQueued, limit == Limit::kNone ? Limit::kMaxInflight : limit, Duration(0)};
}

void AdmissionController::enqueue(Job& job, const Request& r, TimePoint now) {
  Waiter& w = waiters_[r.id];
  w.id = r.id;
  w.bytes = r.bytes;
  queued_bytes_ += r.bytes;
  w.deadline = r.deadline;
  w.since = now;
  w.expires = std::min(r.deadline, saturating_add(now, limits_.queue_timeout));
  w.seq = next_seq_++;
  w.job = &job;
  w.prev = job.last;
  w.next = nullptr;
  (job.last != nullptr ? job.last->next : job.first) = &w;
  job.last = &w;
  heap_push(&w);
  update_ring(job);
}

void AdmissionController::remove(Waiter& w) {
  Job& job = *w.job;
  (w.prev != nullptr ? w.prev->next : job.first) = w.next;
  (w.next != nullptr ? w.next->prev : job.last) = w.prev;
  heap_erase(&w);
  queued_bytes_ -= w.bytes;
  waiters_.erase(w.id);
  update_ring(job);
}

void AdmissionController::release(const Request& r, TimePoint now) {
  auto it = jobs_.find(r.job);
  if (it != jobs_.end()) {
    Job& job = it->second;
    if (job.inflight > 0) --job.inflight;
    if (job.group != nullptr && job.group->inflight > 0) --job.group->inflight;
    job.last_active = now;
    update_ring(job);  // back under its cap: its waiters take turns again
  }
  if (inflight_ > 0) --inflight_;
  bytes_in_flight_ -= std::min(bytes_in_flight_, r.bytes);
}

bool AdmissionController::cancel(std::uint64_t id) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return false;
  remove(it->second);
  return true;
}

std::vector<AdmissionController::Outcome> AdmissionController::poll(TimePoint now) {
  std::vector<Outcome> out;
  if (waiters_.empty()) return out;
  expire(now, out);
  serve(now, out);
  return out;
}

void AdmissionController::expire(TimePoint now, std::vector<Outcome>& out) {
  // Waits that ran out: the client's deadline, or the gateway's queue_timeout.
  while (!heap_.empty() && heap_.front()->expires <= now) {
    Waiter& w = *heap_.front();
    const Limit limit = w.deadline <= now ? Limit::kDeadline : Limit::kQueueTimeout;
    out.push_back({w.id, false, limit, now - w.since, estimate_wait(limit, w.bytes)});
    remove(w);
  }
}

void AdmissionController::serve(TimePoint now, std::vector<Outcome>& out) {
  // Round-robin over the jobs that may send: each turn admits the oldest request of the
  // job whose turn it is, and that job goes to the back, so a job's burst waits behind
  // the other jobs' requests.
  Job* skipped_since = nullptr;  // the first job passed over since the last admission
  while (ring_head_ != nullptr) {
    Job& job = *ring_head_;
    if (&job == skipped_since) return;  // a whole round admitted nobody
    Waiter& w = *job.first;
    const Limit limit = blocking_limit(job, w.bytes, now);
    if (limit == Limit::kPerJobInflight) {  // the ring holds only jobs under their cap
      ring_erase(job);
      continue;
    }
    // Its group's cap: the job passes its turn, other groups' jobs go on.
    if (limit == Limit::kGroupInflight || limit == Limit::kGroupLink) {
      if (skipped_since == nullptr) skipped_since = &job;
      ring_head_ = job.ring_next;
      continue;
    }
    // A gateway-wide limit: this job keeps its turn (a smaller request of another job
    // must not overtake it forever) and nobody else goes.
    if (limit != Limit::kNone) return;
    take(job, w.bytes);
    skipped_since = nullptr;
    out.push_back({w.id, true, Limit::kNone, now - w.since, Duration(0)});
    ring_head_ = job.ring_next;
    remove(w);  // the job leaves the ring if it has no waiter left or reached its cap
  }
}

void AdmissionController::update_ring(Job& job) {
  const bool ready = job.first != nullptr && under_job_cap(job);
  if (ready && !job.in_ring) ring_push_back(job);
  if (!ready && job.in_ring) ring_erase(job);
}

void AdmissionController::ring_push_back(Job& job) {
  job.in_ring = true;
  if (ring_head_ == nullptr) {
    ring_head_ = job.ring_prev = job.ring_next = &job;
    return;
  }
  Job* tail = ring_head_->ring_prev;
  tail->ring_next = &job;
  job.ring_prev = tail;
  job.ring_next = ring_head_;
  ring_head_->ring_prev = &job;
}

void AdmissionController::ring_erase(Job& job) {
  job.in_ring = false;
  if (job.ring_next == &job) {
    ring_head_ = nullptr;
  } else {
    job.ring_prev->ring_next = job.ring_next;
    job.ring_next->ring_prev = job.ring_prev;
    if (ring_head_ == &job) ring_head_ = job.ring_next;
  }
  job.ring_prev = job.ring_next = nullptr;
}

bool AdmissionController::heap_less(const Waiter* a, const Waiter* b) const {
  return a->expires != b->expires ? a->expires < b->expires : a->seq < b->seq;
}

void AdmissionController::heap_place(size_t i, Waiter* w) {
  heap_[i] = w;
  w->heap_index = i;
}

void AdmissionController::heap_push(Waiter* w) {
  heap_.push_back(w);
  w->heap_index = heap_.size() - 1;
  heap_sift_up(w->heap_index);
}

void AdmissionController::heap_erase(Waiter* w) {
  const size_t i = w->heap_index;
  Waiter* last = heap_.back();
  heap_.pop_back();
  if (last == w) return;
  heap_place(i, last);
  heap_sift_up(i);
  heap_sift_down(last->heap_index);
}

void AdmissionController::heap_sift_up(size_t i) {
  Waiter* w = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!heap_less(w, heap_[parent])) break;
    heap_place(i, heap_[parent]);
    i = parent;
  }
  heap_place(i, w);
}

void AdmissionController::heap_sift_down(size_t i) {
  Waiter* w = heap_[i];
  const size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_less(heap_[child + 1], heap_[child])) ++child;
    if (!heap_less(heap_[child], w)) break;
    heap_place(i, heap_[child]);
    i = child;
  }
  heap_place(i, w);
}

std::optional<AdmissionController::TimePoint> AdmissionController::next_wake(TimePoint now) const {
  if (waiters_.empty()) return std::nullopt;
  TimePoint wake = heap_.front()->expires;
  if (limits_.link_bytes_per_second != 0 && tokens_ < 0) {
    const double seconds = -tokens_ / static_cast<double>(limits_.link_bytes_per_second);
    wake = std::min(wake, refilled_ + std::chrono::duration_cast<Duration>(
                                          std::chrono::duration<double>(seconds)));
  }
  for (const auto& [name, g] : groups_) {
    const double rate = group_rate(g);
    if (rate > 0 && g.tokens < 0) {
      wake = std::min(wake, g.refilled + std::chrono::duration_cast<Duration>(
                                             std::chrono::duration<double>(-g.tokens / rate)));
    }
  }
  return std::max(wake, now);
}

}  // namespace infergate::routing
