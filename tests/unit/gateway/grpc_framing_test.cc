#include "gateway/wire/grpc_framing.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace infergate::gateway {
namespace {

std::vector<std::uint8_t> frame(const std::vector<std::uint32_t>& lengths) {
  std::vector<std::uint8_t> out;
  for (std::uint32_t len : lengths) {
    std::uint8_t prefix[5];
    encode_grpc_prefix(GrpcPrefix{.compressed = false, .length = len}, prefix);
    out.insert(out.end(), prefix, prefix + 5);
    out.insert(out.end(), len, 0xAB);
  }
  return out;
}

TEST(GrpcPrefix, RoundTrips) {
  std::uint8_t b[5];
  encode_grpc_prefix(GrpcPrefix{.compressed = true, .length = 0x01020304}, b);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[1], 1);
  EXPECT_EQ(b[4], 4);
  GrpcPrefix p;
  ASSERT_TRUE(decode_grpc_prefix(b, p));
  EXPECT_TRUE(p.compressed);
  EXPECT_EQ(p.length, 0x01020304u);
  b[0] = 2;
  EXPECT_FALSE(decode_grpc_prefix(b, p));
}

TEST(MessageFramer, CountsMessagesAcrossEverySplitPoint) {
  const std::vector<std::uint8_t> stream = frame({0, 3, 17, 1, 40});
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    MessageFramer f;
    f.feed(std::span(stream).first(cut));
    f.feed(std::span(stream).subspan(cut));
    EXPECT_EQ(f.messages_completed(), 5u) << "cut at " << cut;
    EXPECT_TRUE(f.at_boundary());
  }
}

TEST(MessageFramer, RandomChunkingByteByByteAndLarger) {
  const std::vector<std::uint8_t> stream = frame({5, 0, 1000, 2, 65536, 9});
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    MessageFramer f;
    size_t pos = 0;
    std::uint64_t completed_before = 0;
    while (pos < stream.size()) {
      size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 300);
      ASSERT_EQ(f.feed(std::span(stream).subspan(pos, n)), MessageFramer::Status::kOk);
      EXPECT_GE(f.messages_completed(), completed_before);
      completed_before = f.messages_completed();
      pos += n;
    }
    EXPECT_EQ(f.messages_completed(), 6u);
    EXPECT_EQ(f.messages_started(), 6u);
    EXPECT_TRUE(f.at_boundary());
  }
}

TEST(MessageFramer, MidMessageIsNotABoundary) {
  const std::vector<std::uint8_t> stream = frame({10});
  MessageFramer f;
  f.feed(std::span(stream).first(3));
  EXPECT_FALSE(f.at_boundary());  // inside the prefix
  f.feed(std::span(stream).subspan(3, 4));
  EXPECT_FALSE(f.at_boundary());  // inside the body
  EXPECT_EQ(f.messages_started(), 1u);
  EXPECT_EQ(f.messages_completed(), 0u);
  f.feed(std::span(stream).subspan(7));
  EXPECT_TRUE(f.at_boundary());
}

TEST(MessageFramer, BadFlagAndOversizeAreSticky) {
  std::vector<std::uint8_t> bad = {7, 0, 0, 0, 1, 0};
  MessageFramer f;
  EXPECT_EQ(f.feed(bad), MessageFramer::Status::kBadFlag);
  EXPECT_EQ(f.feed(frame({1})), MessageFramer::Status::kBadFlag);

  std::vector<std::uint8_t> huge = {0, 0x80, 0, 0, 1};  // 2 GiB + 1
  MessageFramer g;
  EXPECT_EQ(g.feed(huge), MessageFramer::Status::kTooLarge);
}

}  // namespace
}  // namespace infergate::gateway
