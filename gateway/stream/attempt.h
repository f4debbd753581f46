// One try of an exchange (a ProxyStream) on one backend. The exchange holds the current
// attempt; a retry replaces it with a new one, so nothing of a failed try is carried
// over or has to be reset by hand. Worker thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "gateway/h2/byte_queue.h"
#include "gateway/h2/header_block.h"
#include "gateway/wire/grpc_framing.h"
#include "routing/fleet.h"

namespace infergate::gateway {

class BackendLeg;

// A stream window widened past frontend.stream_window for a large message, and the
// budget set aside for what that lets the sender send beyond the usual window.
struct WidenedWindow {
  BudgetReservation reserved;
  std::uint64_t growth = 0;  // past the usual window; 0: not widened, or narrowed again
  void end() {
    reserved.reset();
    growth = 0;
  }
};

struct Attempt {
  Attempt() = default;
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;

  int position = -1;  // in the exchange's fleet snapshot; -1 before the first attempt
  // The backend's live counters; set while the attempt holds one of its outstanding
  // slots (finish_attempt() gives it back exactly once).
  std::shared_ptr<routing::BackendRuntime> runtime;
  std::chrono::steady_clock::time_point start;

  // The backend stream, while it is open. The connection clears it (on_upstream_closed
  // or on_upstream_lost) before the stream goes.
  BackendLeg* up = nullptr;
  std::int32_t up_id = -1;

  // Request bytes sent to the backend, and those kept to try again elsewhere until the
  // first response byte.
  std::uint64_t request_sent = 0;
  bool retain = false;
  SliceQueue retained;
  std::uint64_t retained_bytes = 0;

  // The backend's answer.
  HeaderBlock response_headers;
  HeaderBlock response_trailers;
  std::uint64_t response_header_bytes = 0;  // decoded, headers and trailers together
  MessageFramer response_framer;
  std::uint64_t response_received = 0;
  std::uint64_t response_credited = 0;
  bool response_window_sized = false;  // widen_response_window() ran
  // The backend's window for a large answer (widen_response_window).
  WidenedWindow response_window;

  bool retry_pending = false;     // a Trailers-Only UNAVAILABLE: retry once the stream ends
  bool reset_by_us = false;       // the gateway reset the backend stream
  bool backend_finished = false;  // the backend ended its answer
  bool finished = false;          // the backend leg is over (answered, reset or lost)
  bool overdue = false;           // counted in the backend's overdue gauge

  // upstream.stream_idle_timeout: the backend leg's progress and when it last moved.
  std::uint64_t last_progress = 0;
  std::chrono::steady_clock::time_point progress_at;
};

}  // namespace infergate::gateway
