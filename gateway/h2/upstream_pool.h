// A worker's connections to one backend. Hands out a connection with room for one more
// stream, opening another when all are at their limit. Worker thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace infergate::gateway {

class Worker;
class UpstreamConnection;

class UpstreamPool {
 public:
  UpstreamPool(Worker& worker, std::uint32_t backend) : worker_(worker), backend_(backend) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A connection for one more stream: the least busy one under its limit, else a new
  // one, else (at the connection cap) the least busy one.
  UpstreamConnection* acquire();
  // Called by a connection when it closes (it is deleted right after).
  void forget(UpstreamConnection* connection);
  // Closes every connection (worker shutdown).
  void close_all();
  // The worker's tick for each connection (keepalive, retirement).
  void on_tick(std::chrono::steady_clock::time_point now);

  size_t connection_count() const { return connections_.size(); }

 private:
  Worker& worker_;
  std::uint32_t backend_;
  std::vector<UpstreamConnection*> connections_;
};

}  // namespace infergate::gateway
