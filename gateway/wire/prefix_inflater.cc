#include "gateway/wire/prefix_inflater.h"

#include <algorithm>

namespace infergate::gateway {

Encoding parse_encoding(std::string_view value) {
  if (value.empty() || value == "identity") return Encoding::kIdentity;
  if (value == "gzip") return Encoding::kGzip;
  if (value == "deflate") return Encoding::kDeflate;
  return Encoding::kUnsupported;
}

PrefixInflater::PrefixInflater() {
  // gRPC's gzip is RFC 1952 and its deflate is RFC 1950 (zlib-wrapped); 15 + 32 detects
  // either header.
  ready_ = inflateInit2(&z_, 15 + 32) == Z_OK;
  if (!ready_) error_ = "zlib init failed";
}

PrefixInflater::~PrefixInflater() {
  if (ready_) inflateEnd(&z_);
}

bool PrefixInflater::feed(std::span<const std::uint8_t> compressed, size_t want) {
  if (!ready_) return false;
  z_.next_in = const_cast<Bytef*>(compressed.data());
  z_.avail_in = static_cast<uInt>(compressed.size());
  while (!finished_ && z_.avail_in > 0 && out_.size() < want) {
    const size_t before = out_.size();
    const size_t chunk = std::max<size_t>(4096, std::min<size_t>(want - before, 64 * 1024));
    out_.resize(before + chunk);
    z_.next_out = reinterpret_cast<Bytef*>(out_.data() + before);
    z_.avail_out = static_cast<uInt>(chunk);
    const uInt in_before = z_.avail_in;
    int rc = inflate(&z_, Z_NO_FLUSH);
    consumed_ += in_before - z_.avail_in;
    out_.resize(before + (chunk - z_.avail_out));
    if (rc == Z_STREAM_END) {
      finished_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      error_ = z_.msg != nullptr ? z_.msg : "corrupt compressed data";
      return false;
    }
  }
  return true;
}

}  // namespace infergate::gateway
