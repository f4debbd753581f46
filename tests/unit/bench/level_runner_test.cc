// The level runner against a fake clock and a scripted driver: no sockets, no sleeps.
#include "benchmarks/bench/core/level_runner.h"

#include <gtest/gtest.h>

#include <cmath>

namespace infergate::bench {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

// Time moves only when the runner sleeps; CPU time grows with it at 10%.
class FakeClock : public RunClock {
 public:
  TimePoint now() override { return now_; }
  void sleep_until(TimePoint t) override { now_ = std::max(now_, t); }
  double cpu_seconds() override {
    return std::chrono::duration<double>(now_ - TimePoint{}).count() * 0.1;
  }

 private:
  TimePoint now_ = TimePoint{} + 1h;
};

// What the scripted server does at a moment: answers per second, their latency, code.
struct Behaviour {
  double rate = 100;
  std::int64_t latency_ns = 20'000'000;
  std::uint8_t code = kCodeOk;
};

// Records, at each poll, the answers its script says arrived since the last poll.
class ScriptedDriver : public LoadDriver {
 public:
  ScriptedDriver(Recorder& recorder, std::function<Behaviour(double seconds)> script)
      : recorder_(recorder), script_(std::move(script)) {}

  void start(double level) override {
    level_ = level;
    started_ = true;
  }
  void stop(std::chrono::nanoseconds drain) override {
    stops_.push_back(drain);
    started_ = false;
  }
  void poll(TimePoint now) override {
    if (!started_) return;
    if (last_ == TimePoint{}) last_ = now - 100ms;
    double t = std::chrono::duration<double>(now - start_time()).count();
    Behaviour b = script_(t);
    double due = b.rate * std::chrono::duration<double>(now - last_).count() + carry_;
    int n = static_cast<int>(std::floor(due));
    carry_ = due - n;
    for (int i = 0; i < n; ++i) recorder_.record(0, {.latency_ns = b.latency_ns, .code = b.code});
    issued_ += static_cast<std::uint64_t>(n);
    last_ = now;
  }
  LoadCounters take_counters() override {
    LoadCounters c{.issued = issued_, .max_outstanding = static_cast<std::uint64_t>(level_)};
    issued_ = 0;
    return c;
  }

  std::vector<std::chrono::nanoseconds> stops_;

 private:
  TimePoint start_time() const { return TimePoint{} + 1h; }

  Recorder& recorder_;
  std::function<Behaviour(double)> script_;
  bool started_ = false;
  double level_ = 0;
  TimePoint last_{};
  double carry_ = 0;
  std::uint64_t issued_ = 0;
};

class LevelRunnerTest : public ::testing::Test {
 protected:
  LevelOutcome run(std::function<Behaviour(double)> script, RunnerOptions options = {},
                   bool check_reachable = false) {
    options.measurement_interval = 1s;
    options.request_payload_bytes = 1024;
    driver_ = std::make_unique<ScriptedDriver>(recorder_, std::move(script));
    LevelRunner runner(
        options, clock_, recorder_, [this](const WindowReport& w) { reports_.push_back(w); },
        &interrupted_);
    return runner.run(*driver_, 4, check_reachable, 5s);
  }

  FakeClock clock_;
  Recorder recorder_;
  std::unique_ptr<ScriptedDriver> driver_;
  std::vector<WindowReport> reports_;
  std::atomic<bool> interrupted_{false};
};

TEST_F(LevelRunnerTest, SteadyLoadIsStableAfterThreeWindows) {
  LevelOutcome out = run([](double) { return Behaviour{}; });
  EXPECT_FALSE(out.unreachable);
  EXPECT_FALSE(out.interrupted);
  const LevelResult& r = out.result;
  EXPECT_TRUE(r.stable);
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.level, 4);
  EXPECT_NEAR(r.throughput, 100, 1);
  EXPECT_DOUBLE_EQ(r.latency.p50_us, 20000);
  EXPECT_NEAR(r.duration_s, 3, 1e-9);
  EXPECT_NEAR(r.cpu_us_per_request, 0.3 * 1e6 / static_cast<double>(r.requests), 1e-6);
  EXPECT_DOUBLE_EQ(r.request_bytes_per_second, r.throughput * 1024);
  ASSERT_EQ(reports_.size(), 3u);
  EXPECT_EQ(reports_[2].window, 3);
  EXPECT_EQ(reports_[2].max_trials, 10);
  ASSERT_EQ(driver_->stops_.size(), 1u);
  EXPECT_EQ(driver_->stops_[0], 5s);
}

