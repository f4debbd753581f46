#include "gateway/wire/grpc_status.h"

#include <array>

namespace infergate::gateway {

std::string_view grpc_code_name(GrpcCode code) {
  static constexpr std::array<std::string_view, kGrpcCodeCount> kNames = {
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
  };
  auto index = static_cast<size_t>(code);
  return index < kNames.size() ? kNames[index] : "UNKNOWN";
}

std::optional<GrpcCode> parse_grpc_status(std::string_view value) {
  if (value.empty() || value.size() > 2) return std::nullopt;
  int v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v >= kGrpcCodeCount) return std::nullopt;
  return static_cast<GrpcCode>(v);
}

std::string percent_encode_grpc_message(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  std::int64_t amount = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + (c - '0');
  }
  using namespace std::chrono;
  // Compared in the unit, before any multiplication can overflow.
  auto capped = [amount](auto unit) -> nanoseconds {
    if (amount >= kMaxGrpcTimeout / unit) return kMaxGrpcTimeout;
    return duration_cast<nanoseconds>(unit * amount);
  };
  switch (value.back()) {
    case 'H':
      return capped(hours(1));
    case 'M':
      return capped(minutes(1));
    case 'S':
      return capped(seconds(1));
    case 'm':
      return capped(milliseconds(1));
    case 'u':
      return capped(microseconds(1));
    case 'n':
      return capped(nanoseconds(1));
    default:
      return std::nullopt;
  }
}

std::string clip(std::string_view client_text, size_t max_bytes) {
  if (client_text.size() <= max_bytes) return std::string(client_text);
  return std::string(client_text.substr(0, max_bytes)) + "...";
}

}  // namespace infergate::gateway
