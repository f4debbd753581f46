#include "benchmarks/sim/timer_thread.h"

#include <algorithm>

namespace infergate::sim {

TimerThread::TimerThread() : thread_([this] { run(); }) {}

TimerThread::~TimerThread() { stop(); }

void TimerThread::schedule(Clock::time_point due, Task task) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopped_) {
    lock.unlock();
    task();
    return;
  }
  const bool earliest = heap_.empty() || due < heap_.front().due;
  heap_.push_back(Entry{due, next_seq_++, std::move(task)});
  std::push_heap(heap_.begin(), heap_.end(), later);
  lock.unlock();
  if (earliest) cv_.notify_one();
}

TimerThread::Entry TimerThread::pop_locked() {
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Entry e = std::move(heap_.back());
  heap_.pop_back();
  return e;
}

void TimerThread::run() {
  std::vector<Task> batch;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const Clock::time_point now = Clock::now();
    if (heap_.front().due > now) {
      // A copy: wait_until reads its time point again after unlocking, and the heap may
      // grow (reallocate) meanwhile.
      const Clock::time_point due = heap_.front().due;
      cv_.wait_until(lock, due);
      continue;
    }
    while (!heap_.empty() && heap_.front().due <= now) batch.push_back(pop_locked().task);
    lock.unlock();
    for (Task& t : batch) t();
    batch.clear();
    lock.lock();
  }
  // Drain: everything left runs now, in due order. Tasks scheduled meanwhile join in.
  while (!heap_.empty()) {
    Task t = pop_locked().task;
    lock.unlock();
    t();
    lock.lock();
  }
  stopped_ = true;
}

void TimerThread::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace infergate::sim
