#include "gateway/wire/grpc_framing.h"

#include <algorithm>
#include <cstring>

namespace infergate::gateway {

bool decode_grpc_prefix(std::span<const std::uint8_t, kGrpcPrefixBytes> bytes, GrpcPrefix& out) {
  if (bytes[0] > 1) return false;
  out.compressed = bytes[0] == 1;
  out.length = (std::uint32_t{bytes[1]} << 24) | (std::uint32_t{bytes[2]} << 16) |
               (std::uint32_t{bytes[3]} << 8) | std::uint32_t{bytes[4]};
  return true;
}

void encode_grpc_prefix(const GrpcPrefix& prefix, std::uint8_t* out) {
  out[0] = prefix.compressed ? 1 : 0;
  out[1] = static_cast<std::uint8_t>(prefix.length >> 24);
  out[2] = static_cast<std::uint8_t>(prefix.length >> 16);
  out[3] = static_cast<std::uint8_t>(prefix.length >> 8);
  out[4] = static_cast<std::uint8_t>(prefix.length);
}

MessageFramer::Status MessageFramer::feed(std::span<const std::uint8_t> data) {
  while (!data.empty() && status_ == Status::kOk) {
    if (body_left_ > 0) {
      const size_t n = static_cast<size_t>(std::min<std::uint64_t>(body_left_, data.size()));
      body_left_ -= n;
      data = data.subspan(n);
      if (body_left_ == 0) ++completed_;
      continue;
    }
    const size_t n = std::min(kGrpcPrefixBytes - prefix_have_, data.size());
    std::memcpy(prefix_ + prefix_have_, data.data(), n);
    prefix_have_ += n;
    data = data.subspan(n);
    if (prefix_have_ < kGrpcPrefixBytes) break;
    prefix_have_ = 0;
    GrpcPrefix prefix;
    if (!decode_grpc_prefix(std::span<const std::uint8_t, kGrpcPrefixBytes>(prefix_), prefix)) {
      status_ = Status::kBadFlag;
      break;
    }
    if (prefix.length > kMaxGrpcMessageBytes) {
      status_ = Status::kTooLarge;
      break;
    }
    ++started_;
    body_left_ = prefix.length;
    if (body_left_ == 0) ++completed_;
  }
  return status_;
}

}  // namespace infergate::gateway
