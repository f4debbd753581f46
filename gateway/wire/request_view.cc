#include "gateway/wire/request_view.h"

namespace infergate::gateway {
namespace {

enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// A cursor over protobuf wire format. Every read reports truncation instead of reading
// past the end.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes)
      : p_(bytes.data()), end_(p_ + bytes.size()) {}

  bool at_end() const { return p_ == end_; }

  // 0: ok, 1: truncated, 2: malformed (varint longer than 10 bytes)
  int varint(std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) return 1;
      const std::uint8_t b = *p_++;
      out |= std::uint64_t{static_cast<std::uint8_t>(b & 0x7F)} << shift;
      if ((b & 0x80) == 0) return 0;
    }
    return 2;
  }

  int skip(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return 1;
    p_ += n;
    return 0;
  }

  int bytes(std::string_view& out) {
    std::uint64_t n = 0;
    if (int r = varint(n); r != 0) return r;
    if (static_cast<std::uint64_t>(end_ - p_) < n) return 1;
    out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return 0;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

struct Field {
  std::uint32_t number = 0;
  std::uint8_t wire = 0;
  std::uint64_t varint = 0;  // for kVarint, kFixed64, kFixed32
  std::string_view bytes;    // for kLen
};

// Reads a field's tag. 0: ok, 1: truncated, 2: malformed.
int read_tag(Reader& r, Field& f, const char*& error) {
  std::uint64_t tag = 0;
  if (int rc = r.varint(tag); rc != 0) {
    error = "bad field tag";
    return rc;
  }
  f.number = static_cast<std::uint32_t>(tag >> 3);
  f.wire = static_cast<std::uint8_t>(tag & 7);
  if (f.number == 0 || tag >> 32 != 0) {
    error = "field number out of range";
    return 2;
  }
  return 0;
}

// Reads the value of a field whose tag was just read.
int read_value(Reader& r, Field& f, const char*& error) {
  switch (f.wire) {
    case kVarint:
      return r.varint(f.varint);
    case kFixed64:
      return r.skip(8);
    case kFixed32:
      return r.skip(4);
    case kLen:
      return r.bytes(f.bytes);
    default:
      error = "unsupported wire type";
      return 2;
  }
}

int read_field(Reader& r, Field& f, const char*& error) {
  if (int rc = read_tag(r, f, error); rc != 0) return rc;
  return read_value(r, f, error);
}

// Reads an InferParameter into the view when its key is one routing cares about.
bool apply_parameter(std::string_view key, std::string_view value, RequestView& view) {
  Reader r(std::span(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
  const char* ignored = "";
  while (!r.at_end()) {
    Field f;
    if (read_field(r, f, ignored) != 0) return false;
    if (key == "sequence_id") {
      if ((f.number == 2 || f.number == 5) && f.wire == kVarint) {
        view.sequence = f.varint != 0
                            ? SequenceId{.kind = SequenceId::Kind::kNumber, .number = f.varint}
                            : SequenceId{};
      } else if (f.number == 3 && f.wire == kLen) {
        view.sequence = !f.bytes.empty()
                            ? SequenceId{.kind = SequenceId::Kind::kString, .text = f.bytes}
                            : SequenceId{};
      }
    } else if (key == "sequence_start" && f.number == 1 && f.wire == kVarint) {
      view.sequence_start = f.varint != 0;
    } else if (key == "sequence_end" && f.number == 1 && f.wire == kVarint) {
      view.sequence_end = f.varint != 0;
    } else if (key == "priority" && (f.number == 2 || f.number == 5) && f.wire == kVarint) {
      view.priority = f.varint;
    }
  }
  return true;
}

// A map<string, InferParameter> entry: key = 1, value = 2, in any order.
bool apply_parameter_entry(std::string_view entry, RequestView& view) {
  Reader r(std::span(reinterpret_cast<const std::uint8_t*>(entry.data()), entry.size()));
  std::string_view key;
  std::string_view value;
  const char* ignored = "";
  while (!r.at_end()) {
    Field f;
    if (read_field(r, f, ignored) != 0) return false;
    if (f.number == 1 && f.wire == kLen) key = f.bytes;
    if (f.number == 2 && f.wire == kLen) value = f.bytes;
  }
  return apply_parameter(key, value, view);
}

}  // namespace

ScanResult scan_request(std::span<const std::uint8_t> body, bool complete,
                        const ScanLayout& layout) {
  ScanResult out;
  Reader r(body);
  std::uint32_t highest = 0;
  bool out_of_order = false;
  bool have_model = false;
  auto incomplete = [&](int rc, const char* error) {
    if (rc == 2 || complete) {
      out.status = ScanStatus::kMalformed;
      out.error = rc == 2 ? error : "message ends inside a field";
    } else {
      out.status = out_of_order ? ScanStatus::kNeedWhole : ScanStatus::kNeedMore;
    }
    return out;
  };
  while (!r.at_end()) {
    Field f;
    const char* error = "";
    if (int rc = read_tag(r, f, error); rc != 0) return incomplete(rc, error);
    if (f.number < highest) out_of_order = true;
    if (f.number > highest) highest = f.number;
    if (layout.stop_field != 0 && !complete &&
        f.number >= static_cast<std::uint32_t>(layout.stop_field)) {
      // Canonical serializers write fields in number order: everything routing needs
      // came before this field, unless the order was broken or the model is missing.
      out.status = (!out_of_order && have_model) ? ScanStatus::kDone : ScanStatus::kNeedWhole;
      return out;
    }
    if (int rc = read_value(r, f, error); rc != 0) return incomplete(rc, error);
    const bool is_len = f.wire == kLen;
    if (layout.model_field != 0 && f.number == static_cast<std::uint32_t>(layout.model_field)) {
      if (!is_len) return incomplete(2, "model name has the wrong wire type");
      out.view.model_name = f.bytes;
      have_model = true;
    } else if (layout.version_field != 0 &&
               f.number == static_cast<std::uint32_t>(layout.version_field)) {
      if (!is_len) return incomplete(2, "model version has the wrong wire type");
      out.view.model_version = f.bytes;
    } else if (layout.infer_fields && f.number == 3) {
      if (!is_len) return incomplete(2, "request id has the wrong wire type");
      out.view.id = f.bytes;
    } else if (layout.infer_fields && f.number == 4) {
      if (!is_len || !apply_parameter_entry(f.bytes, out.view)) {
        return incomplete(2, "malformed request parameters");
      }
    }
  }
  if (!complete) {
    out.status = out_of_order ? ScanStatus::kNeedWhole : ScanStatus::kNeedMore;
    return out;
  }
  out.status = ScanStatus::kDone;
  return out;
}

}  // namespace infergate::gateway
