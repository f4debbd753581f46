// libFuzzer target for the pure wire code a client's bytes reach first: the gRPC
// message framer, the routing-prefix scanner (every layout, complete or not, every
// prefix length) and the prefix inflater. Any crash, hang or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gateway/wire/grpc_framing.h"
#include "gateway/wire/prefix_inflater.h"
#include "gateway/wire/request_view.h"

namespace {

using infergate::gateway::MessageFramer;
using infergate::gateway::PrefixInflater;
using infergate::gateway::scan_request;
using infergate::gateway::ScanLayout;

void scan_all(std::span<const std::uint8_t> bytes) {
  static const ScanLayout kLayouts[] = {
      infergate::gateway::kModelInferLayout,
      ScanLayout{},
      ScanLayout{.model_field = 2, .version_field = 0},
  };
  for (const ScanLayout& layout : kLayouts) {
    scan_request(bytes, true, layout);
    scan_request(bytes, false, layout);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  std::span<const std::uint8_t> bytes(data, size);
  scan_all(bytes);
  // Every prefix of a short input, as a stream would reveal it.
  if (size < 256) {
    for (size_t n = 0; n < size; ++n) scan_all(bytes.first(n));
  }
  // The framer over the same bytes split at a point the input chooses.
  MessageFramer framer;
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  framer.feed(bytes.first(cut));
  framer.feed(bytes.subspan(cut));
  // Inflate as if it were a compressed message body, then scan what came out.
  PrefixInflater inflater;
  if (inflater.feed(bytes, 1 << 16)) {
    const std::string& out = inflater.output();
    scan_all({reinterpret_cast<const std::uint8_t*>(out.data()), out.size()});
  }
  return 0;
}
