#include "gateway/worker.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "gateway/h2/downstream_connection.h"
#include "gateway/h2/upstream_connection.h"
#include "gateway/h2/upstream_pool.h"
#include "gateway/stream/proxy_stream.h"

namespace infergate::gateway {

namespace {

routing::Policy parse_policy(const std::string& name) {
  if (name == "round_robin") return routing::Policy::kRoundRobin;
  if (name == "random") return routing::Policy::kRandom;
  return routing::Policy::kLeastLoaded;
}

}  // namespace

Worker::Worker(int index, const DataPlaneOptions& options, const RoutingOptions& routing,
               WorkerShared shared)
    : index_(index),
      options_(options),
      routing_(routing),
      shared_(std::move(shared)),
      fleet_(std::make_shared<const routing::Fleet>(std::vector<routing::BackendInfo>{})),
      targets_(std::make_shared<const TargetTable>()),
      // Seeded per worker: workers make independent random choices.
      picker_(parse_policy(routing.policy), 0x9e3779b97f4a7c15ull * (index + 1),
              routing.latency_aware),
      retry_budget_(routing.retry_budget_percent),
      blocks_(256, shared_.buffer_budget.get()),
      read_buffer_(new std::uint8_t[kReadBufferBytes]) {
  if (!shared_.parked) shared_.parked = std::make_shared<std::atomic<std::int64_t>>(0);
  for (const std::string& model : routing_.models) stats_.model_slot(model);
}

Worker::~Worker() { stop(); }

void Worker::start() {
  arm_tick();
  thread_ = std::thread([this] {
    // Named for top, perf and the allocation counter (benchmarks/allocations.sh).
    const std::string name = "ig-worker-" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    ChunkCache::set_current(&chunks_);
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
    ChunkCache::set_current(nullptr);
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  boost::asio::post(io_, [this] {
    tick_.cancel();
    std::vector<DownstreamConnection*> open(downstream_.begin(), downstream_.end());
    for (DownstreamConnection* c : open) c->close("gateway stopping");
    for (auto& [id, pool] : pools_) pool->close_all();
    // Let the closes run their reap handlers, then stop.
    boost::asio::post(io_, [this] { boost::asio::post(io_, [this] { io_.stop(); }); });
  });
  thread_.join();
  // Whatever the loop did not get to is freed with the io_context's handlers.
}

void Worker::arm_tick() {
  tick_.expires_after(kTick);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: stopping
    on_tick();
    arm_tick();
  });
}

void Worker::on_tick() {
  const auto now = this->now();
  // A connection's tick may close it (its removal is posted, never done here) and close
  // upstream connections (which edits their pool's list): each works on a copy.
  std::vector<DownstreamConnection*> down(downstream_.begin(), downstream_.end());
  for (DownstreamConnection* c : down) c->on_tick(now);
  for (auto& [id, pool] : pools_) pool->on_tick(now);
  // A slot freed between a stream's pick and its parking wakes nobody: the tick does.
  if (!parked_.empty()) wake_one_parked();
  flush_dirty();
  if (++ticks_ % 10 == 0) {
    blocks_.trim_to_recent_peak();
    chunks_.trim_to_recent_peak();
    forget_gone_waiters();
  }
}

void Worker::adopt(boost::asio::ip::tcp::socket socket, std::shared_ptr<const TlsContext> tls) {
  if (draining_) return;  // the socket closes as it goes out of scope
  auto* c = new DownstreamConnection(*this, std::move(socket), std::move(tls));
  downstream_.insert(c);
  downstream_count_.fetch_add(1, std::memory_order_relaxed);
  stats_.downstream_connections_total.add(1);
  c->open();
}

void Worker::begin_drain() {
  draining_ = true;
  for (DownstreamConnection* c : downstream_) c->begin_drain();
}

void Worker::set_fleet(std::shared_ptr<const routing::Fleet> fleet,
                       std::shared_ptr<const TargetTable> targets) {
  fleet_ = std::move(fleet);
  targets_ = std::move(targets);
  // Parked streams may have somewhere to go now (or learn that nothing is left).
  if (!parked_.empty() || !awaiting_model_.empty()) {
    boost::asio::post(io_, [this] { resume_parked(); });
  }
  // Backends that have left the fleet (drained) lose their connections.
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (fleet_->find(it->first) < 0) {
      it->second->close_all();
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

void Worker::park(ProxyStream* stream, Lifeline::Link alive) {
  parked_.emplace_back(stream, std::move(alive));
  parked_here_.fetch_add(1, std::memory_order_relaxed);
  shared_.parked->fetch_add(1, std::memory_order_relaxed);
}

void Worker::wake_one_parked() {
  while (!parked_.empty()) {
    auto [stream, alive] = std::move(parked_.front());
    parked_.pop_front();
    parked_here_.fetch_sub(1, std::memory_order_relaxed);
    shared_.parked->fetch_sub(1, std::memory_order_relaxed);
    // Entries of streams that ended or stopped waiting (a deadline) are skipped.
    if (alive.alive() && stream->parked()) {
      stream->resume_routing();
      flush_dirty();
      return;
    }
  }
}

void Worker::await_model(ProxyStream* stream, Lifeline::Link alive, std::uint32_t wait) {
  awaiting_model_.push_back({stream, std::move(alive), wait});
}

bool Worker::Awaiting::current() const { return alive.alive() && stream->awaits(wait); }

void Worker::resume_parked() {
  if (parked_.empty() && awaiting_model_.empty()) return;
  std::deque<std::pair<ProxyStream*, Lifeline::Link>> waiting;
  waiting.swap(parked_);
  parked_here_.fetch_sub(static_cast<std::int64_t>(waiting.size()), std::memory_order_relaxed);
  shared_.parked->fetch_sub(static_cast<std::int64_t>(waiting.size()), std::memory_order_relaxed);
  std::vector<Awaiting> awaiting;
  awaiting.swap(awaiting_model_);
  // Each tries again; those that still find every backend full park again, and those
  // whose model no backend has ready wait again.
  for (auto& [stream, alive] : waiting) {
    if (alive.alive() && stream->parked()) stream->resume_routing();
  }
  for (const Awaiting& a : awaiting) {
    if (a.current()) a.stream->resume_routing();
  }
  flush_dirty();
}

void Worker::forget_gone_waiters() {
  // Streams that ended (or stopped waiting) while listed: without this, clients that
  // start and cancel requests between two fleet changes would grow the lists.
  std::erase_if(awaiting_model_, [](const Awaiting& a) { return !a.current(); });
  const size_t before = parked_.size();
  std::erase_if(parked_,
                [](const auto& entry) { return !entry.second.alive() || !entry.first->parked(); });
  const auto gone = static_cast<std::int64_t>(before - parked_.size());
  parked_here_.fetch_sub(gone, std::memory_order_relaxed);
  shared_.parked->fetch_sub(gone, std::memory_order_relaxed);
}

void Worker::set_routing(const RoutingOptions& routing) {
  routing_ = routing;
  for (const std::string& model : routing_.models) stats_.model_slot(model);
  picker_ = routing::Picker(parse_policy(routing.policy),
                            0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(index_ + 1),
                            routing.latency_aware);
  retry_budget_.set_percent(routing.retry_budget_percent);
}

void Worker::set_stream_limits(const DataPlaneOptions& options) {
  options_.max_routing_fields_bytes = options.max_routing_fields_bytes;
  options_.max_reorder_buffer_bytes = options.max_reorder_buffer_bytes;
  options_.max_control_message_bytes = options.max_control_message_bytes;
  options_.max_stream_messages_in_flight = options.max_stream_messages_in_flight;
  options_.backend_wait_timeout = options.backend_wait_timeout;
}

const BackendTarget& Worker::target(std::uint32_t id) const {
  static const BackendTarget kUnknown{.name = "unknown", .resolve_error = "not in the fleet"};
  auto it = targets_->find(id);
  return it == targets_->end() ? kUnknown : it->second;
}

UpstreamPool& Worker::pool(std::uint32_t backend_id) {
  auto& slot = pools_[backend_id];
  if (!slot) slot = std::make_unique<UpstreamPool>(*this, backend_id);
  return *slot;
}

bool Worker::PoolConnector::open(std::uint32_t backend_id, BackendStream& stream) {
  UpstreamConnection* up = worker_.pool(backend_id).acquire();
  if (up->submit(&stream)) return true;
  // A connection that has just run out of stream IDs retires itself: that is no fault of
  // the backend, so the stream goes on a fresh connection.
  return !up->accepting() && worker_.pool(backend_id).acquire()->submit(&stream);
}

void Worker::mark_dirty(H2Connection* connection) {
  dirty_.push_back(connection);
  // A read flushes what it marks as it ends (ReadScope).
  if (reading_ == 0) post_dirty_flush();
}

void Worker::post_dirty_flush() {
  if (dirty_posted_ || dirty_.empty()) return;
  dirty_posted_ = true;
  // For marks made outside a read (timers, posted work) and what a read left: flush on
  // the next turn.
  boost::asio::post(io_, [this] {
    dirty_posted_ = false;
    flush_dirty();
  });
}

void Worker::flush_dirty() {
  // Each round may mark more connections; a few rounds settle any event, and whatever
  // is left runs from the posted handler.
  for (int round = 0; round < 4 && !dirty_.empty(); ++round) {
    flushing_.swap(dirty_);
    for (H2Connection* c : flushing_) c->run_scheduled_flush();
    flushing_.clear();
  }
}

void Worker::destroy_connection(H2Connection* connection) {
  auto* down = dynamic_cast<DownstreamConnection*>(connection);
  if (down != nullptr && downstream_.erase(down) > 0) {
    downstream_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  delete connection;
}

}  // namespace infergate::gateway
