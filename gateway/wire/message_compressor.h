// Compresses one whole gRPC message for grpc-encoding gzip or deflate (zlib format, as
// gRPC means it). Pure code over zlib; the gateway runs it off the event loops.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "gateway/wire/prefix_inflater.h"

namespace infergate::gateway {

// zlib's fastest level: on tensors that compress at all (zero padding, empty detector
// regions) it gets most of the ratio for a fraction of the CPU of the default level.
inline constexpr int kCompressionLevel = 1;

// Larger messages are not compressed (one zlib call, and the gateway buffers the whole
// message to compress it).
inline constexpr size_t kMaxCompressBytes = 256u << 20;

struct CompressedMessage {
  std::string framed;  // the 5-byte gRPC prefix (compressed flag 1) and the compressed body
  bool ok = false;     // false: zlib failed (never expected); send the original instead
};

// `body` is the uncompressed message (without its prefix).
CompressedMessage compress_message(Encoding encoding, std::span<const std::uint8_t> body,
                                   int level = kCompressionLevel);

// "gzip" / "deflate" (the grpc-encoding value), "identity" otherwise.
const char* encoding_name(Encoding encoding);

}  // namespace infergate::gateway
