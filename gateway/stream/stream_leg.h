// One backend stream of a ModelStreamInfer routed per message (see ProxyStream's
// "streams routed per message"). The exchange opens one per (client stream, backend) on
// demand, hands it the messages routed to that backend by reference, and merges what
// comes back into the client's stream at message boundaries. The leg itself only moves
// bytes and reports; what its messages hold (backend slots, admission tickets) and what
// a loss means for the client are the exchange's. Worker thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "gateway/h2/byte_queue.h"
#include "gateway/h2/header_block.h"
#include "gateway/stream/legs.h"
#include "routing/admission.h"
#include "routing/fleet.h"

namespace infergate::gateway {

class ProxyStream;

class StreamLeg final : public BackendStream {
 public:
  // A message sent on this leg and not yet answered.
  struct Pending {
    std::string id;  // the request's id, which its answer (or an in-stream error) carries
    std::chrono::steady_clock::time_point sent_at;
    bool holds_slot = false;  // one of the backend's max_inflight slots
    bool admitted = false;    // holds `ticket` at the admission gate
    routing::AdmissionController::Request ticket;
  };

  StreamLeg(ProxyStream& owner, BlockPool& blocks, const routing::BackendInfo& backend);
  StreamLeg(const StreamLeg&) = delete;
  StreamLeg& operator=(const StreamLeg&) = delete;

  // --- BackendStream (the backend connection) ---
  void append_upstream_headers(std::vector<nghttp2_nv>& out) const override;
  void set_upstream(BackendLeg* up, std::int32_t id) override {
    up_ = up;
    up_id_ = id;
  }
  std::int32_t upstream_id() const override { return up_id_; }
  ssize_t read_request(size_t length, std::uint32_t* data_flags) override;
  int send_request_data(const std::uint8_t* framehd, size_t length) override;
  std::uint64_t on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                                   bool trailers) override;
  void on_response_headers_done(bool end_stream, bool trailers) override;
  void on_response_data(std::span<const std::uint8_t> data, const BlockRef* block) override;
  void on_response_end() override { backend_finished_ = true; }
  void on_upstream_closed(std::uint32_t error_code) override;
  void on_upstream_lost(std::string_view reason) override;

  // --- the exchange ---
  std::uint32_t backend_id() const { return backend_id_; }
  // "name (address)", for messages.
  const std::string& label() const { return label_; }
  const std::shared_ptr<routing::BackendRuntime>& runtime() const { return runtime_; }
  std::uint32_t max_inflight() const { return max_inflight_; }
  // The backend stream is open (not closed, reset or lost).
  bool open() const { return up_ != nullptr; }
  // Takes new messages: open, not half-closed, not failing.
  bool usable() const { return up_ != nullptr && !half_closed_ && fail_reason_.empty(); }

  // Request bytes routed here, on their way to the backend.
  ByteQueue& outgoing() { return outgoing_; }
  // Wakes the backend stream's request body (bytes were added, or the end).
  void resume();
  // No more messages: the backend stream is half-closed once `outgoing` is sent.
  void half_close();
  // Resets the backend stream; `why` (when not empty) is what its unanswered messages
  // are told, and makes the end a failure.
  void cancel(std::string why = {});

  // Answer bytes from the backend, not yet merged into the client's stream; the backend
  // is credited as the exchange takes them (consume).
  ByteQueue& incoming() { return incoming_; }
  void consume(size_t bytes);
  // Bytes of the answer message being merged that are still to come (0 between
  // messages).
  std::uint64_t message_left = 0;

  std::deque<Pending>& pending() { return pending_; }

  // How the leg ended, once !open(): "" if cleanly (the backend finished with OK), else
  // why, for the in-stream errors of what was lost.
  const std::string& failure() const { return fail_reason_; }
  // The leg ended with an error status of the backend's (its grpc-status, not OK).
  bool backend_status_error() const { return status_error_; }
  // The backend's own status and message, when it sent one.
  std::string_view backend_status() const { return answer_.find("grpc-status"); }
  std::string_view backend_message() const { return answer_.find("grpc-message"); }
  // Bytes moved either way (upstream.stream_idle_timeout looks for a change).
  std::uint64_t progress() const { return sent_ + received_; }
  std::uint64_t last_progress = 0;
  std::chrono::steady_clock::time_point progress_at;

 private:
  void ended(std::string why);

  ProxyStream& owner_;
  std::uint32_t backend_id_;
  std::string label_;
  std::uint32_t max_inflight_;
  std::shared_ptr<routing::BackendRuntime> runtime_;
  BackendLeg* up_ = nullptr;
  std::int32_t up_id_ = -1;
  ByteQueue outgoing_;
  ByteQueue incoming_;
  HeaderBlock answer_;  // the backend's headers and trailers
  std::uint64_t header_bytes_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::deque<Pending> pending_;
  std::string fail_reason_;
  bool half_closed_ = false;
  bool reset_by_us_ = false;
  bool backend_finished_ = false;
  bool status_error_ = false;
};

}  // namespace infergate::gateway
