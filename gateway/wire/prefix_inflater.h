// Inflates the start of a compressed gRPC message (grpc-encoding gzip or deflate) only
// as far as the routing scan needs. Pure code over zlib; the compressed bytes it reads
// are still forwarded untouched.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <span>
#include <string>

namespace infergate::gateway {

enum class Encoding : std::uint8_t { kIdentity, kGzip, kDeflate, kUnsupported };

// Maps a grpc-encoding header value ("" and "identity" are the same).
Encoding parse_encoding(std::string_view value);

class PrefixInflater {
 public:
  // Handles both gzip and deflate (the stream header tells them apart).
  PrefixInflater();
  ~PrefixInflater();
  PrefixInflater(const PrefixInflater&) = delete;
  PrefixInflater& operator=(const PrefixInflater&) = delete;

  // Inflates `compressed` (the next bytes of the message body) until output() holds at
  // least `want` bytes or the input runs out. Returns false on corrupt data; error()
  // says why.
  bool feed(std::span<const std::uint8_t> compressed, size_t want);

  // The inflated bytes so far.
  const std::string& output() const { return out_; }
  // True once the compressed stream has ended (the whole message is inflated).
  bool finished() const { return finished_; }
  // Compressed bytes consumed so far.
  size_t consumed() const { return consumed_; }
  const char* error() const { return error_; }

 private:
  z_stream z_{};
  bool ready_ = false;
  bool finished_ = false;
  size_t consumed_ = 0;
  std::string out_;
  const char* error_ = "";
};

}  // namespace infergate::gateway
