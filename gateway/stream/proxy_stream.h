// One RPC bridged from a client stream (downstream) to a backend stream (upstream).
//
// The stream owns both directions' bodies. Request DATA is copied once into `request_`
// as it arrives and leaves for the backend by reference; the client's flow-control
// window is credited only when bytes leave, so a slow backend pushes back on the client
// instead of filling memory. Responses mirror this. Headers, trailers, RST_STREAM and
// status pass through unchanged; the gateway makes its own status only when it cannot
// forward (see reply_local).
//
// Lifetime: created on the client's HEADERS, deleted when neither leg refers to it any
// more (both nghttp2 streams closed or their connections gone). All on one worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "gateway/h2/byte_queue.h"
#include "gateway/h2/chunk_cache.h"
#include "gateway/h2/header_block.h"
#include "gateway/h2/intrusive_list.h"
#include "gateway/stream/attempt.h"
#include "gateway/stream/legs.h"
#include "gateway/stream/stream_leg.h"
#include "gateway/wire/grpc_framing.h"
#include "gateway/wire/grpc_status.h"
#include "gateway/wire/message_compressor.h"
#include "gateway/wire/methods.h"
#include "gateway/wire/prefix_inflater.h"
#include "gateway/wire/request_view.h"
#include "health/post_if_alive.h"
#include "routing/admission.h"
#include "routing/fleet.h"
#include "routing/picker.h"

namespace google::protobuf {
class Message;
}

namespace infergate::gateway {

class Worker;

class ProxyStream final : public BackendStream {
 public:
  // Where the exchange stands. Forward only, except that a request whose attempt failed
  // before any answer goes back to kAdmission to wait for another backend, and a
  // ModelStreamInfer whose message was answered in the stream before it had a backend
  // goes back to kRouting for the next message (answer_in_stream); nothing leaves
  // kAnswered.
  enum class Phase : std::uint8_t {
    kHeaders,     // the request's HEADERS are arriving
    kRouting,     // reading the first message's routing fields
    kAdmission,   // routed: waiting for admission or a backend slot
    kForwarding,  // an attempt is on a backend (or the gateway is asking the fleet)
    kAnswered,    // everything the client will get is queued for it (or it was reset)
  };

  ProxyStream(Worker& worker, ClientLeg& down, std::int32_t down_id);
  ~ProxyStream();
  ProxyStream(const ProxyStream&) = delete;
  ProxyStream& operator=(const ProxyStream&) = delete;
  // From the worker's chunk cache: an exchange takes nothing from the heap in steady state.
  static void* operator new(size_t n) { return ChunkCache::allocate_here(n); }
  static void operator delete(void* p) { ChunkCache::release(p); }

  ListHook down_hook;  // on the client connection's list of its streams

  // --- client leg (what the ClientLeg relays from the client) ---
  // Returns the decoded bytes of this request's headers so far, kept or not (the
  // connection closes on a header block that decodes to far more than the limit).
  std::uint64_t on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value);
  void on_request_headers_done(bool end_stream);
  // `block` holds the bytes when they lie in what the connection read, else null.
  void on_request_data(std::span<const std::uint8_t> data, const BlockRef* block = nullptr);
  void on_request_end();
  void on_downstream_closed(std::uint32_t error_code);
  ssize_t read_response(size_t length, std::uint32_t* data_flags);
  int send_response_data(const std::uint8_t* framehd, size_t length);

