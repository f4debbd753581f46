// infergate-bench measuring infergate-sim: the numbers must match what the sim is set to
// do. Timings are noisy on a shared 2-core machine, so the tolerances are generous.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/bench/bench_harness.h"

namespace infergate::testing {
namespace {

using ::testing::AllOf;
using ::testing::Ge;
using ::testing::Le;
using namespace std::chrono_literals;

const char* kFourInstances20ms = "identity:kind=identity,instances=4,latency=20ms";

TEST(BenchLoad, ClosedLoopFindsLatencyAndThePlateau) {
  Sim sim({"--name", "s1", "--model", kFourInstances20ms});
  std::string json = temp_path("closed.json");
  BenchRun run = run_bench({"-u", sim.url(), "--concurrency-range", "1:8:7",
                            "--measurement-interval", "1s", "--max-trials", "4", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.output();
  EXPECT_THAT(run.output(), ::testing::HasSubstr("concurrency"));
  google::protobuf::Struct doc = read_json(json);
  const auto& one = result(doc, 0);
  EXPECT_EQ(number(one, "concurrency"), 1);
  EXPECT_THAT(number(one, "latency_p50_us"), AllOf(Ge(20000), Le(25000)));
  EXPECT_THAT(number(one, "throughput"), AllOf(Ge(35), Le(51)));
  EXPECT_EQ(number(one, "error_count"), 0);
  EXPECT_EQ(number(one, "max_outstanding"), 1);
  // Eight outstanding on four 20 ms instances: 200/s, each request waiting one turn.
  const auto& eight = result(doc, 1);
  EXPECT_EQ(number(eight, "concurrency"), 8);
  EXPECT_THAT(number(eight, "throughput"), AllOf(Ge(150), Le(205)));
  EXPECT_THAT(number(eight, "latency_p50_us"), AllOf(Ge(36000), Le(52000)));
  EXPECT_EQ(number(eight, "error_count"), 0);
  double expected_bytes_per_s = number(eight, "requests") * 1024 / number(eight, "duration_s");
  EXPECT_NEAR(number(eight, "request_bytes_per_second"), expected_bytes_per_s,
              1e-6 * expected_bytes_per_s);
  for (const char* key :
       {"latency_avg_us", "latency_p90_us", "latency_p99_us", "latency_max_us", "send_rate",
        "response_bytes_per_second", "windows", "cpu_us_per_request"}) {
    EXPECT_GT(number(eight, key), 0) << key;
  }
  EXPECT_TRUE(eight.at("stable").has_bool_value());
  EXPECT_TRUE(eight.at("errors").has_struct_value());
  const auto& config = doc.fields().at("config").struct_value().fields();
  EXPECT_EQ(config.at("model").string_value(), "identity");
  EXPECT_EQ(config.at("request_bytes").number_value(), 1024);
}

TEST(BenchLoad, OpenLoopKeepsTheTargetRate) {
  Sim sim({"--name", "s1", "--model", kFourInstances20ms});
  std::string csv = temp_path("rate.csv");
  BenchRun run = run_bench({"-u", sim.url(), "--request-rate-range", "100",
                            "--measurement-interval", "1s", "--max-trials", "3", "--csv", csv});
  ASSERT_EQ(run.exit_code, 0) << run.output();
  std::vector<std::vector<std::string>> rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].size(), rows[1].size());
  std::map<std::string, std::string> row;
  for (size_t i = 0; i < rows[0].size(); ++i) row[rows[0][i]] = rows[1][i];
  EXPECT_EQ(rows[0][0], "request_rate");
  EXPECT_EQ(std::stod(row["request_rate"]), 100);
  EXPECT_THAT(std::stod(row["send_rate"]), AllOf(Ge(90), Le(110)));
  EXPECT_THAT(std::stod(row["throughput"]), AllOf(Ge(85), Le(110)));
  EXPECT_THAT(std::stod(row["latency_p50_us"]), AllOf(Ge(20000), Le(30000)));
  EXPECT_EQ(row["error_count"], "0");
  for (const char* key :
       {"latency_avg_us", "latency_p90_us", "latency_p99_us", "latency_max_us", "requests",
        "errors", "request_bytes_per_second", "response_bytes_per_second", "stable", "windows"}) {
    EXPECT_TRUE(row.count(key)) << key;
  }
}

TEST(BenchLoad, StreamingOneRequestPerSlot) {
  Sim sim({"--name", "s1", "--model", kFourInstances20ms});
  std::string json = temp_path("stream.json");
  BenchRun run = run_bench({"-u", sim.url(), "--streaming", "--concurrency-range", "2",
                            "--measurement-interval", "1s", "--max-trials", "3", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.output();
  google::protobuf::Struct doc = read_json(json);
  const auto& two = result(doc, 0);
  EXPECT_EQ(number(two, "error_count"), 0);
  EXPECT_THAT(number(two, "throughput"), AllOf(Ge(70), Le(101)));
  EXPECT_THAT(number(two, "send_rate"), AllOf(Ge(70), Le(102)));
  EXPECT_THAT(number(two, "latency_p50_us"), AllOf(Ge(20000), Le(26000)));
}

TEST(BenchLoad, ValidateDeepmetEchoesOverSeveralConnectionsAndTargets) {
  Sim a({"--name", "a"});
  Sim b({"--name", "b"});
  std::string json = temp_path("deepmet.json");
  BenchRun run = run_bench({"-u", a.url() + "," + b.url(), "--connections", "2", "--preset",
                            "deepmet", "--validate", "--compression", "gzip", "--concurrency-range",
                            "4", "--measurement-interval", "500ms", "--max-trials", "3", "-H",
                            "infergate-job=job-7", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.output();
  google::protobuf::Struct doc = read_json(json);
  const auto& row = result(doc, 0);
  EXPECT_GT(number(row, "requests"), 10);
  EXPECT_EQ(number(row, "error_count"), 0);
  EXPECT_EQ(number(doc.fields().at("config").struct_value().fields(), "request_bytes"),
            4500 * 8 * 4);
  EXPECT_DOUBLE_EQ(number(row, "response_bytes_per_second"),
                   number(row, "request_bytes_per_second"));
}

TEST(BenchLoad, ErrorsAreCountedByCode) {
  Sim sim({"--name", "s1", "--error-rate", "0.5", "--error-code", "INTERNAL"});
  for (bool streaming : {false, true}) {
    std::string json = temp_path("errors.json");
    std::vector<std::string> args{"-u",
                                  sim.url(),
                                  "--concurrency-range",
                                  "2",
                                  "--measurement-interval",
                                  "500ms",
                                  "--max-trials",
                                  "3",
                                  "--json",
                                  json};
    if (streaming) args.push_back("--streaming");
    BenchRun run = run_bench(args);
    ASSERT_EQ(run.exit_code, 0) << run.output();
    google::protobuf::Struct doc = read_json(json);
    const auto& row = result(doc, 0);
    const char* code = streaming ? "STREAM_ERROR" : "INTERNAL";  // in-band on streams
    double errors = number(row.at("errors").struct_value().fields(), code);
    EXPECT_EQ(errors, number(row, "error_count"));
    EXPECT_THAT(errors / number(row, "requests"), AllOf(Ge(0.3), Le(0.7))) << code;
    EXPECT_THAT(row.at("first_error").string_value(), ::testing::StartsWith(code));
    EXPECT_THAT(run.output(),
                ::testing::HasSubstr(std::string("errors at concurrency 2: ") + code));
  }
}

TEST(BenchLoad, UnansweredRequestsTimeOutUnaryAndStreaming) {
  Sim sim({"--name", "s1", "--hang-rate", "1"});
  for (bool streaming : {false, true}) {
    std::string json = temp_path("hang.json");
    std::vector<std::string> args{"-u",
                                  sim.url(),
                                  "--concurrency-range",
                                  "2",
                                  "--timeout",
                                  "200ms",
                                  "--measurement-interval",
                                  "500ms",
                                  "--max-trials",
                                  "3",
                                  "--json",
                                  json};
    if (streaming) args.push_back("--streaming");
    BenchRun run = run_bench(args);
    ASSERT_EQ(run.exit_code, 0) << run.output();
    google::protobuf::Struct doc = read_json(json);
    const auto& row = result(doc, 0);
    EXPECT_GT(number(row.at("errors").struct_value().fields(), "DEADLINE_EXCEEDED"), 0)
        << (streaming ? "streaming" : "unary");
    EXPECT_EQ(number(row, "throughput"), 0);
  }
}

}  // namespace
}  // namespace infergate::testing
