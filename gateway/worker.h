// One data-plane thread: its io_context, the downstream connections accepted onto it,
// its own upstream pools (one per backend), its block pool and read buffer, and its
// statistics. Nothing here is shared with other workers except through atomics, so the
// data path takes no locks.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gateway/h2/block_pool.h"
#include "gateway/h2/chunk_cache.h"
#include "gateway/log_limiter.h"
#include "gateway/options.h"
#include "gateway/stats.h"
#include "gateway/stream/legs.h"
#include "health/post_if_alive.h"
#include "routing/affinity.h"
#include "routing/fleet.h"
#include "routing/picker.h"
#include "routing/retry_budget.h"

namespace infergate::gateway {

class H2Connection;
class DownstreamConnection;
class UpstreamPool;
class FanOut;
class AdmissionGate;
class Worker;
class ProxyStream;
class TlsContext;

// What all workers share with the control plane.
struct WorkerShared {
  std::shared_ptr<routing::AffinityTable> affinity;
  std::shared_ptr<FanOut> fanout;
  // A backend hit the passive failure threshold (any thread; posts to control).
  std::function<void(std::uint32_t backend_id)> report_outliers;
  // Backends' models may have changed (after repository load/unload): every backend's
  // inventory is asked for again, and `settled` runs (on the control thread, or at once
  // if the monitor is gone) once the fleet that shows the answers is published.
  std::function<void(std::function<void()> settled)> refresh_inventory;
  // Admission control (never null; disabled when no limit is set).
  std::shared_ptr<AdmissionGate> admission;
  // Streams parked on every worker because their backends were at max_inflight, and the
  // call that wakes one of them on some worker other than `from` (any thread).
  std::shared_ptr<std::atomic<std::int64_t>> parked;
  std::function<void(const Worker* from)> wake_parked_elsewhere;
  // Where messages are compressed, off the event loops.
  std::shared_ptr<boost::asio::thread_pool> compression;
  // Every worker's buffered stream bytes together (limits.max_buffered_bytes).
  std::shared_ptr<BufferBudget> buffer_budget;
  // A connection to a backend could not be made (any thread; posts to control): names
  // found in DNS are asked again at once. Null: nothing to do.
  std::function<void()> connect_failed;
  // The data plane's time: every deadline and duration of connections and streams is
  // read from it. Null: std::chrono::steady_clock. (Unit tests pass a clock they move.)
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class Worker {
 public:
  Worker(int index, const DataPlaneOptions& options, const RoutingOptions& routing,
         WorkerShared shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread. Any thread.
  void start();
  // Stops the io_context and joins the thread; connections are closed first. Any thread
  // but this worker's.
  void stop();

  // Takes a freshly accepted socket (already bound to io()). This worker's thread.
  void adopt(boost::asio::ip::tcp::socket socket, std::shared_ptr<const TlsContext> tls = nullptr);
  // Sends GOAWAY on every downstream connection and accepts no new streams. Posted.
  void begin_drain();
  // Installs a new view of the fleet; pools of backends that left are closed. Posted
  // (or before start()).
  void set_fleet(std::shared_ptr<const routing::Fleet> fleet,
                 std::shared_ptr<const TargetTable> targets);
  void set_routing(const RoutingOptions& routing);

  // A stream waits for a slot on a backend at its max_inflight, in a FIFO. This worker's
  // thread.
  void park(ProxyStream* stream, Lifeline::Link alive);
  // A slot freed: the longest-parked stream tries to route again (O(1); it parks again
  // at the back if it still finds no slot). Posted, or on this worker's thread.
  void wake_one_parked();
  // A stream waits for a backend to serve its model (routing.wait_for_backend); it tries
  // again whenever the fleet changes. This worker's thread.
  void await_model(ProxyStream* stream, Lifeline::Link alive, std::uint32_t wait);
  // Every parked or awaiting stream tries to route again (the fleet changed). This
  // worker's thread.
  void resume_parked();
  // Streams parked here (any thread).
  std::int64_t parked_here() const { return parked_here_.load(std::memory_order_relaxed); }

  // Streams currently open on this worker (any thread: an atomic).
  std::uint64_t active_streams() const { return active_streams_.load(std::memory_order_relaxed); }
  std::uint64_t downstream_connections() const {
    return downstream_count_.load(std::memory_order_relaxed);
  }

  // --- for the connections and streams of this worker (this worker's thread) ---
  boost::asio::io_context& io() { return io_; }
  BlockPool& blocks() { return blocks_; }
  // Small per-request allocations (nghttp2's, the exchanges'); see ChunkCache.
  ChunkCache& chunks() { return chunks_; }
  const BlockPool& blocks() const { return blocks_; }
  std::span<std::uint8_t> read_buffer() { return {read_buffer_.get(), kReadBufferBytes}; }
  const DataPlaneOptions& options() const { return options_; }
  WorkerStats& stats() { return stats_; }
  const WorkerStats& stats() const { return stats_; }
  bool draining() const { return draining_; }
  int index() const { return index_; }

  const std::shared_ptr<const routing::Fleet>& fleet() const { return fleet_; }
  // Where backend `id` is; a default (unresolved) target if unknown.
  const BackendTarget& target(std::uint32_t id) const;
  UpstreamPool& pool(std::uint32_t backend_id);
  // What opens the backend streams of this worker's exchanges: its pools, unless
  // use_connector() named another (which must outlive every stream of this worker).
  BackendConnector& connector() { return *connector_; }
  void use_connector(BackendConnector& connector) { connector_ = &connector; }
  // Now, by the data plane's clock (WorkerShared::clock).
  std::chrono::steady_clock::time_point now() const {
    return shared_.clock ? shared_.clock() : std::chrono::steady_clock::now();
  }
  routing::Picker& picker() { return picker_; }
  routing::RetryBudget& retry_budget() { return retry_budget_; }
  const RoutingOptions& routing() const { return routing_; }
  const WorkerShared& shared() const { return shared_; }

  // Warnings about backends this worker cannot reach, rate-limited.
  LogLimiter& backend_warnings() { return backend_warnings_; }
  // Warnings about clients closed for abuse or for overstaying a bound, rate-limited.
  LogLimiter& client_warnings() { return client_warnings_; }
  // A reloaded config's bounds on streams (the limits.* caps and backend_wait_timeout;
  // windows and connection timers keep their values until a restart). Posted.
  void set_stream_limits(const DataPlaneOptions& options);

  void stream_opened() { active_streams_.fetch_add(1, std::memory_order_relaxed); }
  void stream_closed() { active_streams_.fetch_sub(1, std::memory_order_relaxed); }

  // Queues a connection's flush for the end of the current event. This worker's thread.
  void mark_dirty(H2Connection* connection);
  // Runs the queued flushes (more may be queued meanwhile; bounded rounds).
  void flush_dirty();
  // Brackets a connection's read event (H2Connection::on_readable), which flushes what it
  // marked itself: marks made meanwhile post no flush of their own, and what is still
  // marked when the read is over (a batched read's flushes) gets one posted then. Without
  // it every read that forwards something would leave a handler for a later turn, and the
  // worker an extra pass of its event loop (an epoll_wait) per read.
  class ReadScope {
   public:
    explicit ReadScope(Worker& worker) : worker_(worker) { ++worker_.reading_; }
    ~ReadScope() {
      if (--worker_.reading_ == 0) worker_.post_dirty_flush();
    }
    ReadScope(const ReadScope&) = delete;
    ReadScope& operator=(const ReadScope&) = delete;

   private:
    Worker& worker_;
  };

  // Removes and deletes a closed connection (called from its own reap handler).
  void destroy_connection(H2Connection* connection);

  // How often the tick checks every connection's and stream's deadlines; the timers
  // are as precise as this.
  static constexpr std::chrono::milliseconds kTick{100};

 private:
  static constexpr size_t kReadBufferBytes = 256 * 1024;

  // Opens a backend stream on a connection of the backend's pool.
  class PoolConnector final : public BackendConnector {
   public:
    explicit PoolConnector(Worker& worker) : worker_(worker) {}
    bool open(std::uint32_t backend_id, BackendStream& stream) override;

   private:
    Worker& worker_;
  };

  void arm_tick();
  // Checks the deadlines of every connection (and through them, every stream) on this
  // worker, and about once a second trims the block pool and the chunk cache.
  void on_tick();

  int index_;
  DataPlaneOptions options_;
  RoutingOptions routing_;
  WorkerShared shared_;
  std::shared_ptr<const routing::Fleet> fleet_;
  std::shared_ptr<const TargetTable> targets_;
  routing::Picker picker_;
  routing::RetryBudget retry_budget_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer tick_{io_};
  int ticks_ = 0;
  std::thread thread_;
  // Before everything that allocates from it (destroyed after).
  ChunkCache chunks_;
  BlockPool blocks_;
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  WorkerStats stats_;
  std::unordered_map<std::uint32_t, std::unique_ptr<UpstreamPool>> pools_;
  PoolConnector pool_connector_{*this};
  BackendConnector* connector_ = &pool_connector_;
  std::unordered_set<DownstreamConnection*> downstream_;
  std::deque<std::pair<ProxyStream*, Lifeline::Link>> parked_;
  std::atomic<std::int64_t> parked_here_{0};
  // Streams waiting for their model, each with the number of its wait (a stream's older
  // entries, from waits that ended, are stale).
  struct Awaiting {
    ProxyStream* stream;
    Lifeline::Link alive;
    std::uint32_t wait;
    bool current() const;
  };
  std::vector<Awaiting> awaiting_model_;
  void forget_gone_waiters();
  LogLimiter backend_warnings_;
  LogLimiter client_warnings_;
  // Posts the flush of what is marked, unless one is posted already or nothing is marked.
  void post_dirty_flush();
  std::vector<H2Connection*> dirty_;
  std::vector<H2Connection*> flushing_;
  bool dirty_posted_ = false;
  int reading_ = 0;  // read events in progress (ReadScope)
  bool draining_ = false;
  std::atomic<std::uint64_t> active_streams_{0};
  std::atomic<std::uint64_t> downstream_count_{0};
};

}  // namespace infergate::gateway