  // --- backend leg (BackendStream: what the backend connection relays) ---
  std::uint64_t on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                                   bool trailers) override;
  void on_response_headers_done(bool end_stream, bool trailers) override;
  void on_response_data(std::span<const std::uint8_t> data, const BlockRef* block) override;
  void on_response_end() override;
  void on_upstream_closed(std::uint32_t error_code) override;
  void on_upstream_lost(std::string_view reason) override;
  ssize_t read_request(size_t length, std::uint32_t* data_flags) override;
  int send_request_data(const std::uint8_t* framehd, size_t length) override;
  void set_upstream(BackendLeg* up, std::int32_t id) override;
  void append_upstream_headers(std::vector<nghttp2_nv>& out) const override;
  // The metadata key of the caller's credential when auth checks it ("" otherwise).
  std::string_view credential_header() const;
  std::int32_t upstream_id() const override { return at_.up_id; }
  // The response has begun (HEADERS sent or queued to the client).
  bool answered() const { return response_started_; }
  std::int32_t downstream_id() const { return down_id_; }

  // --- the backend streams of a ModelStreamInfer routed per message (StreamLeg) ---
  // The client's headers as they go to each backend stream.
  void append_leg_headers(std::vector<nghttp2_nv>& out) const;
  // `bytes` of the request left for a backend: the client's window may grow.
  void on_leg_sent(size_t bytes);
  // Answer bytes arrived on `leg`.
  void on_leg_data(StreamLeg& leg);
  // `leg`'s backend stream is over (leg.failure() says how); the last call from it, after
  // which it may be deleted.
  void on_leg_closed(StreamLeg& leg);
  std::uint64_t max_header_bytes() const;

  // A parked stream (its backends were all at max_inflight) tries again. Worker.
  void resume_routing();
  // Waiting in its worker's parked list for a backend slot.
  bool parked() const { return parked_; }
  // Still in its wait number `wait` for a backend to serve its model.
  bool awaits(std::uint32_t wait) const { return parked_ && awaiting_model_ && wait_ == wait; }

  // The worker's tick (about every 100 ms): the stream's deadlines, from grpc-timeout,
  // frontend.stream_idle_timeout, upstream.stream_idle_timeout and
  // limits.backend_wait_timeout, are checked here. Worker thread.
  void on_tick(std::chrono::steady_clock::time_point now);

 private:
  void enter(Phase next) {
    if (phase_ == Phase::kAnswered) return;
    phase_ = next;
    if (next == Phase::kForwarding) set_load(Load::kInFlight);
    if (next == Phase::kAnswered) set_load(Load::kNone);
  }
  // The per-model gauges an autoscaler reads (WorkerStats::ModelSeries): this request
  // (or stream message) waits in the gateway, is on a backend, or neither.
  enum class Load : std::uint8_t { kNone, kWaiting, kInFlight };
  void set_load(Load next);

  // Routing (proxy_stream_routing.cc).
  void start_routing();
  void try_route();
  void scan_first_message();
  void dispatch(const RequestView& view);
  void route_by_model(const RequestView& view);
  void route_sequence(const RequestView& view);
  void reply_no_backend(routing::PickResult::Status status);
  // "infergate: no backend serves model 'm'" (kNotFound) or "... has model 'm' ready",
  // with `suffix` before the closing; NOT_FOUND or UNAVAILABLE, as Triton answers.
  std::string no_backend_message(routing::PickResult::Status status,
                                 std::string_view suffix = {}) const;
  // routing.wait_for_backend: waits for the fleet to change (a backend joins, a model
  // becomes ready), up to the timeout, instead of answering that none serves the model.
  void await_backend(routing::PickResult::Status status);
  // Whether routing.models lists `model`.
  bool listed_model(std::string_view model) const;
  void route_admitted();
  // Starts an attempt on the backend at `position`: takes one of its max_inflight slots
  // (already taken if `reserved`), or parks the stream if it has none free.
  void start_attempt(int position, bool reserved = false);
  // Ends the current attempt exactly once: outstanding count, passive health.
  void finish_attempt(bool failed, bool counts);
  // Gives back one of `runtime`'s outstanding slots; a parked stream may take it.
  void release_slot(routing::BackendRuntime& runtime, std::uint32_t max_inflight);
  // Passive health: a request's end counts for or against backend `id`.
  void count_outcome(routing::BackendRuntime& runtime, std::uint32_t id, bool failed);
  bool retry_allowed() const;
  // Tries the request on another backend; false if it may not or cannot.
  bool retry(const std::string& reason);
  const routing::BackendInfo* backend() const;
  std::string backend_label() const;

  // Admission control (proxy_stream_admission.cc).
  // auth.mode token: the request carries a known bearer token (health RPCs may be let
  // through without one); false if refused (and answered UNAUTHENTICATED).
  bool authenticate();
  // The request's job: the credential's caller (narrowed by the job header), else the
  // job header, else the client's identity (certificate subject or IP).
  std::string job_name() const;
  // The request's job (metadata key, else the client's IP) may send: false if refused
  // (and answered).
  bool admit_job();
  // The cluster's verdict on this request's new job (admit_job() waited for it).
  void on_job_verdict(routing::Limit verdict);
  void refuse_job(routing::Limit limit);
  // The request may go now: false if it waits (on_admitted follows) or was refused.
  bool admit_request();
  void on_admission(const routing::AdmissionController::Outcome& outcome);
  void release_admission();
  void park_for_backend();
  // For work that comes back from another thread (the compression pool, a fan-out's
  // answers, the admission gate) or waits in the worker's parked list: runs only while
  // this exchange lives. Made on first use.
  Lifeline::Link link();

  // Compression (proxy_stream_compression.cc).
  // Opens the backend stream, or first compresses the request for this backend.
  void submit_upstream();
  // Compresses the request once all of it is here (ModelInfer: one message).
  void maybe_compress_request();
  void on_request_compressed(CompressedMessage message, std::chrono::nanoseconds took);
  // Decides, at the backend's response headers, whether the client gets the response
  // compressed; adds grpc-encoding to `headers` if so.
  void plan_response_compression(std::vector<nghttp2_nv>& headers);
  // Holds the response until its message is whole, then compresses it.
  void maybe_compress_response();
  void on_response_compressed(CompressedMessage message, size_t original);
  // Runs `work` on the compression pool; `done` comes back on this worker if the stream
  // still exists. The copies it holds (`held_bytes`) are charged to the buffer budget
  // until both are done; false (and nothing runs) if they do not fit.
  template <typename Work, typename Done>
  bool off_loop(std::uint64_t held_bytes, Work work, Done done);

  // Answers the gateway makes from the fleet or by fanning out (proxy_stream_answers.cc).
  bool whole_message(std::string& out);
  void answer_from_fleet(const std::string& message);
  void fan_out(const std::string& message);
  void reply_message(const google::protobuf::Message& message);
  // Frames `message` at the end of `to` (the client's response body, or what waits to
  // join it).
  void append_response_message(const google::protobuf::Message& message, ByteQueue& to);
  // The gateway's own response HEADERS (200, application/grpc, infergate-version); a
  // body follows.
  void send_own_headers();
  // A ModelStreamInfer message that cannot be routed (no backend for its model, a lost
  // sequence) is answered in the stream, as Triton does: a ModelStreamInferResponse with
  // `message` as its error_message (and the request's id), and the stream goes on with
  // the next message. False (the caller ends the stream with a status instead) for other
  // methods, once a backend stream exists, or when the client asked for statuses
  // (`triton_grpc_error: true`).
  bool answer_in_stream(const std::string& message);
  static constexpr size_t kMaxUnsentStreamAnswersBytes = 64 * 1024;
  // Bytes of the gateway's in-stream answers not yet sent to the client (counting the
  // backends' answers between them).
  // Routing waits (routing_paused_) while the client does not read the gateway's own
  // answers, or while limits.max_stream_messages_in_flight of its messages are
  // unanswered; maybe_resume_routing() lets it go on.
  bool routing_blocked() const;
  void maybe_resume_routing();
  size_t messages_in_flight() const;
  // A stream message's id as kept for its answer (longer ids are cut; their answers are
  // then matched in order).
  static constexpr size_t kMaxKeptIdBytes = 256;
  std::uint64_t own_unsent() const {
    return own_answers_.size() +
           (last_own_end_ > response_sent_ ? last_own_end_ - response_sent_ : 0);
  }
  // Routes the next stream message from a fresh event (never from inside this one).
  void route_next_message();
  // Drops what arrived of a message answered in the stream; routing resumes after it.
  void skip_refused_message();

  // ModelStreamInfer, routed per message (proxy_stream_legs.cc). Each message is read
  // (its routing fields) at the head of request_, routed like a unary request (admission,
  // model, sequence affinity, a backend slot), and moved by reference to the leg of its
  // backend; the answers of every leg are merged into the client's stream whole message
  // by whole message (cut-through: a message begun goes on as its bytes come).
  bool per_message() const { return method_ == Method::kModelStreamInfer; }
  // Sends the message at the head of request_ to the backend at `position` (its slot
  // already taken if `reserved`).
  void forward_message(int position, bool reserved);
  // The usable leg to backend `b`, opened if there is none; nullptr if none opens.
  StreamLeg* leg_for(const routing::BackendInfo& b);
  // Moves what has come of the message being forwarded to its leg.
  void feed_leg();
  // feed_leg() for bytes that arrived, then the messages after it.
  void forward_more();
  // The head message is gone (forwarded or answered): route the next one.
  void next_message();
  // The client half-closed and every message has gone: so do the legs.
  void end_of_messages();
  // Moves whole answer messages (and the gateway's own in-stream answers) into the
  // client's stream, then ends it when everything is done.
  void merge_answers();
  bool take_answer(StreamLeg& leg);
  // The answer to one of `leg`'s messages has begun: its slot and ticket are given back.
  void settle(StreamLeg& leg, std::span<const std::uint8_t> head);
  void release_message(StreamLeg::Pending& p, StreamLeg& leg, bool answered);
  // Frames `message` as the gateway's own answer in the client's stream.
  void queue_own_answer(const google::protobuf::Message& message);
  void cancel_legs();
  // upstream.stream_idle_timeout per leg (on_tick).
  void check_legs(std::chrono::steady_clock::time_point now);
  // Request bytes the exchange holds (not yet sent to a backend or dropped).
  std::uint64_t request_held() const;
  // Credits the client all it sent but what the legs hold unsent for slow backends (the
  // stream's window bounds that, however many messages it is cut into).
  void credit_received() { credit_request(request_received_ - (request_held() - request_.size())); }
  // The client's stream is inside a message (nothing else may be put in it).
  bool mid_answer() const {
    return per_message() ? writer_ != nullptr : !at_.response_framer.at_boundary();
  }
  // The backend a message of this model went to before (messages of one model keep to
  // one backend while it serves the model, so their answers come in order); -1 if none.
  int home_of() const;
  static constexpr size_t kMaxAnswerHeadBytes = 512;

  // Answers and endings (proxy_stream_reply.cc).
  void reply_local(GrpcCode code, std::string_view message,
                   std::chrono::milliseconds pushback = std::chrono::milliseconds(-1));
  void reply_http(int status);
  void reset_downstream(std::uint32_t error_code);
  void reset_upstream(std::uint32_t error_code);
  void fail_after_upstream(GrpcCode code, const std::string& message, std::uint32_t rst_code);
  void record_status(std::string_view grpc_status);

  // Deadlines (on_tick). Ends the exchange with `code` and `message` (the client's
  // stream is reset instead when `reset_client` and the response has begun); frees the
  // backend stream and every slot held. With `blame_backend`, an attempt still waiting
  // for its answer counts as the backend's failure (as a gateway timeout does in Envoy).
  enum class Expiry : std::uint8_t { kDeadline, kStreamIdle, kBackendIdle, kBackendWait };
  void expire(Expiry why, GrpcCode code, const std::string& message, bool blame_backend,
              bool reset_client);
  // True if an attempt that ran `took` into a deadline says the backend is failing:
  // far past (4x) its usual latency, or before it has answered anything.
  static bool deadline_blames_backend(const routing::BackendRuntime& runtime,
                                      std::chrono::nanoseconds took);
  // Bytes moved on either leg (and header frames): a change means progress.
  std::uint64_t progress() const {
    return request_received_ + at_.request_sent + at_.response_received + response_sent_ + events_ +
           legs_moved_;
  }
  // The most bytes of the request the gateway holds before it is routed (the window is
  // never credited past this; over it the request is refused).
  std::uint64_t unrouted_cap() const;
  // Routing reads this request's first message whole (out of order, or a method whose
  // fields are not scanned as a prefix).
  bool whole_for_routing() const { return need_whole_ || !method_info(method_).scan_prefix; }
  void refuse_over_cap(std::string_view what, std::string_view key, std::uint64_t cap);
  // limits.max_buffered_bytes: `bytes` more would not fit; the refusal when they do not.
  bool over_budget(std::uint64_t bytes) const;
  void refuse_over_budget();

  // Flow control: tell each leg's session how much of what it sent is done with.
  void credit_request(std::uint64_t upto);
  // After `credited` bytes of a widened window were credited: reserves what the sender
  // may send past the usual window again, or narrows the window when that does not fit.
  void keep_window_reserved(std::uint64_t credited, WidenedWindow& w, bool request);
  // The window a message of `message` bytes gets, its growth reserved in `w`; 0 when it
  // keeps the usual window (small enough, or no room in the budget).
  std::uint32_t widened_window(std::uint64_t message, WidenedWindow& w);
  // A request that waits (for admission or a backend slot) gives back the connection's
  // window for the bytes it holds: else requests queued behind one that is admitted can
  // take the whole connection window, and the admitted one, on the same connection,
  // never sends the rest of its body (a deadlock until deadlines). Its stream window still
  // bounds what it holds.
  void release_connection_window();
  // A large request's stream window, sized to its message when it goes to a backend.
  void widen_request_window();
  void widen_response_window(std::uint64_t message);
  void credit_response(std::uint64_t upto);
  void discard_request();
  void discard_response();
  void maybe_destroy();
  // One access-log line for this RPC (when the access log is on).
  void write_access_log(std::chrono::nanoseconds elapsed) const;

  Worker& worker_;
  ClientLeg* down_;  // cleared (on_downstream_closed) before the client leg goes
  std::int32_t down_id_;
  std::chrono::steady_clock::time_point start_;
  // The current (or last) try on a backend; a retry replaces it.
  Attempt at_;
  std::chrono::steady_clock::time_point wait_start_;    // queued or parked since
  std::chrono::steady_clock::time_point parked_since_;  // first parked (backend_wait_timeout)
  // First found no backend for its model (routing.wait_for_backend), and why.
  std::chrono::steady_clock::time_point awaiting_since_;
  routing::PickResult::Status awaiting_status_ = routing::PickResult::Status::kNotFound;
  std::chrono::nanoseconds backend_time_{0};  // spent on backends, over all attempts
  std::chrono::nanoseconds waited_{0};        // in the admission queue or parked

  // Routing: the fleet this request started with, and its attempts.
  std::shared_ptr<const routing::Fleet> fleet_;
  boost::container::small_vector<std::uint32_t, 4> tried_;
  std::string model_;
  std::string version_;
  bool sequence_ = false;
  std::unique_ptr<Lifeline> lifeline_;  // closed when the exchange is deleted (link())

  // Admission: the request as the gate knows it, and where it stands.
  enum class Admission : std::uint8_t { kNone, kQueued, kAdmitted };
  Admission admission_ = Admission::kNone;
  routing::AdmissionController::Request ticket_;
  std::string caller_;        // who the credential says the caller is ("" without auth)
  std::string caller_group_;  // the group whose limits apply to the caller (limits.groups)
  int model_slot_ = -1;       // its model's WorkerStats slot (-1: not a model the fleet knows)
  Load load_ = Load::kNone;
  std::chrono::steady_clock::time_point waiting_since_{};
  // The routing fields, kept while the request waits (for admission or a backend slot).
  RequestView pending_view_;
  std::string pending_sequence_text_;
  std::string pending_id_;  // ModelStreamInfer: the message's id, for an in-stream answer
  bool parked_ = false;
  bool awaiting_model_ = false;  // parked_ for a backend to serve its model, not a slot
  bool job_pending_ = false;     // the cluster decides whether its job may start
  std::uint32_t wait_ = 0;       // the number of its current (or last) wait for a model

  // Compression of the request, decided once per request (a retry sends what the first
  // attempt sent): kUndecided -> kHolding (the message is held whole before the backend
  // stream opens) -> kRunning (on the pool) -> kDecided; or kUndecided -> kDecided.
  enum class RequestSqueeze : std::uint8_t { kUndecided, kHolding, kRunning, kDecided };
  RequestSqueeze request_squeeze_ = RequestSqueeze::kUndecided;
  Encoding request_encoding_ = Encoding::kIdentity;  // what the request was compressed with
  Encoding compress_with_ = Encoding::kIdentity;
  // Compression of the response's first message, for the encoding promised to the client:
  // kNone, or kHolding (held whole) -> kRunning (on the pool; kRunningEnded once the
  // backend's trailers came meanwhile) -> kNone.
  enum class ResponseSqueeze : std::uint8_t { kNone, kHolding, kRunning, kRunningEnded };
  ResponseSqueeze response_squeeze_ = ResponseSqueeze::kNone;
  Encoding response_encoding_ = Encoding::kIdentity;
  bool response_held() const { return response_squeeze_ != ResponseSqueeze::kNone; }

  Phase phase_ = Phase::kHeaders;
  Method method_ = Method::kUnknown;
  HeaderBlock request_headers_;
  std::vector<std::pair<std::string, std::string>> local_trailers_;

  ByteQueue request_;
  ByteQueue response_;
  std::uint64_t request_received_ = 0;
  std::uint64_t request_credited_ = 0;             // stream level
  std::uint64_t request_connection_credited_ = 0;  // connection level (>= stream level)
  std::uint64_t response_sent_ = 0;

  // The routing scan of the first request message.
  size_t next_scan_at_ = 0;
  bool need_whole_ = false;
  std::unique_ptr<PrefixInflater> inflater_;
  size_t inflater_fed_ = 0;
  std::string scratch_;

  // Deadlines: the client's (grpc-timeout), and when each leg last made progress.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point progress_at_;
  std::uint64_t last_progress_ = 0;
  std::uint64_t events_ = 0;  // header frames seen, either leg

  // The client's response HEADERS are the gateway's (it answered a stream message itself
  // before any backend stream): the backend's own HEADERS are not sent again.
  bool gateway_headers_ = false;
  std::uint64_t skip_request_bytes_ = 0;  // of a message answered in the stream
  std::uint64_t unrouted_from_ = 0;       // request bytes before the message being routed

  // Per-message routing (ModelStreamInfer): the legs, the message being forwarded and
  // what of it is still to come, the leg whose answer message is being merged, the
  // gateway's own answers waiting for a boundary, and where each model's messages go.
  std::vector<std::unique_ptr<StreamLeg>> legs_;
  StreamLeg* forwarding_to_ = nullptr;
  std::uint64_t forward_left_ = 0;
  StreamLeg* writer_ = nullptr;
  size_t next_writer_ = 0;
  ByteQueue own_answers_;
  struct Home {
    std::string model;
    std::string version;
    std::uint32_t backend_id;
  };
  std::vector<Home> homes_;
  std::uint64_t legs_moved_ = 0;  // bytes either way on the legs (progress)
  // Where in the client's response body the last in-stream answer of the gateway's ends.
  std::uint64_t last_own_end_ = 0;
  bool routing_paused_ = false;  // until the client reads the gateway's answers
  bool routing_loop_ = false;    // try_route is routing messages one after another
  bool route_again_ = false;

  std::uint64_t header_bytes_seen_ = 0;
  bool headers_too_large_ = false;
  bool request_ended_ = false;
  // The client's window for a large request (widen_request_window).
  WidenedWindow request_window_;
  bool response_started_ = false;  // HEADERS sent (or queued) to the client
  bool status_known_ = false;
  GrpcCode status_ = GrpcCode::kUnknown;
};

}  // namespace infergate::gateway
