// Data-plane settings, derived from the config once and shared read-only by workers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "auth/authenticator.h"
#include "gateway/wire/prefix_inflater.h"

namespace infergate::gateway {

class TlsContext;

struct DataPlaneOptions {
  // HTTP/2 flow-control windows the gateway advertises on both legs. A stream buffers at
  // most one stream window per direction; a connection at most its connection window.
  std::uint32_t stream_window_bytes = 1 << 20;
  std::uint32_t max_stream_window_bytes = 16 << 20;  // a large request's window
  std::uint32_t connection_window_bytes = 16 << 20;
  // SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.
  std::uint32_t max_concurrent_streams = 1024;
  // Upstream pools: streams per connection before another connection opens (also
  // capped by the backend's own SETTINGS_MAX_CONCURRENT_STREAMS), and connections per
  // backend per worker.
  std::uint32_t upstream_streams_per_connection = 100;
  std::uint32_t upstream_connections_per_backend = 8;
  std::chrono::milliseconds connect_timeout{2000};
  // ModelInfer responses to clients that accept it are compressed with this (kIdentity:
  // never), when the message has at least response_compression_min_bytes.
  Encoding response_compression = Encoding::kIdentity;
  std::uint64_t response_compression_min_bytes = 64 * 1024;
  // One "access" log line per finished RPC.
  bool access_log = false;
  // A request whose routing fields are out of canonical order is buffered whole before
  // it is routed; past this size it is refused instead.
  std::uint64_t max_reorder_buffer_bytes = 64ull << 20;
  // What routing may read of a model-scoped message before its first tensor (inflated).
  std::uint64_t max_routing_fields_bytes = 64 * 1024;
  // Requests the gateway answers itself or fans out, as received and as inflated.
  std::uint64_t max_control_message_bytes = 16ull << 20;
  // A request's decoded header list; a header block far past it closes the connection.
  std::uint64_t max_header_bytes = 64 * 1024;
  // A ModelStreamInfer's messages sent to backends and not yet answered; past it the
  // stream's next message waits.
  std::uint32_t max_stream_messages_in_flight = 1024;

  // Deadlines. Client connections: preface and SETTINGS within handshake_timeout; closed
  // after idle_timeout without a stream. Streams: ended when no byte moved on either leg
  // for stream_idle_timeout, or when nothing came from the backend for
  // upstream_stream_idle_timeout while the client was not the one holding it up.
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(300);
  std::chrono::nanoseconds stream_idle_timeout = std::chrono::seconds(300);
  std::chrono::nanoseconds upstream_stream_idle_timeout = std::chrono::seconds(300);
  // A request waiting for a slot on a backend at its max_inflight gives up after this.
  std::chrono::nanoseconds backend_wait_timeout = std::chrono::seconds(30);
  // Backend connections: PING after keepalive_interval without a frame from the backend;
  // no ACK within keepalive_timeout closes the connection. Retired (no new streams,
  // closed once empty) after max_streams_per_connection streams.
  std::chrono::nanoseconds keepalive_interval = std::chrono::seconds(30);
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(10);
  std::uint32_t upstream_max_streams_per_connection = 1000000000;
};

// How requests are routed and retried; the rest of routing lives in the Fleet.
struct RoutingOptions {
  std::string policy = "least_loaded";
  bool latency_aware = true;
  bool sequence_hash = true;  // routing.sequence_placement hash
  int retries = 1;
  double retry_budget_percent = 10;
  std::uint64_t retry_buffer_bytes = 16ull << 20;
  std::uint32_t consecutive_failures = 5;  // passive outlier threshold
  bool allow_repository_control = false;
  std::chrono::milliseconds fanout_timeout{60000};  // when the client sets no deadline
  std::string job_header = "infergate-job";         // names a request's job (admission)
  // auth.mode token or jwt: who may call (null: anyone), and whether the health RPCs need
  // no credential.
  std::shared_ptr<const auth::Authenticator> auth;
  bool allow_unauthenticated_health = true;
  // routing.wait_for_backend: a request for a model no backend has ready waits this long
  // (limits.queue_timeout) for one to join; routing.models have metrics from the start.
  bool wait_for_backend = false;
  std::chrono::nanoseconds wait_for_backend_timeout = std::chrono::seconds(30);
  std::vector<std::string> models;
};

// Where one backend is, as the data plane connects to it (keyed by backend id).
struct BackendTarget {
  std::string name;
  std::string address;  // as configured, for messages
  boost::asio::ip::tcp::endpoint endpoint;
  bool resolved = false;
  std::string resolve_error;
  // Requests to it: compressed with this when their message has at least min bytes.
  Encoding compression = Encoding::kIdentity;
  std::uint64_t compression_min_bytes = 64 * 1024;
  // backends[].tls: connections speak TLS with this client context, to a certificate
  // that must carry `tls_name`; `tls_error` when the files did not load (no connection
  // is tried then).
  std::shared_ptr<const TlsContext> tls;
  std::string tls_name;
  std::string tls_error;
};

using TargetTable = std::unordered_map<std::uint32_t, BackendTarget>;

}  // namespace infergate::gateway
