#include "benchmarks/bench/core/report.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

namespace infergate::bench {
namespace {

using ::testing::HasSubstr;

BenchOptions options(LoadMode mode) {
  BenchParse p = parse_args({"-u", "127.0.0.1:8001", "-H", "infergate-job=job \"7\""});
  p.options.mode = mode;
  return p.options;
}

std::vector<LevelResult> results() {
  LevelResult a{.level = 1, .throughput = 49.5, .send_rate = 49.5, .requests = 99};
  a.latency = {.count = 99,
               .avg_us = 20100,
               .p50_us = 20050,
               .p90_us = 20200,
               .p99_us = 20900,
               .max_us = 21000};
  a.stable = true;
  a.windows = 3;
  LevelResult b = a;
  b.level = 8;
  b.error_count = 4;
  b.errors = {{"INTERNAL", 3}, {"UNAVAILABLE", 1}};
  b.first_error = "INTERNAL: simulated \"failure\"\n";
  b.stable = false;
  b.windows = 10;
  return {a, b};
}

google::protobuf::Struct parse_json(const std::string& text) {
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(text, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return s;
}

TEST(Report, JsonParsesAndHasEveryField) {
  RequestInfo info{.payload_bytes = 1024, .shape = {1, 256}};
  google::protobuf::Struct doc =
      parse_json(format_json(options(LoadMode::kConcurrency), info, results()));
  const auto& config = doc.fields().at("config").struct_value().fields();
  EXPECT_EQ(config.at("model").string_value(), "identity");
  EXPECT_EQ(config.at("request_bytes").number_value(), 1024);
  EXPECT_EQ(config.at("mode").string_value(), "concurrency");
  EXPECT_EQ(config.at("targets").list_value().values(0).string_value(), "127.0.0.1:8001");
  EXPECT_EQ(config.at("headers").struct_value().fields().at("infergate-job").string_value(),
            "job \"7\"");
  const auto& rows = doc.fields().at("results").list_value();
  ASSERT_EQ(rows.values_size(), 2);
  const auto& r = rows.values(1).struct_value().fields();
  for (const char* key :
       {"concurrency", "throughput", "send_rate", "latency_avg_us", "latency_p50_us",
        "latency_p90_us", "latency_p99_us", "latency_max_us", "requests", "error_count", "errors",
        "request_bytes_per_second", "response_bytes_per_second", "stable", "windows",
        "max_outstanding", "cpu_us_per_request", "duration_s", "first_error"}) {
    EXPECT_TRUE(r.contains(key)) << key;
  }
  EXPECT_EQ(r.at("concurrency").number_value(), 8);
  EXPECT_EQ(r.at("latency_p99_us").number_value(), 20900);
  EXPECT_EQ(r.at("errors").struct_value().fields().at("INTERNAL").number_value(), 3);
  EXPECT_FALSE(r.at("stable").bool_value());
  EXPECT_EQ(r.at("first_error").string_value(), "INTERNAL: simulated \"failure\"\n");
}

TEST(Report, RateModeUsesRequestRateKey) {
  google::protobuf::Struct doc =
      parse_json(format_json(options(LoadMode::kRequestRate), {}, results()));
  EXPECT_TRUE(doc.fields().at("results").list_value().values(0).struct_value().fields().contains(
      "request_rate"));
  EXPECT_THAT(format_csv(options(LoadMode::kRequestRate), results()),
              ::testing::StartsWith("request_rate,"));
}

TEST(Report, CsvHasAHeaderAndOneRowPerLevel) {
  std::string csv = format_csv(options(LoadMode::kConcurrency), results());
  EXPECT_THAT(csv, ::testing::StartsWith("concurrency,throughput,send_rate,latency_avg_us,"));
  EXPECT_THAT(
      csv, HasSubstr("\n8,49.5,49.5,20100,20050,20200,20900,21000,99,4,INTERNAL:3;UNAVAILABLE:1,"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  size_t header_fields = std::count(csv.begin(), csv.begin() + csv.find('\n'), ',');
  size_t row_start = csv.rfind('\n', csv.size() - 2) + 1;
  EXPECT_EQ(std::count(csv.begin() + row_start, csv.end(), ','), header_fields);
}

TEST(Report, TableHasARowPerLevelAndTheErrors) {
  std::string table = format_table(options(LoadMode::kConcurrency),
                                   {.payload_bytes = 1024, .shape = {1, 256}}, results());
  EXPECT_THAT(table, HasSubstr("preset 1kb [1,256] (1024 B), unary, closed loop"));
  EXPECT_THAT(table, HasSubstr("concurrency"));
  EXPECT_THAT(table, HasSubstr("no (10 windows)"));
  EXPECT_THAT(table, HasSubstr("errors at concurrency 8: INTERNAL=3 UNAVAILABLE=1"));
}

TEST(Report, ProgressLine) {
  WindowReport w{.level = 8, .window = 2, .max_trials = 10, .metrics = {199.46, 41234.4}};
  EXPECT_EQ(format_progress(w, LoadMode::kConcurrency),
            "concurrency 8: window 2/10: 199.5 infer/s, p99 41234 us");
  w.errors = 3;
  EXPECT_EQ(format_progress(w, LoadMode::kRequestRate),
            "request rate 8: window 2/10: 199.5 infer/s, p99 41234 us, 3 errors");
}

TEST(Report, JsonQuoteEscapes) {
  EXPECT_EQ(json_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}

}  // namespace
}  // namespace infergate::bench
