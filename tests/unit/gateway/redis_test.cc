// The Redis client's RESP reading (hiredis's reader with bounded object functions), the
// cluster.redis URL, and the even split a replica falls back to.
#include <gtest/gtest.h>

#include <string>

#include "config/host_port.h"
#include "gateway/fleet/cluster.h"
#include "gateway/fleet/redis_client.h"

namespace infergate::gateway {
namespace {

TEST(RedisReplies, EveryKindIsRead) {
  const RedisParse p = parse_redis_replies(
      "+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$0\r\n\r\n",
      1 << 20, 100);
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.replies.size(), 6u);
  EXPECT_EQ(p.replies[0].type, RedisValue::Type::kStatus);
  EXPECT_EQ(p.replies[0].text, "OK");
  EXPECT_TRUE(p.replies[1].is_error());
  EXPECT_EQ(p.replies[1].text, "ERR no");
  EXPECT_EQ(p.replies[2].integer, 42);
  EXPECT_EQ(p.replies[3].text, "abc");
  EXPECT_EQ(p.replies[4].type, RedisValue::Type::kNil);
  const RedisValue& array = p.replies[5];
  ASSERT_EQ(array.elements.size(), 3u);
  EXPECT_EQ(array.elements[0].integer, 1);
  ASSERT_EQ(array.elements[1].elements.size(), 1u);
  EXPECT_EQ(array.elements[1].elements[0].text, "x");
  EXPECT_EQ(array.elements[2].text, "");
}

TEST(RedisReplies, AnAnswerInPiecesWaits) {
  const RedisParse p = parse_redis_replies("*2\r\n:1\r\n$5\r\nab", 1 << 20, 100);
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(p.replies.empty());
}

TEST(RedisReplies, AHugeArrayHeaderIsRefusedBeforeAnythingIsAllocated) {
  // 100 million elements claimed in 13 bytes: refused by the element bound, not built.
  const RedisParse p = parse_redis_replies("*100000000\r\n", 1 << 20, 65536);
  EXPECT_NE(p.error.find("65536 values"), std::string::npos) << p.error;
  EXPECT_TRUE(p.replies.empty());
}

TEST(RedisReplies, NestedArraysCountTowardsOneBound) {
  std::string nested = "*3\r\n";
  for (int i = 0; i < 3; ++i) nested += "*50\r\n";
  const RedisParse p = parse_redis_replies(nested, 1 << 20, 100);
  EXPECT_NE(p.error, "");
}

TEST(RedisReplies, TextOverTheByteBoundIsRefused) {
  // A bulk string longer than the bound: refused as soon as it is buffered.
  const RedisParse big = parse_redis_replies("$2000\r\n" + std::string(1500, 'x'), 1024, 100);
  EXPECT_NE(big.error.find("1024 bytes"), std::string::npos) << big.error;
  // Many small strings in one answer add up.
  std::string many = "*10\r\n";
  for (int i = 0; i < 10; ++i) many += "$200\r\n" + std::string(200, 'y') + "\r\n";
  const RedisParse sum = parse_redis_replies(many, 1024, 100);
  EXPECT_NE(sum.error, "");
}

TEST(RedisReplies, ProtocolGarbageIsAnError) {
  EXPECT_NE(parse_redis_replies("?what\r\n", 1 << 20, 100).error, "");
}

TEST(RedisUrl, FormsAndRefusals) {
  auto u = config::parse_redis_url("redis://127.0.0.1:6380");
  ASSERT_TRUE(u.ok()) << u.error;
  EXPECT_EQ(u.value->address.port, 6380);
  EXPECT_FALSE(u.value->tls);
  u = config::parse_redis_url("rediss://user:pa:ss@redis.ns.svc/3");
  ASSERT_TRUE(u.ok()) << u.error;
  EXPECT_TRUE(u.value->tls);
  EXPECT_EQ(u.value->address.port, 6379);
  EXPECT_EQ(u.value->username, "user");
  EXPECT_EQ(u.value->password, "pa:ss");
  EXPECT_EQ(u.value->db, 3);
  EXPECT_EQ(u.value->to_string(), "rediss://user:***@redis.ns.svc:6379/3");  // no password
  EXPECT_FALSE(config::parse_redis_url("http://redis:6379").ok());
  EXPECT_FALSE(config::parse_redis_url("redis://redis:6379/99").ok());
  EXPECT_FALSE(config::parse_redis_url("redis://redis:0").ok());
  const auto bad = config::parse_redis_url("redis://:secret@host:bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error.find("secret"), std::string::npos) << bad.error;
}

TEST(ClusterSplit, ThePartsAddUpToTheLimit) {
  for (std::uint64_t total : {0ull, 1ull, 4ull, 7ull, 100ull, 12500000000ull}) {
    for (size_t n : {1u, 2u, 3u, 7u}) {
      std::uint64_t sum = 0;
      for (size_t rank = 0; rank < n; ++rank) sum += ClusterLimits::split(total, n, rank);
      EXPECT_EQ(sum, total) << total << " over " << n;
    }
  }
  EXPECT_EQ(ClusterLimits::split(7, 3, 0), 3u);
  EXPECT_EQ(ClusterLimits::split(7, 3, 2), 2u);
}

}  // namespace
}  // namespace infergate::gateway
