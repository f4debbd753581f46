#include "benchmarks/bench/core/payload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

namespace infergate::bench {
namespace {

using ::testing::ElementsAre;

float at(const Payload& p, size_t i) {
  float v;
  std::memcpy(&v, p.bytes.data() + i * sizeof(float), sizeof v);
  return v;
}

TEST(Payload, PresetNamesRoundTrip) {
  for (std::string_view name : {"1kb", "deepmet", "protodune", "random"}) {
    ASSERT_TRUE(parse_preset(name)) << name;
    EXPECT_EQ(preset_name(*parse_preset(name)), name);
  }
  EXPECT_FALSE(parse_preset("2kb"));
}

TEST(Payload, OneKbIsDenseRandom) {
  Payload p = make_payload(Preset::k1kb, 0);
  EXPECT_EQ(p.input_name, "INPUT0");
  EXPECT_EQ(p.datatype, "FP32");
  EXPECT_THAT(p.shape, ElementsAre(1, 256));
  EXPECT_EQ(p.bytes.size(), 1024u);
  EXPECT_EQ(zero_fraction(p), 0.0);
  EXPECT_NE(at(p, 0), at(p, 1));
}

TEST(Payload, DeepmetIs800ParticlesThenZeroPadding) {
  Payload p = make_payload(Preset::kDeepmet, 0);
  EXPECT_THAT(p.shape, ElementsAre(1, 4500, 8));
  EXPECT_EQ(p.bytes.size(), 4500u * 8 * 4);
  EXPECT_DOUBLE_EQ(zero_fraction(p), 3700.0 / 4500.0);
  EXPECT_NE(at(p, 800 * 8 - 1), 0.0f);  // last value of particle 800
  EXPECT_EQ(at(p, 800 * 8), 0.0f);      // first value of the padding
}

TEST(Payload, ProtoduneIsMostlyEmptyWithClusters) {
  Payload p = make_payload(Preset::kProtodune, 0);
  EXPECT_THAT(p.shape, ElementsAre(1693, 48, 48));
  EXPECT_EQ(p.bytes.size(), 1693u * 48 * 48 * 4);  // ~15.6 MB
  double nonzero = 1.0 - zero_fraction(p);
  EXPECT_GT(nonzero, 0.01);
  EXPECT_LT(nonzero, 0.10);
  // Clustered: most non-zero pixels have a non-zero right-hand neighbour.
  size_t pairs = 0;
  size_t hits = 0;
  for (size_t i = 0; i + 1 < 48 * 48 * 20; ++i) {
    if (at(p, i) == 0.0f || (i + 1) % 48 == 0) continue;
    ++hits;
    pairs += at(p, i + 1) != 0.0f ? 1 : 0;
  }
  ASSERT_GT(hits, 0u);
  EXPECT_GT(static_cast<double>(pairs) / static_cast<double>(hits), 0.5);
}

TEST(Payload, RandomTakesItsSizeFromBytes) {
  Payload p = make_payload(Preset::kRandom, 1 << 20);
  EXPECT_THAT(p.shape, ElementsAre(1, (1 << 20) / 4));
  EXPECT_EQ(p.bytes.size(), 1u << 20);
  EXPECT_EQ(zero_fraction(p), 0.0);
  EXPECT_EQ(make_payload(Preset::kRandom, 4096).bytes.size(), 4096u);
}

TEST(Payload, DeterministicForASeed) {
  EXPECT_EQ(make_payload(Preset::kDeepmet, 0, 7).bytes, make_payload(Preset::kDeepmet, 0, 7).bytes);
  EXPECT_NE(make_payload(Preset::kDeepmet, 0, 7).bytes, make_payload(Preset::kDeepmet, 0, 8).bytes);
  EXPECT_EQ(make_payload(Preset::kProtodune, 0).bytes, make_payload(Preset::kProtodune, 0).bytes);
}

}  // namespace
}  // namespace infergate::bench
