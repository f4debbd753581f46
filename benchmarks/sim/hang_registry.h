// Lifetime and shutdown support for call objects. RefCounted: a call object that gRPC and
// sim-internal parties (the timer thread, shutdown) point at is deleted by whoever drops the
// last reference. HangRegistry: the calls held without an answer (--hang, --hang-rate), so
// that shutdown can answer them at once. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace infergate::sim {

class RefCounted {
 public:
  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 protected:
  explicit RefCounted(int initial_refs) : refs_(initial_refs) {}
  virtual ~RefCounted() = default;

 private:
  std::atomic<int> refs_;
};

// A call that shutdown can end early.
class Abortable : public RefCounted {
 public:
  // Answers the call at once (the server is shutting down); any thread, any number of times.
  virtual void abort() = 0;

 protected:
  using RefCounted::RefCounted;
};

class HangRegistry {
 public:
  // Registers a held call. Returns false once shutdown has begun: answer the call at once.
  bool add(Abortable* call);
  // Unregisters a call (from its OnDone).
  void remove(Abortable* call);
  // Refuses new calls and aborts every registered one.
  void close_and_abort_all();

 private:
  std::mutex mu_;
  bool closed_ = false;
  std::unordered_set<Abortable*> calls_;
};

// infergate_sim_inflight_requests and its maximum: inference requests inside the server.
struct InflightGauge {
  std::atomic<std::int64_t> current{0};
  std::atomic<std::int64_t> max{0};

  void enter() {
    const std::int64_t now = current.fetch_add(1, std::memory_order_relaxed) + 1;
    std::int64_t seen = max.load(std::memory_order_relaxed);
    while (now > seen && !max.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void leave() { current.fetch_sub(1, std::memory_order_relaxed); }
};

}  // namespace infergate::sim
