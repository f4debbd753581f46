// One HEADERS block as received, kept without copying (nghttp2's reference-counted
// buffers), ready to be re-submitted on the other leg. Single-threaded.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <string_view>
#include <vector>

namespace infergate::gateway {

class HeaderBlock {
 public:
  HeaderBlock() = default;
  ~HeaderBlock() { clear(); }
  HeaderBlock(const HeaderBlock&) = delete;
  HeaderBlock& operator=(const HeaderBlock&) = delete;

  // Keeps name and value alive (increments their reference counts).
  void add(nghttp2_rcbuf* name, nghttp2_rcbuf* value);
  void clear();

  size_t size() const { return fields_.size(); }
  size_t bytes() const { return bytes_; }
  bool empty() const { return fields_.empty(); }

  // The value of the first field called `name`, or empty.
  std::string_view find(std::string_view name) const;

  // Appends every field to `out` (pointing into this block, so it must outlive the
  // submit call, which copies), skipping hop-by-hop fields that must not cross a proxy.
  // `drop`: one more field not to pass on ("": none).
  void append_forwardable(std::vector<nghttp2_nv>& out, std::string_view drop = {}) const;

 private:
  struct Field {
    nghttp2_rcbuf* name;
    nghttp2_rcbuf* value;
  };
  boost::container::small_vector<Field, 16> fields_;  // gRPC requests have ~10
  size_t bytes_ = 0;
};

// An nghttp2_nv for literal strings (copied by nghttp2 on submit).
// Sets (or replaces) a header in a list about to be submitted; `value` must outlive it.
void set_nv(std::vector<nghttp2_nv>& headers, std::string_view name, std::string_view value);

nghttp2_nv make_nv(std::string_view name, std::string_view value);

// A cleared vector for building one HEADERS frame (kept per thread, so its capacity
// is reused). Valid until the next call on the same thread.
std::vector<nghttp2_nv>& nv_scratch();

// True for fields a proxy must not forward (connection-specific ones).
bool is_hop_by_hop(std::string_view name, std::string_view value);

}  // namespace infergate::gateway
