// How a request ended, as a small integer: 0-16 are the gRPC status codes, then the
// bench's own outcomes. Pure: no gRPC headers, so the core stays testable without it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace infergate::bench {

inline constexpr int kCodeOk = 0;
inline constexpr int kCodeCancelled = 1;
inline constexpr int kCodeUnknown = 2;
inline constexpr int kCodeDeadlineExceeded = 4;
inline constexpr int kCodeUnavailable = 14;
inline constexpr int kCodeValidation = 17;   // --validate: the answer did not echo the input
inline constexpr int kCodeStreamError = 18;  // ModelStreamInferResponse.error_message set
inline constexpr int kCodeCount = 19;

// "OK", "CANCELLED", ..., "UNAUTHENTICATED", "VALIDATION", "STREAM_ERROR".
constexpr std::string_view code_name(int code) {
  constexpr std::array<std::string_view, kCodeCount> kNames{
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
      "VALIDATION",
      "STREAM_ERROR",
  };
  return code >= 0 && code < kCodeCount ? kNames[code] : "UNKNOWN";
}

// Maps a gRPC status code (any int) into the outcome range; unexpected values are UNKNOWN.
constexpr std::uint8_t outcome_of_status(int grpc_code) {
  return grpc_code >= 0 && grpc_code <= 16 ? static_cast<std::uint8_t>(grpc_code)
                                           : static_cast<std::uint8_t>(kCodeUnknown);
}

}  // namespace infergate::bench