TEST_F(LevelRunnerTest, UnstableLoadRunsMaxTrialsAndReportsTheLastThree) {
  // Latency alternates between 10 ms and 40 ms from one window (polls in (k, k+1] s) to the next.
  LevelOutcome out = run(
      [](double t) {
        return Behaviour{.latency_ns = static_cast<int>(std::ceil(t - 1e-9)) % 2 == 0 ? 10'000'000
                                                                                      : 40'000'000};
      },
      {.max_trials = 5});
  EXPECT_FALSE(out.result.stable);
  EXPECT_EQ(out.result.windows, 5);
  EXPECT_EQ(reports_.size(), 5u);
  EXPECT_NEAR(out.result.duration_s, 3, 1e-9);
  EXPECT_DOUBLE_EQ(out.result.latency.max_us, 40000);
}

TEST_F(LevelRunnerTest, StabilityCanArriveLate) {
  // Throughput settles at 100/s after two slow windows.
  LevelOutcome out = run([](double t) { return Behaviour{.rate = t < 2 ? 30.0 : 100.0}; });
  EXPECT_TRUE(out.result.stable);
  EXPECT_EQ(out.result.windows, 5);
  EXPECT_NEAR(out.result.throughput, 100, 1);
}

TEST_F(LevelRunnerTest, WarmupIsDiscarded) {
  LevelOutcome out =
      run([](double t) { return Behaviour{.latency_ns = t < 2 ? 900'000'000 : 20'000'000}; },
          {.warmup = 2s});
  EXPECT_TRUE(out.result.stable);
  EXPECT_DOUBLE_EQ(out.result.latency.max_us, 20000);
}

TEST_F(LevelRunnerTest, StaleSamplesFromEarlierLevelsAreDiscarded) {
  recorder_.record(0, {.latency_ns = 5'000'000'000});
  LevelOutcome out = run([](double) { return Behaviour{}; });
  EXPECT_DOUBLE_EQ(out.result.latency.max_us, 20000);
}

TEST_F(LevelRunnerTest, AllUnavailableInTheFirstWindowIsUnreachable) {
  auto refused = [](double) { return Behaviour{.code = kCodeUnavailable}; };
  LevelOutcome out = run(refused, {}, /*check_reachable=*/true);
  EXPECT_TRUE(out.unreachable);
  EXPECT_EQ(out.result.windows, 1);
  ASSERT_EQ(driver_->stops_.size(), 1u);
  EXPECT_EQ(driver_->stops_[0], 0s);  // cancelled at once
  EXPECT_FALSE(run(refused, {}, /*check_reachable=*/false).unreachable);
}

TEST_F(LevelRunnerTest, ErrorsAreCountedAndTheFirstMessageKept) {
  LevelOutcome out = run([](double t) {
    std::uint8_t code = static_cast<int>(t * 10) % 2 == 0 ? kCodeOk : 13;
    return Behaviour{.code = code};
  });
  EXPECT_GT(out.result.error_count, 0u);
  EXPECT_EQ(out.result.errors.count("INTERNAL"), 1u);
  EXPECT_GT(reports_[0].errors, 0u);
}

TEST_F(LevelRunnerTest, InterruptEndsTheLevelAndCancels) {
  interrupted_ = true;
  LevelOutcome out = run([](double) { return Behaviour{}; });
  EXPECT_TRUE(out.interrupted);
  EXPECT_EQ(out.result.windows, 0);
  ASSERT_EQ(driver_->stops_.size(), 1u);
  EXPECT_EQ(driver_->stops_[0], 0s);
}

}  // namespace
}  // namespace infergate::bench
