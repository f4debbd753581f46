#include "benchmarks/sim/core/sim_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SimOptions, Defaults) {
  SimParse p = parse_sim_args({});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.options.listen.to_string(), "127.0.0.1:0");
  EXPECT_EQ(p.options.name, "sim");
  ASSERT_EQ(p.options.models.size(), 1u);
  EXPECT_EQ(p.options.models[0].name, "identity");
  EXPECT_EQ(p.options.models[0].kind, ModelSpec::Kind::kIdentity);
  EXPECT_EQ(p.options.error_code, 13);  // INTERNAL
  EXPECT_EQ(p.options.seed, 1u);
  EXPECT_FALSE(p.options.metrics_listen);
}

TEST(SimOptions, EveryFlag) {
  SimParse p = parse_sim_args({"--listen", "0.0.0.0:8001", "--name=gpu-a", "--model", "m",
                               "--error-rate", "0.25", "--error-code", "unavailable",
                               "--refuse-rate=0.1", "--hang-rate", "0.05", "--hang", "--not-ready",
                               "--seed", "99", "--metrics-listen", "[::1]:8002"});
  ASSERT_TRUE(p.ok()) << p.error;
  const SimOptions& o = p.options;
  EXPECT_EQ(o.listen.port, 8001);
  EXPECT_EQ(o.name, "gpu-a");
  EXPECT_DOUBLE_EQ(o.error_rate, 0.25);
  EXPECT_EQ(o.error_code, 14);
  EXPECT_DOUBLE_EQ(o.refuse_rate, 0.1);
  EXPECT_DOUBLE_EQ(o.hang_rate, 0.05);
  EXPECT_TRUE(o.hang_all);
  EXPECT_TRUE(o.not_ready);
  EXPECT_EQ(o.seed, 99u);
  ASSERT_TRUE(o.metrics_listen);
  EXPECT_EQ(o.metrics_listen->to_string(), "[::1]:8002");
  EXPECT_TRUE(parse_sim_args({"--help"}).options.help);
}

TEST(SimOptions, TlsTakesACertificateAndItsKeyTogether) {
  SimParse p = parse_sim_args({"--tls-cert", "/c.pem", "--tls-key=/k.pem"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.options.tls_cert, "/c.pem");
  EXPECT_EQ(p.options.tls_key, "/k.pem");
  EXPECT_NE(parse_sim_args({"--tls-cert", "/c.pem"}).error.find("go together"), std::string::npos);
}

TEST(SimOptions, TritonsExampleKinds) {
  std::string error;
  EXPECT_EQ(parse_model_spec("simple:kind=simple", &error)->kind, ModelSpec::Kind::kSimple);
  EXPECT_EQ(parse_model_spec("simple_string:kind=simple_string", &error)->kind,
            ModelSpec::Kind::kSimpleString);
  std::optional<ModelSpec> seq =
      parse_model_spec("simple_sequence:kind=simple_sequence,seq_idle=2s", &error);
  ASSERT_TRUE(seq) << error;
  EXPECT_TRUE(seq->stateful());
  EXPECT_FALSE(parse_model_spec("simple:kind=simple,seq_idle=2s", &error));
  EXPECT_NE(error.find("seq_idle"), std::string::npos);
}

TEST(SimOptions, ModelSpecWithEveryKey) {
  std::string error;
  std::optional<ModelSpec> s = parse_model_spec(
      "acc:kind=accumulate,versions=3|1|2,instances=4,latency=2ms,per_mb=150us,max_batch=8,"
      "ready=false,seq_idle=500ms",
      &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->name, "acc");
  EXPECT_EQ(s->kind, ModelSpec::Kind::kAccumulate);
  EXPECT_THAT(s->versions, ElementsAre(1, 2, 3));
  EXPECT_EQ(s->instances, 4);
  EXPECT_EQ(s->latency, 2ms);
  EXPECT_EQ(s->per_mib, 150us);
  EXPECT_EQ(s->max_batch, 8);
  EXPECT_FALSE(s->ready);
  EXPECT_EQ(s->seq_idle, 500ms);

  std::optional<ModelSpec> plain = parse_model_spec("resnet50_v1.5", &error);
  ASSERT_TRUE(plain) << error;
  EXPECT_EQ(plain->kind, ModelSpec::Kind::kIdentity);
  EXPECT_THAT(plain->versions, ElementsAre(1));
  EXPECT_EQ(plain->latency, 0ns);
  EXPECT_EQ(plain->seq_idle, 1s);
  EXPECT_TRUE(parse_model_spec("m:latency=0", &error));  // a bare zero needs no unit
}

TEST(SimOptions, BadModelSpecsSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "model name"},
      {"a b", "model name"},
      {"m:", "not key=value"},
      {"m:kind", "not key=value"},
      {"m:=3", "not key=value"},
      {"m:kind=conv", "bad value 'conv' for kind"},
      {"m:versions=0", "versions"},
      {"m:versions=1|x", "versions"},
      {"m:versions=2|2", "no repeats"},
      {"m:instances=0", "instances"},
      {"m:instances=99999", "instances"},
      {"m:latency=2", "needs a unit"},
      {"m:latency=-2ms", "negative"},
      {"m:per_mb=fast", "per_mb"},
      {"m:max_batch=-1", "max_batch"},
      {"m:ready=yes", "ready"},
      {"m:seq_idle=1s", "only to kind=accumulate"},
      {"m:kind=accumulate,seq_idle=0s", "above zero"},
      {"m:colour=red", "unknown key 'colour'"},
  };
  for (const auto& [spec, message] : cases) {
    std::string error;
    EXPECT_FALSE(parse_model_spec(spec, &error)) << spec;
    EXPECT_THAT(error, HasSubstr(message)) << spec;
  }
}

TEST(SimOptions, BadFlagsSayWhy) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--nope"}, "unknown option '--nope'"},
      {{"-x"}, "unknown option '-x'"},
      {{"--name"}, "--name needs a value"},
      {{"--name", "a/b"}, "--name"},
      {{"--listen", "8001"}, "needs a port"},
      {{"--metrics-listen", "http://x:1"}, "without a scheme"},
      {{"--error-rate", "x"}, "number from 0 to 1"},
      {{"--refuse-rate", "-0.1"}, "number from 0 to 1"},
      {{"--error-rate", "0.5", "--refuse-rate", "0.3", "--hang-rate", "0.3"}, "at most 1"},
      {{"--error-code", "OK"}, "not a gRPC error code"},
      {{"--error-code", "NOPE"}, "not a gRPC error code"},
      {{"--seed", "1.5"}, "--seed"},
      {{"--hang=yes"}, "takes no value"},
      {{"--model", "m", "--model", "m:latency=1ms"}, "given twice"},
  };
  for (const auto& [args, message] : cases) {
    SimParse p = parse_sim_args(args);
    EXPECT_FALSE(p.ok()) << args[0];
    EXPECT_THAT(p.error, HasSubstr(message)) << args[0];
  }
}

TEST(SimOptions, GrpcCodeNames) {
  EXPECT_EQ(grpc_code_from_name("INTERNAL"), 13);
  EXPECT_EQ(grpc_code_from_name("resource_exhausted"), 8);
  EXPECT_EQ(grpc_code_from_name("UNAUTHENTICATED"), 16);
  EXPECT_FALSE(grpc_code_from_name("TEAPOT"));
}

}  // namespace
}  // namespace infergate::sim
