#include "benchmarks/bench/core/bench_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace infergate::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

BenchParse parse(std::vector<std::string> args) { return parse_args(args); }

TEST(BenchOptions, DefaultsNeedOnlyAUrl) {
  BenchParse p = parse({"-u", "127.0.0.1:8001"});
  ASSERT_TRUE(p.ok()) << p.error;
  const BenchOptions& o = p.options;
  ASSERT_EQ(o.targets.size(), 1u);
  EXPECT_EQ(o.targets[0].to_string(), "127.0.0.1:8001");
  EXPECT_EQ(o.model, "identity");
  EXPECT_EQ(o.preset, Preset::k1kb);
  EXPECT_EQ(o.mode, LoadMode::kConcurrency);
  EXPECT_THAT(o.levels, ElementsAre(1));
  EXPECT_EQ(o.measurement_interval, 2s);
  EXPECT_EQ(o.stability_percentage, 10);
  EXPECT_EQ(o.max_trials, 10);
  EXPECT_EQ(o.warmup, 0s);
  EXPECT_EQ(o.connections, 1);
  EXPECT_EQ(o.timeout, 30s);
  EXPECT_EQ(o.random_bytes, 1u << 20);
  EXPECT_EQ(o.progress, Progress::kAuto);
  EXPECT_FALSE(o.streaming);
  EXPECT_FALSE(o.validate);
}

TEST(BenchOptions, EveryFlag) {
  BenchParse p = parse({"--url=a:1,b:2",
                        "-m",
                        "deepmet",
                        "--model-version",
                        "3",
                        "--preset",
                        "random",
                        "--bytes",
                        "16MiB",
                        "--request-rate-range",
                        "100:300:100",
                        "--request-distribution",
                        "poisson",
                        "--measurement-interval",
                        "500ms",
                        "--stability-percentage",
                        "7.5",
                        "--max-trials",
                        "4",
                        "--warmup",
                        "1s",
                        "--connections",
                        "3",
                        "--compression",
                        "gzip",
                        "--timeout",
                        "250ms",
                        "-H",
                        "Infergate-Job=job-7",
                        "--header",
                        "x-trace=1",
                        "--validate",
                        "--csv",
                        "out.csv",
                        "--json",
                        "out.json",
                        "--progress",
                        "never"});
  ASSERT_TRUE(p.ok()) << p.error;
  const BenchOptions& o = p.options;
  ASSERT_EQ(o.targets.size(), 2u);
  EXPECT_EQ(o.targets[1].to_string(), "b:2");
  EXPECT_EQ(o.model, "deepmet");
  EXPECT_EQ(o.model_version, "3");
  EXPECT_EQ(o.preset, Preset::kRandom);
  EXPECT_EQ(o.random_bytes, 16u << 20);
  EXPECT_EQ(o.mode, LoadMode::kRequestRate);
  EXPECT_THAT(o.levels, ElementsAre(100, 200, 300));
  EXPECT_EQ(o.distribution, Distribution::kPoisson);
  EXPECT_EQ(o.measurement_interval, 500ms);
  EXPECT_EQ(o.stability_percentage, 7.5);
  EXPECT_EQ(o.max_trials, 4);
  EXPECT_EQ(o.warmup, 1s);
  EXPECT_EQ(o.connections, 3);
  EXPECT_EQ(o.compression, Compression::kGzip);
  EXPECT_EQ(o.timeout, 250ms);
  ASSERT_EQ(o.headers.size(), 2u);
  EXPECT_EQ(o.headers[0].key, "infergate-job");  // lower-cased for HTTP/2
  EXPECT_EQ(o.headers[0].value, "job-7");
  EXPECT_TRUE(o.validate);
  EXPECT_EQ(o.csv_path, "out.csv");
  EXPECT_EQ(o.json_path, "out.json");
  EXPECT_EQ(o.progress, Progress::kNever);
}

