#include "gateway/stream/admission_gate.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace infergate::gateway {
namespace {

using namespace std::chrono_literals;
using Verdict = routing::AdmissionController::Verdict;

AdmissionGate::Request req(std::uint64_t id, std::string job) {
  return AdmissionGate::Request{.id = id, .job = std::move(job), .bytes = 100};
}

// An io_context run by its own thread until the runner is destroyed.
struct Runner {
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~Runner() {
    work.reset();
    io.stop();
    thread.join();
  }
};

TEST(AdmissionGate, AQueueTimeoutFiresFromTheControlTimerOnTheWaitersWorker) {
  Runner control, worker;
  AdmissionGate gate(control.io, {.max_inflight = 1, .queue_timeout = 50ms}, true);
  ASSERT_EQ(gate.admit(req(1, "a"), worker.io, {}).verdict, Verdict::kAdmitted);
  std::promise<std::pair<AdmissionGate::Outcome, std::thread::id>> got;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(gate.admit(req(2, "a"), worker.io,
                       [&](const AdmissionGate::Outcome& o) {
                         got.set_value({o, std::this_thread::get_id()});
                       })
                .verdict,
            Verdict::kQueued);
  auto f = got.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto [o, tid] = f.get();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_FALSE(o.admitted);
  EXPECT_EQ(o.limit, routing::Limit::kQueueTimeout);
  EXPECT_EQ(tid, worker.thread.get_id());
  EXPECT_EQ(gate.stats().queued, 0u);
  EXPECT_EQ(gate.stats().rejected[static_cast<size_t>(routing::Limit::kQueueTimeout)], 1u);
}

TEST(AdmissionGate, ReleaseAdmitsTheNextWaiterOnItsWorker) {
  Runner control, worker;
  AdmissionGate gate(control.io, {.max_inflight = 1}, true);
  ASSERT_EQ(gate.admit(req(1, "a"), worker.io, {}).verdict, Verdict::kAdmitted);
  std::promise<AdmissionGate::Outcome> got;
  ASSERT_EQ(
      gate.admit(req(2, "b"), worker.io, [&](const AdmissionGate::Outcome& o) { got.set_value(o); })
          .verdict,
      Verdict::kQueued);
  gate.release(req(1, "a"));
  auto f = got.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().admitted);
  EXPECT_EQ(gate.stats().inflight, 1u);
}

TEST(AdmissionGate, ARequestThatFitsBehindCappedJobsIsAdmittedAtOnce) {
  boost::asio::io_context control, worker;
  AdmissionGate gate(control, {.per_job_max_inflight = 1}, true);
  ASSERT_EQ(gate.admit(req(1, "a"), worker, {}).verdict, Verdict::kAdmitted);
  ASSERT_EQ(gate.admit(req(2, "a"), worker, {}).verdict, Verdict::kQueued);
  // Job b is held by nothing: its answer is "admitted", not a callback.
  EXPECT_EQ(gate.admit(req(3, "b"), worker, [](const AdmissionGate::Outcome&) { FAIL(); }).verdict,
            Verdict::kAdmitted);
  EXPECT_EQ(worker.poll(), 0u);
  EXPECT_EQ(gate.stats().inflight, 2u);
}

TEST(AdmissionGate, TheDestructorCancelsTheTimer) {
  boost::asio::io_context control, worker;
  bool called = false;
  {
    AdmissionGate gate(control, {.max_inflight = 1, .queue_timeout = 3600s}, true);
    gate.admit(req(1, "a"), worker, {});
    gate.admit(req(2, "a"), worker, [&](const AdmissionGate::Outcome&) { called = true; });
  }
  // The timer's wait completes as cancelled; nothing is left for an hour from
  // now.
  const auto start = std::chrono::steady_clock::now();
  control.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(worker.poll(), 0u);
  EXPECT_FALSE(called);
}

TEST(AdmissionGate, AfterStopNothingIsPosted) {
  boost::asio::io_context control, worker;
  AdmissionGate gate(control, {.max_inflight = 1, .queue_timeout = 1ns}, true);
  gate.admit(req(1, "a"), worker, {});
  gate.admit(req(2, "a"), worker, [](const AdmissionGate::Outcome&) { FAIL(); });
  gate.stop();
  gate.release(req(1, "a"));
  control.run();
  EXPECT_EQ(worker.poll(), 0u);
  EXPECT_EQ(gate.stats().inflight, 0u);
}

// Many threads admit, release and cancel while the control thread times waiters
// out; then the gate goes away under them. Run under ThreadSanitizer.
TEST(AdmissionGate, ConcurrentUseAndShutdown) {
  for (int round = 0; round < 5; ++round) {
    auto control = std::make_unique<Runner>();
    std::vector<std::unique_ptr<Runner>> workers;
    for (int i = 0; i < 3; ++i) workers.push_back(std::make_unique<Runner>());
    auto gate = std::make_shared<AdmissionGate>(
        control->io,
        routing::AdmissionLimits{
            .max_inflight = 4, .per_job_max_inflight = 2, .queue_timeout = 2ms},
        true);
    std::atomic<std::uint64_t> outcomes{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 3; ++t) {
      clients.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(t + round * 7));
        std::deque<AdmissionGate::Request> held;
        for (int i = 0; i < 3000; ++i) {
          const std::uint64_t id = gate->next_id();
          const AdmissionGate::Request r = req(id, "j" + std::to_string(rng() % 5));
          const auto d = gate->admit(r, workers[static_cast<size_t>(t)]->io,
                                     [&, gate_ref = std::weak_ptr<AdmissionGate>(gate),
                                      r](const AdmissionGate::Outcome& o) {
                                       ++outcomes;
                                       if (auto g = gate_ref.lock(); g && o.admitted) {
                                         g->release(r);
                                       }
                                     });
          if (d.verdict == Verdict::kAdmitted) {
            held.push_back(r);
            if (held.size() > 2) {
              gate->release(held.front());
              held.pop_front();
            }
          } else if (d.verdict == Verdict::kQueued && rng() % 3 == 0) {
            gate->cancel(id);
          }
        }
        for (const auto& r : held) gate->release(r);
      });
    }
    for (auto& c : clients) c.join();
    gate->stop();
    gate.reset();  // the workers' pending callbacks hold only weak references
    workers.clear();
    control.reset();
    EXPECT_GT(outcomes.load(), 0u);
  }
}

}  // namespace
}  // namespace infergate::gateway
