// A zero-copy scan of the start of a request message for what routing needs: the model,
// its version, the request id and the sequence parameters. Pure code: it reads protobuf
// wire format directly and never allocates; the views point into the scanned bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace infergate::gateway {

// A stateful sequence's id: Triton accepts an unsigned/signed integer or a string
// parameter; 0 and "" mean "no sequence".
struct SequenceId {
  enum class Kind : std::uint8_t { kNone, kNumber, kString };
  Kind kind = Kind::kNone;
  std::uint64_t number = 0;
  std::string_view text;

  bool present() const { return kind != Kind::kNone; }
};

struct RequestView {
  std::string_view model_name;
  std::string_view model_version;
  std::string_view id;
  SequenceId sequence;
  bool sequence_start = false;
  bool sequence_end = false;
  std::optional<std::uint64_t> priority;
};

// Where the fields are in a given request message type.
struct ScanLayout {
  int model_field = 1;        // 0: the message names no model
  int version_field = 2;      // 0: no version field
  bool infer_fields = false;  // id = 3 and parameters = 4 (ModelInferRequest)
  // The first field number after the routing prefix in canonical order (5 = inputs for
  // ModelInferRequest). 0: always scan the whole message.
  int stop_field = 0;
};

inline constexpr ScanLayout kModelInferLayout{
    .model_field = 1, .version_field = 2, .infer_fields = true, .stop_field = 5};

enum class ScanStatus : std::uint8_t {
  kDone,       // the view is final
  kNeedMore,   // feed a longer prefix of the same message
  kNeedWhole,  // fields are out of canonical order (or the model comes late): scan the
               // complete message
  kMalformed,  // not a valid protobuf message of this type
};

struct ScanResult {
  ScanStatus status = ScanStatus::kNeedMore;
  RequestView view;
  const char* error = "";  // for kMalformed: why, for the INTERNAL message
};

// Scans `body`, the first bytes of one message (after its 5-byte gRPC prefix).
// `complete` says whether `body` is the whole message.
ScanResult scan_request(std::span<const std::uint8_t> body, bool complete,
                        const ScanLayout& layout);

}  // namespace infergate::gateway
