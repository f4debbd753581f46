// gRPC status codes, their names, and the small wire encodings the gateway needs for
// statuses it makes itself: grpc-message percent-encoding and grpc-timeout parsing.
// Pure code.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace infergate::gateway {

enum class GrpcCode : std::uint8_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};
inline constexpr int kGrpcCodeCount = 17;

// "OK", "CANCELLED", ... as gRPC spells them (the metric label values).
std::string_view grpc_code_name(GrpcCode code);

// Parses the decimal grpc-status value; nullopt if it is not a known code.
std::optional<GrpcCode> parse_grpc_status(std::string_view value);

// Percent-encodes a grpc-message value as the gRPC spec requires (bytes outside
// 0x20-0x7E, and '%', become %XX).
std::string percent_encode_grpc_message(std::string_view message);

// Client-supplied text (a model name, a path) as the gateway's messages quote it: at
// most `max_bytes`, then "...". A message never echoes an unbounded peer string.
std::string clip(std::string_view client_text, size_t max_bytes = 128);

// The longest timeout parse_grpc_timeout gives: 100 years. Eight digits of hours or
// minutes are more nanoseconds than an int64 holds; gRPC saturates such a timeout, and so
// does the gateway, to a value any clock's now() can still be added to.
inline constexpr std::chrono::nanoseconds kMaxGrpcTimeout = std::chrono::hours(24 * 365 * 100);

// Parses grpc-timeout ("100m", "5S", "30u", "2H"): at most 8 digits and one unit
// (H, M, S, m, u, n), capped at kMaxGrpcTimeout. nullopt if malformed.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value);

}  // namespace infergate::gateway
