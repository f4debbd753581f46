// Google Benchmark: what one admission event costs with n requests waiting in the queue
// (routing::AdmissionController, the pure part of the gateway's admission gate).
//   build/benchmarks/micro/infergate-admission-bench
// Each iteration keeps the queue at n waiters (spread over 64 jobs) and does the work the
// gate does for one event, including next_wake() (the gate re-arms its timer after each):
//   AdmitRelease: a running request ends, poll() admits the next waiter, a new request
//                 queues (max_inflight = 1, so every release admits exactly one).
//   Cancel:       a waiter picked at random leaves the queue, a new request queues.
//   Timeout:      time moves on so that the oldest waiter's queue_timeout runs out, poll()
//                 rejects it, a new request queues.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "routing/admission.h"

namespace {

using infergate::routing::AdmissionController;
using AC = AdmissionController;
using namespace std::chrono_literals;

constexpr std::uint64_t kJobs = 64;

const std::vector<std::string>& job_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (std::uint64_t j = 0; j < kJobs; ++j) v.push_back("job-" + std::to_string(j));
    return v;
  }();
  return names;
}

AC::Request request(std::uint64_t id) {
  return AC::Request{.id = id, .job = job_names()[id % kJobs], .bytes = 1000};
}

// A controller with one request running and `n` queued (ids 1..n; the running one is 0).
void fill(AC& ac, std::int64_t n, AC::TimePoint now) {
  ac.admit(request(0), now);
  for (std::int64_t i = 1; i <= n; ++i) ac.admit(request(static_cast<std::uint64_t>(i)), now);
}

void BM_AdmitRelease(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  AC::TimePoint now = AC::TimePoint{} + 1000s;
  AC ac({.max_inflight = 1, .max_queue = 1u << 30, .queue_timeout = 3600s});
  fill(ac, n, now);
  std::uint64_t running = 0;
  std::uint64_t next = static_cast<std::uint64_t>(n) + 1;
  for (auto _ : state) {
    now += 1us;
    ac.release(request(running), now);
    std::vector<AC::Outcome> out = ac.poll(now);
    if (out.size() != 1 || !out[0].admitted) {
      state.SkipWithError("expected one admission");
      break;
    }
    running = out[0].id;
    ac.admit(request(next++), now);
    benchmark::DoNotOptimize(ac.next_wake(now));
  }
  state.counters["waiters"] = static_cast<double>(ac.queued());
}

void BM_Cancel(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  AC::TimePoint now = AC::TimePoint{} + 1000s;
  AC ac({.max_inflight = 1, .max_queue = 1u << 30, .queue_timeout = 3600s});
  fill(ac, n, now);
  std::vector<std::uint64_t> queued;
  for (std::int64_t i = 1; i <= n; ++i) queued.push_back(static_cast<std::uint64_t>(i));
  std::uint64_t next = static_cast<std::uint64_t>(n) + 1;
  std::uint64_t lcg = 12345;
  for (auto _ : state) {
    now += 1us;
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    const size_t k = static_cast<size_t>((lcg >> 33) % queued.size());
    if (!ac.cancel(queued[k])) {
      state.SkipWithError("cancel missed");
      break;
    }
    queued[k] = next;
    ac.admit(request(next++), now);
    benchmark::DoNotOptimize(ac.next_wake(now));
  }
  state.counters["waiters"] = static_cast<double>(ac.queued());
}

void BM_Timeout(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  // Waiters queue 1 ms apart, so each 1 ms step times exactly one out.
  const AC::Duration timeout = 1ms * n;
  AC::TimePoint now = AC::TimePoint{} + 1000s;
  AC ac({.max_inflight = 1, .max_queue = 1u << 30, .queue_timeout = timeout});
  ac.admit(request(0), now);
  std::uint64_t next = 1;
  for (std::int64_t i = 0; i < n; ++i) {
    now += 1ms;
    ac.admit(request(next++), now);
  }
  for (auto _ : state) {
    now += 1ms;
    std::vector<AC::Outcome> out = ac.poll(now);
    if (out.size() != 1 || out[0].admitted) {
      state.SkipWithError("expected one timeout");
      break;
    }
    ac.admit(request(next++), now);
    benchmark::DoNotOptimize(ac.next_wake(now));
  }
  state.counters["waiters"] = static_cast<double>(ac.queued());
}

BENCHMARK(BM_AdmitRelease)->Arg(10)->Arg(10000);
BENCHMARK(BM_Cancel)->Arg(10)->Arg(10000);
BENCHMARK(BM_Timeout)->Arg(10)->Arg(10000);

}  // namespace

BENCHMARK_MAIN();
