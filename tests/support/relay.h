// A TCP relay for integration tests: listens on 127.0.0.1:0, connects each accepted
// connection to a target port, copies bytes both ways and counts them, with the times
// of the first and last byte toward the target. Put between the gateway and a backend
// it measures what really crossed that link (compressed or not, how fast).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace infergate::testing {

class TcpRelay {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TcpRelay(int target_port);
  ~TcpRelay();  // closes everything and joins its threads
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  int port() const { return port_; }
  // Bytes relayed toward the target (requests) and back (responses).
  std::uint64_t bytes_to_target() const { return to_target_.load(); }
  std::uint64_t bytes_from_target() const { return from_target_.load(); }
  // When true, connections accepted from now on are held open and never relayed (a
  // backend that accepts and then says nothing); those already relayed go on.
  void set_silent(bool silent) { silent_ = silent; }
  // Forgets what was counted so far (e.g. the health probes before a measurement).
  void reset_counts();
  // Bytes toward the target per second between the first and last byte since the last
  // reset (0 if fewer than two reads happened).
  double rate_to_target() const;

 private:
  void accept_loop();
  void pump(int from, int to, bool toward_target);
  void note_bytes(size_t n, bool toward_target);

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> silent_{false};
  std::atomic<std::uint64_t> to_target_{0};
  std::atomic<std::uint64_t> from_target_{0};
  mutable std::mutex mu_;
  Clock::time_point first_{};
  Clock::time_point last_{};
  std::uint64_t timed_bytes_ = 0;  // toward the target since first_
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace infergate::testing
