#include "gateway/wire/message_compressor.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "gateway/wire/grpc_framing.h"
#include "gateway/wire/prefix_inflater.h"

namespace infergate::gateway {
namespace {

std::vector<std::uint8_t> padded_tensor(size_t bytes, size_t nonzero_every) {
  std::vector<std::uint8_t> v(bytes, 0);
  for (size_t i = 0; i < bytes; i += nonzero_every) v[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return v;
}

// Inflates a framed message and checks its prefix.
std::string inflate(const std::string& framed) {
  GrpcPrefix prefix;
  EXPECT_TRUE(decode_grpc_prefix(
      std::span<const std::uint8_t, 5>(reinterpret_cast<const std::uint8_t*>(framed.data()), 5),
      prefix));
  EXPECT_TRUE(prefix.compressed);
  EXPECT_EQ(prefix.length, framed.size() - kGrpcPrefixBytes);
  PrefixInflater inflater;
  const auto* body = reinterpret_cast<const std::uint8_t*>(framed.data()) + kGrpcPrefixBytes;
  EXPECT_TRUE(inflater.feed({body, framed.size() - kGrpcPrefixBytes}, SIZE_MAX));
  EXPECT_TRUE(inflater.finished());
  return inflater.output();
}

TEST(MessageCompressor, GzipAndDeflateRoundTripAndShrinkPaddedTensors) {
  const std::vector<std::uint8_t> tensor = padded_tensor(1 << 20, 64);
  for (Encoding e : {Encoding::kGzip, Encoding::kDeflate}) {
    CompressedMessage m = compress_message(e, tensor);
    ASSERT_TRUE(m.ok) << encoding_name(e);
    EXPECT_LT(m.framed.size(), tensor.size() / 10) << encoding_name(e);
    const std::string back = inflate(m.framed);
    EXPECT_EQ(back, std::string(tensor.begin(), tensor.end())) << encoding_name(e);
  }
  // The two wrappers differ: gzip starts with 1f 8b, zlib's deflate with 0x78.
  EXPECT_EQ(static_cast<unsigned char>(compress_message(Encoding::kGzip, tensor).framed[5]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(compress_message(Encoding::kDeflate, tensor).framed[5]),
            0x78);
}

TEST(MessageCompressor, DenseRandomDataRoundTripsEvenIfItDoesNotShrink) {
  std::vector<std::uint8_t> dense(256 * 1024);
  std::mt19937 rng(3);
  for (auto& b : dense) b = static_cast<std::uint8_t>(rng());
  CompressedMessage m = compress_message(Encoding::kGzip, dense);
  ASSERT_TRUE(m.ok);
  EXPECT_GE(m.framed.size(), dense.size());  // random bytes do not compress
  EXPECT_EQ(inflate(m.framed), std::string(dense.begin(), dense.end()));
}

TEST(MessageCompressor, EmptyMessageAndIdentity) {
  CompressedMessage m = compress_message(Encoding::kDeflate, {});
  ASSERT_TRUE(m.ok);
  EXPECT_EQ(inflate(m.framed), "");
  EXPECT_FALSE(compress_message(Encoding::kIdentity, padded_tensor(10, 2)).ok);
  EXPECT_STREQ(encoding_name(Encoding::kIdentity), "identity");
}

}  // namespace
}  // namespace infergate::gateway
