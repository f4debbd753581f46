// Parsing of the unit-bearing strings used in infergate's config: durations ("250ms"),
// byte sizes ("4GiB") and rates ("10Gbps", "50MB/s"). Pure functions; no exceptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace infergate::config {

// A parsed value or a one-line reason why the text is not one.
template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;

  bool ok() const { return value.has_value(); }
};

// "250ms", "2s", "1.5m", "10us", "1h". Units: ns, us (or µs), ms, s, m (or min), h.
// A unit is required: a bare number is ambiguous and rejected.
Parsed<std::chrono::nanoseconds> parse_duration(std::string_view text);

// "4GiB", "64KiB", "100MB", "512B" or a bare integer (bytes). SI (KB = 1000) and
// binary (KiB = 1024) prefixes. Bits ("Gb") are rejected with a hint.
Parsed<std::uint64_t> parse_bytes(std::string_view text);

// Bits per second ("10Gbps", "100Mbps", SI) or bytes per second ("50MB/s", "1GiB/s").
// The result is in bytes per second.
Parsed<std::uint64_t> parse_rate(std::string_view text);

// The inverse, for messages and status pages: "250ms", "4GiB", "10Gbps".
std::string format_duration(std::chrono::nanoseconds d);
std::string format_bytes(std::uint64_t bytes);
std::string format_rate(std::uint64_t bytes_per_second);

}  // namespace infergate::config
