#include "gateway/wire/message_compressor.h"

#include <zlib.h>

#include "gateway/wire/grpc_framing.h"

namespace infergate::gateway {

const char* encoding_name(Encoding encoding) {
  switch (encoding) {
    case Encoding::kGzip:
      return "gzip";
    case Encoding::kDeflate:
      return "deflate";
    default:
      return "identity";
  }
}

CompressedMessage compress_message(Encoding encoding, std::span<const std::uint8_t> body,
                                   int level) {
  CompressedMessage out;
  if (encoding != Encoding::kGzip && encoding != Encoding::kDeflate) return out;
  if (body.size() > kMaxCompressBytes) return out;
  z_stream z{};
  // 15 bits of window; +16 asks zlib for the gzip wrapper instead of the zlib one.
  const int window_bits = encoding == Encoding::kGzip ? 15 + 16 : 15;
  if (deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return out;
  const uLong bound = deflateBound(&z, static_cast<uLong>(body.size()));
  out.framed.resize(kGrpcPrefixBytes + bound);
  z.next_in = const_cast<Bytef*>(body.data());
  z.avail_in = static_cast<uInt>(body.size());
  z.next_out = reinterpret_cast<Bytef*>(out.framed.data() + kGrpcPrefixBytes);
  z.avail_out = static_cast<uInt>(bound);
  // deflateBound's room lets one call finish the stream.
  const int rc = deflate(&z, Z_FINISH);
  const size_t produced = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return out;
  out.framed.resize(kGrpcPrefixBytes + produced);
  encode_grpc_prefix(GrpcPrefix{.compressed = true, .length = static_cast<std::uint32_t>(produced)},
                     reinterpret_cast<std::uint8_t*>(out.framed.data()));
  out.ok = true;
  return out;
}

}  // namespace infergate::gateway