TEST(BenchOptions, ConcurrencyRangeAndStreaming) {
  BenchParse p = parse({"-u", "h:1", "--concurrency-range", "1:8:2", "--streaming"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_THAT(p.options.levels, ElementsAre(1, 3, 5, 7));
  EXPECT_TRUE(p.options.streaming);
}

TEST(BenchOptions, TlsNamesItsCaAndTheCertificatesName) {
  BenchParse p = parse({"-u", "127.0.0.1:8001", "--tls-ca", "/ca.pem", "--tls-name", "localhost"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.options.tls_ca, "/ca.pem");
  EXPECT_EQ(p.options.tls_name, "localhost");
  EXPECT_FALSE(parse({"-u", "127.0.0.1:8001", "--tls-ca", ""}).ok());
}

TEST(BenchOptions, Help) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-u", "h:1", "-h"}).help);
  EXPECT_THAT(usage(), HasSubstr("--concurrency-range START[:END[:STEP]]"));
}

TEST(BenchOptions, BadFlagsSayWhy) {
  EXPECT_EQ(parse({}).error, "-u/--url is required");
  EXPECT_EQ(parse({"-u", "h:1", "--bogus"}).error, "unknown option '--bogus'");
  EXPECT_EQ(parse({"-u", "h:1", "stray"}).error, "unexpected argument 'stray'");
  EXPECT_EQ(parse({"-u"}).error, "-u needs a value");
  EXPECT_EQ(parse({"-u", "h:1", "--validate=yes"}).error, "--validate takes no value");
  EXPECT_THAT(parse({"-u", "nohost"}).error, HasSubstr("--url: "));
  EXPECT_THAT(parse({"-u", "h:1", "--preset", "2kb"}).error,
              HasSubstr("'2kb' is not one of 1kb, deepmet, protodune, random"));
  EXPECT_THAT(parse({"-u", "h:1", "--bytes", "4097"}).error, HasSubstr("multiple of 4"));
  EXPECT_THAT(parse({"-u", "h:1", "--bytes", "2GiB"}).error, HasSubstr("at most 1GiB"));
  EXPECT_THAT(parse({"-u", "h:1", "--concurrency-range", "0"}).error,
              HasSubstr("--concurrency-range: range '0'"));
  EXPECT_THAT(parse({"-u", "h:1", "--concurrency-range", "20000"}).error,
              HasSubstr("at most 10000"));
  EXPECT_THAT(parse({"-u", "h:1", "--measurement-interval", "2"}).error, HasSubstr("unit"));
  EXPECT_THAT(parse({"-u", "h:1", "--timeout", "0s"}).error, HasSubstr("greater than 0"));
  EXPECT_THAT(parse({"-u", "h:1", "--max-trials", "0"}).error, HasSubstr("between 1 and"));
  EXPECT_THAT(parse({"-u", "h:1", "--connections", "x"}).error, HasSubstr("not an integer"));
  EXPECT_THAT(parse({"-u", "h:1", "--stability-percentage", "0"}).error, HasSubstr("above 0"));
  EXPECT_THAT(parse({"-u", "h:1", "--compression", "lz4"}).error, HasSubstr("none, gzip, deflate"));
  EXPECT_THAT(parse({"-u", "h:1", "--progress", "sometimes"}).error, HasSubstr("auto"));
  EXPECT_THAT(parse({"-u", "h:1", "--concurrency-range", "2", "--request-rate-range", "5"}).error,
              HasSubstr("exclude each other"));
  EXPECT_THAT(parse({"-u", "h:1", "--request-rate-range", "5", "--streaming"}).error,
              HasSubstr("--streaming works with --concurrency-range only"));
}

TEST(BenchOptions, HeadersAreCheckedBeforeGrpcSeesThem) {
  EXPECT_THAT(parse({"-u", "h:1", "-H", "novalue"}).error, HasSubstr("not KEY=VALUE"));
  EXPECT_THAT(parse({"-u", "h:1", "-H", "=v"}).error, HasSubstr("not KEY=VALUE"));
  EXPECT_THAT(parse({"-u", "h:1", "-H", "bad key=v"}).error, HasSubstr("may hold only"));
  EXPECT_THAT(parse({"-u", "h:1", "-H", "grpc-timeout=1S"}).error, HasSubstr("reserved"));
  EXPECT_THAT(parse({"-u", "h:1", "-H", "k=a\nb"}).error, HasSubstr("printable ASCII"));
  EXPECT_TRUE(parse({"-u", "h:1", "-H", "k-bin=\x01\x02"}).ok());
  EXPECT_TRUE(parse({"-u", "h:1", "-H", "k="}).ok());  // an empty value is legal
}

}  // namespace
}  // namespace infergate::bench
