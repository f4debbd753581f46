// gRPC length-prefixed message framing over a byte stream split at arbitrary points.
// Pure code: it only counts and reports; it never copies or owns bytes.
#pragma once

#include <cstdint>
#include <span>

namespace infergate::gateway {

inline constexpr size_t kGrpcPrefixBytes = 5;
// Largest message either leg accepts (2 GiB, as Triton allows).
inline constexpr std::uint64_t kMaxGrpcMessageBytes = 2ull * 1024 * 1024 * 1024;

struct GrpcPrefix {
  bool compressed = false;
  std::uint32_t length = 0;
};

// Decodes a 5-byte prefix; false if the flag byte is neither 0 nor 1.
bool decode_grpc_prefix(std::span<const std::uint8_t, kGrpcPrefixBytes> bytes, GrpcPrefix& out);

// Writes a 5-byte prefix.
void encode_grpc_prefix(const GrpcPrefix& prefix, std::uint8_t* out);

// Follows message boundaries as bytes pass by.
class MessageFramer {
 public:
  enum class Status { kOk, kBadFlag, kTooLarge };

  // Consumes bytes; stops at the first framing error (which is sticky).
  Status feed(std::span<const std::uint8_t> data);

  // True between messages (no partial prefix or body pending).
  bool at_boundary() const { return prefix_have_ == 0 && body_left_ == 0; }
  std::uint64_t messages_started() const { return started_; }
  std::uint64_t messages_completed() const { return completed_; }
  // Bytes of the current message's body not yet fed.
  std::uint64_t body_left() const { return body_left_; }
  Status status() const { return status_; }

 private:
  std::uint8_t prefix_[kGrpcPrefixBytes] = {};
  size_t prefix_have_ = 0;
  std::uint64_t body_left_ = 0;
  std::uint64_t started_ = 0;
  std::uint64_t completed_ = 0;
  Status status_ = Status::kOk;
};

}  // namespace infergate::gateway
