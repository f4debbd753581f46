#include "gateway/h2/header_block.h"

namespace infergate::gateway {
namespace {

std::string_view view(nghttp2_rcbuf* buf) {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

}  // namespace

void HeaderBlock::add(nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
  nghttp2_rcbuf_incref(name);
  nghttp2_rcbuf_incref(value);
  fields_.push_back(Field{name, value});
  bytes_ += view(name).size() + view(value).size();
}

void HeaderBlock::clear() {
  for (const Field& f : fields_) {
    nghttp2_rcbuf_decref(f.name);
    nghttp2_rcbuf_decref(f.value);
  }
  fields_.clear();
  bytes_ = 0;
}

std::string_view HeaderBlock::find(std::string_view name) const {
  for (const Field& f : fields_) {
    if (view(f.name) == name) return view(f.value);
  }
  return {};
}

void HeaderBlock::append_forwardable(std::vector<nghttp2_nv>& out, std::string_view drop) const {
  for (const Field& f : fields_) {
    std::string_view name = view(f.name);
    std::string_view value = view(f.value);
    if (is_hop_by_hop(name, value) || (!drop.empty() && name == drop)) continue;
    out.push_back(make_nv(name, value));
  }
}

void set_nv(std::vector<nghttp2_nv>& headers, std::string_view name, std::string_view value) {
  for (nghttp2_nv& nv : headers) {
    if (std::string_view(reinterpret_cast<const char*>(nv.name), nv.namelen) == name) {
      nv = make_nv(name, value);
      return;
    }
  }
  headers.push_back(make_nv(name, value));
}

std::vector<nghttp2_nv>& nv_scratch() {
  thread_local std::vector<nghttp2_nv> scratch;
  scratch.clear();
  return scratch;
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{
      .name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
      .value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
      .namelen = name.size(),
      .valuelen = value.size(),
      .flags = NGHTTP2_NV_FLAG_NONE,
  };
}

bool is_hop_by_hop(std::string_view name, std::string_view value) {
  // HTTP/2 forbids connection-specific fields; "te" may only say "trailers" (which
  // gRPC requires, so that one passes).
  if (name == "te") return value != "trailers";
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace infergate::gateway
