#include "config/units.h"

#include <gtest/gtest.h>

namespace infergate::config {
namespace {

using std::chrono::nanoseconds;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parse_duration("250ms").value, nanoseconds(250'000'000));
  EXPECT_EQ(parse_duration("2s").value, nanoseconds(2'000'000'000));
  EXPECT_EQ(parse_duration("10us").value, nanoseconds(10'000));
  EXPECT_EQ(parse_duration("10\xC2\xB5s").value, nanoseconds(10'000));
  EXPECT_EQ(parse_duration("7ns").value, nanoseconds(7));
  EXPECT_EQ(parse_duration("1m").value, nanoseconds(60'000'000'000));
  EXPECT_EQ(parse_duration("2min").value, nanoseconds(120'000'000'000));
  EXPECT_EQ(parse_duration("1h").value, nanoseconds(3'600'000'000'000));
}

TEST(ParseDuration, AcceptsFractionsAndSpaces) {
  EXPECT_EQ(parse_duration("1.5s").value, nanoseconds(1'500'000'000));
  EXPECT_EQ(parse_duration(" 250 ms ").value, nanoseconds(250'000'000));
  EXPECT_EQ(parse_duration("0s").value, nanoseconds(0));
}

TEST(ParseDuration, RejectsWithAReason) {
  Parsed<nanoseconds> bare = parse_duration("250");
  EXPECT_FALSE(bare.ok());
  EXPECT_NE(bare.error.find("needs a unit"), std::string::npos) << bare.error;

  Parsed<nanoseconds> unknown = parse_duration("5 fortnights");
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error.find("unknown unit 'fortnights'"), std::string::npos) << unknown.error;

  EXPECT_NE(parse_duration("-1s").error.find("negative"), std::string::npos);
  EXPECT_FALSE(parse_duration("").ok());
  EXPECT_FALSE(parse_duration("ms").ok());
  EXPECT_FALSE(parse_duration("1.2.3s").ok());
  EXPECT_NE(parse_duration("99999999999h").error.find("too large"), std::string::npos);
}

TEST(ParseBytes, AcceptsSiAndBinaryPrefixes) {
  EXPECT_EQ(parse_bytes("4GiB").value, 4ull << 30);
  EXPECT_EQ(parse_bytes("64KiB").value, 64ull << 10);
  EXPECT_EQ(parse_bytes("2MiB").value, 2ull << 20);
  EXPECT_EQ(parse_bytes("1TiB").value, 1ull << 40);
  EXPECT_EQ(parse_bytes("100MB").value, 100'000'000u);
  EXPECT_EQ(parse_bytes("1KB").value, 1000u);
  EXPECT_EQ(parse_bytes("1kB").value, 1000u);
  EXPECT_EQ(parse_bytes("512B").value, 512u);
  EXPECT_EQ(parse_bytes("1.5KiB").value, 1536u);
}

TEST(ParseBytes, BareIntegerIsBytes) {
  EXPECT_EQ(parse_bytes("65536").value, 65536u);
  EXPECT_FALSE(parse_bytes("1.5").ok());
}

TEST(ParseBytes, RejectsBitsWithAHint) {
  Parsed<std::uint64_t> bits = parse_bytes("4Gb");
  EXPECT_FALSE(bits.ok());
  EXPECT_NE(bits.error.find("not bits"), std::string::npos) << bits.error;
  EXPECT_FALSE(parse_bytes("4 gigs").ok());
  EXPECT_FALSE(parse_bytes("-4GiB").ok());
  EXPECT_NE(parse_bytes("99999999TiB").error.find("too large"), std::string::npos);
}

TEST(ParseRate, BitsPerSecondBecomeBytesPerSecond) {
  EXPECT_EQ(parse_rate("10Gbps").value, 1'250'000'000u);
  EXPECT_EQ(parse_rate("100Gbps").value, 12'500'000'000u);
  EXPECT_EQ(parse_rate("100Mbps").value, 12'500'000u);
  EXPECT_EQ(parse_rate("8kbps").value, 1000u);
  EXPECT_EQ(parse_rate("1Tbps").value, 125'000'000'000u);
}

TEST(ParseRate, BytesPerSecond) {
  EXPECT_EQ(parse_rate("50MB/s").value, 50'000'000u);
  EXPECT_EQ(parse_rate("1GiB/s").value, 1ull << 30);
  EXPECT_EQ(parse_rate("512B/s").value, 512u);
}

TEST(ParseRate, RejectsMissingOrUnknownUnits) {
  EXPECT_FALSE(parse_rate("100").ok());
  EXPECT_FALSE(parse_rate("100 furlongs").ok());
  EXPECT_FALSE(parse_rate("1bps").ok());  // an eighth of a byte per second
  EXPECT_NE(parse_rate("10GB").error.find("needs a unit"), std::string::npos);
}

TEST(FormatUnits, RoundTripsCommonValues) {
  EXPECT_EQ(format_duration(nanoseconds(250'000'000)), "250ms");
  EXPECT_EQ(format_duration(nanoseconds(2'000'000'000)), "2s");
  EXPECT_EQ(format_bytes(4ull << 30), "4GiB");
  EXPECT_EQ(format_bytes(100), "100B");
  EXPECT_EQ(format_rate(1'250'000'000), "10Gbps");
  EXPECT_EQ(parse_bytes(format_bytes(64ull << 10)).value, 64ull << 10);
}

}  // namespace
}  // namespace infergate::config
