// One thread that runs tasks when they fall due: completes simulated executions without
// blocking gRPC threads. schedule() may be called from any thread; tasks run on the timer
// thread, in due order, and must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace infergate::sim {

class TimerThread {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  TimerThread();
  ~TimerThread();  // stop()

  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  // Runs `task` on the timer thread at `due` (at once if it has passed). Any thread.
  // After stop(), runs `task` inline.
  void schedule(Clock::time_point due, Task task);

  // Runs every pending task at once (in due order), then ends the thread. Idempotent.
  void stop();

 private:
  struct Entry {
    Clock::time_point due;
    std::uint64_t seq;  // ties keep scheduling order
    Task task;
  };
  static bool later(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
  }

  void run();
  Entry pop_locked();

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> heap_;  // min-heap on (due, seq)
  std::uint64_t next_seq_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace infergate::sim
