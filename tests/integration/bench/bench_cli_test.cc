// infergate-bench's command line and exit statuses, as a process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

#include "tests/integration/bench/bench_harness.h"

namespace infergate::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(BenchCli, HelpExitsZero) {
  BenchRun run = run_bench({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.output(), HasSubstr("--request-rate-range START[:END[:STEP]]"));
}

TEST(BenchCli, BadFlagsExitTwoWithAReason) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "-u/--url is required"},
           {{"-u", "127.0.0.1:1", "--bogus"}, "unknown option '--bogus'"},
           {{"-u", "127.0.0.1:1", "--concurrency-range", "0"}, "--concurrency-range: range '0'"},
           {{"-u", "127.0.0.1:1", "--preset", "huge"}, "--preset: 'huge' is not one of"},
           {{"-u", "127.0.0.1:1", "--measurement-interval", "2"}, "--measurement-interval:"},
           {{"-u", "nohost"}, "--url:"},
           {{"-u", "127.0.0.1:1", "--csv", "/nonexistent-dir/x.csv"}, "cannot write"},
       }) {
    BenchRun run = run_bench(c.args, 10s);
    EXPECT_EQ(run.exit_code, 2) << run.output();
    EXPECT_THAT(run.output(), HasSubstr(c.message));
  }
}

TEST(BenchCli, UnreachableTargetExitsOne) {
  std::string url = "127.0.0.1:" + std::to_string(closed_port());
  BenchRun run = run_bench({"-u", url, "--measurement-interval", "500ms"}, 30s);
  EXPECT_EQ(run.exit_code, 1) << run.output();
  EXPECT_THAT(run.output(), HasSubstr("cannot connect to " + url));
}

TEST(BenchCli, OneUnreachableTargetOfTwoExitsOne) {
  Sim sim({"--name", "s1"});
  std::string bad = "127.0.0.1:" + std::to_string(closed_port());
  BenchRun run = run_bench({"-u", sim.url() + "," + bad, "--measurement-interval", "500ms"}, 30s);
  EXPECT_EQ(run.exit_code, 1) << run.output();
  EXPECT_THAT(run.output(), HasSubstr("cannot connect to " + bad));
}

TEST(BenchCli, EveryRequestRefusedExitsOne) {
  Sim sim({"--name", "s1", "--refuse-rate", "1"});
  BenchRun run = run_bench({"-u", sim.url(), "--measurement-interval", "500ms"}, 30s);
  EXPECT_EQ(run.exit_code, 1) << run.output();
  EXPECT_THAT(run.output(), HasSubstr("cannot reach " + sim.url()));
  EXPECT_THAT(run.output(), HasSubstr("UNAVAILABLE"));
}

TEST(BenchCli, UnknownModelIsAnErrorInTheResultsNotACrash) {
  Sim sim({"--name", "s1"});
  std::string json = temp_path("nomodel.json");
  BenchRun run = run_bench({"-u", sim.url(), "-m", "nosuchmodel", "--measurement-interval", "300ms",
                            "--max-trials", "3", "--json", json});
  EXPECT_EQ(run.exit_code, 0) << run.output();
  google::protobuf::Struct doc = read_json(json);
  const auto& row = result(doc, 0);
  EXPECT_EQ(number(row, "throughput"), 0);
  EXPECT_EQ(number(row, "error_count"), number(row, "requests"));
  EXPECT_GT(number(row, "requests"), 0);
}

TEST(BenchCli, InterruptPrintsWhatWasMeasuredAndExits130) {
  Sim sim({"--name", "s1", "--model", "identity:latency=5ms"});
  Process bench(INFERGATE_BENCH_PATH, {"-u", sim.url(), "--concurrency-range", "1:50",
                                       "--measurement-interval", "300ms", "--progress", "always"});
  ASSERT_TRUE(bench.wait_for_line("concurrency 2: window 1/", 30s));
  bench.signal(SIGINT);
  EXPECT_EQ(bench.wait_exit(20s), 130);
  EXPECT_TRUE(bench.wait_for_line("stable", 5s));  // the table's header came out
}

}  // namespace
}  // namespace infergate::testing
