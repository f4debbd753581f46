// cluster: the limits of `limits:` held across every gateway replica that names the same
// Redis (cluster.redis), coordinated on the control io_context; the data path checks only
// this replica's numbers in the AdmissionGate.
//
// - max_jobs (and limits.groups[].max_jobs) are exact: a job this replica does not know
//   is admitted by one Lua script, an atomic check-and-insert on a sorted set of job
//   leases (member: the job, score: when its lease ends, Redis's clock). Every half lease
//   each replica renews the leases of its active jobs; a replica that dies stops
//   renewing and its jobs leave within one lease of its last renewal. The RPCs of a new
//   job wait for that answer (at most cluster.timeout; then the replica decides alone).
// - max_inflight, max_bytes_in_flight and link_bandwidth are shared by leased shares:
//   every half lease each replica reports its demand (what is in flight and queued; the
//   bytes admitted since the last report, for the link) and takes its share in one Lua
//   script, which keeps the sum of all shares within the limit: a share grows only into
//   what the others do not hold, and shrinks no lower than what its replica has in use.
//   A replica is live while its report is under two leases old; a dead one's share
//   returns to the others then. Groups' max_inflight splits evenly over the replicas.
// - Without Redis (it cannot be reached, or answers late) each replica applies an even
//   split of every limit over the last known number of live replicas (by its rank among
//   them, so the parts add up to the limit), logs it once, exports
//   infergate_cluster_connected 0, and takes its share again when Redis answers; its
//   first share after that is at most its split, so the sum still holds.
// Keys: infergate:{NAME}:jobs, ...:jobs:GROUP, ...:replicas, ...:shares, ...:demand (the
// braces are a Redis Cluster hash tag: one slot).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "gateway/fleet/redis_client.h"
#include "gateway/stream/admission_gate.h"

namespace infergate::gateway {

class ClusterLimits {
 public:
  // The shared limits, in the order of Snapshot::shares.
  static constexpr std::array<const char*, 3> kSharedNames = {"max_inflight", "max_bytes_in_flight",
                                                              "link_bandwidth"};
  struct Snapshot {
    bool connected = false;
    size_t replicas = 0;                    // live replicas, as last seen (this one included)
    std::array<std::uint64_t, 3> shares{};  // this replica's, by kSharedNames (0: not set)
    std::string replica;                    // this replica's id
  };

  // Applies shares to `gate` from now on. Control thread.
  ClusterLimits(boost::asio::io_context& control, std::shared_ptr<AdmissionGate> gate);
  ~ClusterLimits();  // the configured limits apply again; nothing runs after it
  ClusterLimits(const ClusterLimits&) = delete;
  ClusterLimits& operator=(const ClusterLimits&) = delete;

  // The cluster's settings and the configured limits (at start and on every reload).
  // Control thread.
  void configure(const config::ClusterConfig& cluster, const routing::AdmissionLimits& limits);
  Snapshot snapshot() const;  // any thread

  // Pure helpers (unit-tested): part `rank` of `total` split over `n` (the parts add up
  // to `total`); this replica's limits from the configured ones and its shares.
  static std::uint64_t split(std::uint64_t total, size_t n, size_t rank);

 private:
  void round();
  void renew_jobs();
  // Whether max_jobs or a group's max_jobs is set (only then do jobs go to Redis).
  bool jobs_capped() const;
  // Asks in flight that will not be answered (the client replaced or gone): decided here.
  void answer_asks_here();
  void on_shares(const RedisValue* reply, const std::string& error);
  void fall_back(const std::string& why);
  void apply(bool from_shares);
  void ask_job(const std::string& job, const std::string& group, AdmissionGate::JobAnswer answer);
  std::string key(const std::string& suffix) const;

  boost::asio::io_context& control_;
  std::shared_ptr<AdmissionGate> gate_;
  std::unique_ptr<RedisClient> redis_;
  boost::asio::steady_timer timer_;
  config::ClusterConfig config_;
  routing::AdmissionLimits limits_;  // as configured
  std::string id_;
  bool configured_ = false;
  bool in_flight_ = false;                                  // a round's shares script is out
  bool renewing_ = false;                                   // a renewal of the job leases is out
  std::map<std::uint64_t, AdmissionGate::JobAnswer> asks_;  // jobs asked about, by ask
  std::uint64_t next_ask_ = 0;
  bool connected_ = false;
  bool ever_connected_ = false;
  bool fallback_logged_ = false;
  // After a reconnect, shares are capped at what this replica holds for two leases, and
  // after that while fewer replicas have reported than were splitting the limits during
  // the outage (the others may still be on their split: they retry on their own backoff),
  // at most until cap_bound_ (a replica that died meanwhile never reports).
  bool cap_next_ = false;
  std::chrono::steady_clock::time_point cap_until_{};
  std::chrono::steady_clock::time_point cap_bound_{};
  size_t expected_back_ = 0;              // the replicas the fallback split counted (0: no window)
  std::chrono::nanoseconds retry_max_{};  // the Redis client's longest reconnect backoff
  // The replicas an even split counts: the last known live ones (or
  // cluster.expected_replicas before any), and while a reconnect's window is open, those
  // the split counted before it.
  size_t split_count() const;
  // After losing Redis: the smaller of the last share and the split until then, while
  // what other replicas admitted above their split drains.
  std::chrono::steady_clock::time_point cautious_until_{};
  std::array<std::uint64_t, 3> last_shares_{};  // the last shares Redis gave
  size_t replicas_ = 0;                         // last known live replicas
  size_t rank_ = 0;                             // this replica's place among them
  std::array<std::uint64_t, 3> shares_{};
  std::uint64_t admitted_at_last_round_ = 0;
  std::chrono::steady_clock::time_point last_round_{};
  std::shared_ptr<std::atomic<bool>> alive_;
  mutable std::mutex snapshot_mutex_;
  Snapshot snapshot_;
};

}  // namespace infergate::gateway
