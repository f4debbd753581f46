// Triton's own load and capacity signals, read from the Prometheus text exposition it
// serves on :8002/metrics (infergate-sim serves the same names). A pure parser: no I/O,
// no clock, no exceptions; any input, however broken, gives a result, and a line that is
// not the exposition format is reported, never trusted.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::health {

// One model's share of the per-model signals (summed over its versions).
struct TritonModelSignals {
  double pending_requests = 0;  // nv_inference_pending_request_count
  double queue_seconds = 0;     // nv_inference_queue_duration_us
  double requests = 0;          // nv_inference_request_success + _failure: per request,
                                // not per batch execution
  bool operator==(const TritonModelSignals&) const = default;
};

// One backend's signals, in base units; each is absent when the page did not carry it.
// Per-model series are summed over models and versions; per-GPU ones over GPUs.
struct TritonSignals {
  std::optional<double> pending_requests;        // nv_inference_pending_request_count (gauge)
  std::optional<double> queue_seconds;           // nv_inference_queue_duration_us (counter)
  std::optional<double> compute_seconds;         // nv_inference_compute_infer_duration_us
  std::optional<double> success_requests;        // nv_inference_request_success (counter)
  std::optional<double> failure_requests;        // nv_inference_request_failure (counter)
  std::optional<double> gpu_utilization;         // nv_gpu_utilization, mean over GPUs, 0..1
  std::optional<double> gpu_memory_used_bytes;   // nv_gpu_memory_used_bytes, summed
  std::optional<double> gpu_memory_total_bytes;  // nv_gpu_memory_total_bytes, summed
  // The per-model series by their `model` label (at most kMaxModels models; the rest are
  // left out of this map, never out of the sums above).
  std::map<std::string, TritonModelSignals> models;
  static constexpr std::size_t kMaxModels = 256;

  // At least one signal is present.
  bool any() const;
  bool operator==(const TritonSignals&) const = default;
};

struct TritonParseResult {
  TritonSignals signals;
  std::size_t samples = 0;    // well-formed sample lines, of any metric
  std::size_t bad_lines = 0;  // lines that are not the exposition format
  std::size_t ignored = 0;    // well-formed samples of a signal that could not be used
                              // (NaN, infinite, negative, a repeated series)
  // The first few problems, "line N column C: what" (never the line's bytes).
  std::vector<std::string> problems;
  // Why the page is of no use (no signal in it); empty when it is.
  std::string error;

  bool ok() const { return error.empty(); }
};

// Reads a Triton metrics page. A signal is present when at least one of its samples was
// usable; bad lines and unusable samples are counted and described, and the rest of the
// page still counts.
TritonParseResult parse_triton_metrics(std::string_view text);

}  // namespace infergate::health
