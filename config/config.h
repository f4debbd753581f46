// infergate's configuration: what the YAML file says, validated and immutable.
// Built only by the loader (loader.h); shared as std::shared_ptr<const Config>.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/host_port.h"

namespace infergate::config {

// One Triton server of the fleet.
// TLS to one backend: `ca` verifies its certificate (empty: the system's CAs),
// `server_name` is the name it must carry and the SNI (empty: the address's host),
// `cert` and `key` are the gateway's client certificate (mutual TLS).
struct BackendTlsConfig {
  std::string ca;
  std::string server_name;
  std::string cert;
  std::string key;

  bool operator==(const BackendTlsConfig&) const = default;
};

struct BackendConfig {
  std::string name;  // unique; the metric label
  HostPort address;  // one server; or, instead, a set found in DNS:
  // dns: every A and AAAA record of host, each a backend "name/ip:port" on this port.
  HostPort dns;
  // srv: the SRV records of this name ("_grpc._tcp.triton.ns.svc"), each target's
  // addresses a backend "name/ip:port" on the record's port.
  std::string srv;
  double weight = 1.0;               // share of load relative to the others
  std::uint32_t max_inflight = 0;    // concurrent requests from the gateway; 0: no cap
  std::string compression = "none";  // requests to it: none | gzip | deflate
  std::uint64_t compression_min_bytes = 64 * 1024;  // smaller messages go as they are
  std::optional<HttpUrl> metrics_url;               // its Triton metrics page, scraped when set
  std::optional<BackendTlsConfig> tls;              // gRPC to it over TLS
};

// Admission control: who may send, how much at once, how fast. 0 everywhere = no limit.
// limits.groups[]: what the callers of one group (an experiment: a token file's group, a
// JWT issuer's group) may take together, whatever their jobs call themselves.
struct GroupLimitsConfig {
  std::string name;
  std::uint32_t max_jobs = 0;       // the group's active jobs (0: no cap)
  std::uint32_t max_inflight = 0;   // the group's admitted requests
  double link_bandwidth_share = 0;  // at most this share of limits.link_bandwidth (0..1]

  bool operator==(const GroupLimitsConfig&) const = default;
};

struct LimitsConfig {
  std::string job_header = "infergate-job";  // metadata key naming the job; else peer IP
  std::chrono::nanoseconds job_idle_timeout = std::chrono::seconds(60);
  std::uint32_t max_jobs = 0;
  std::uint32_t max_inflight = 0;  // gateway-wide
  std::uint32_t per_job_max_inflight = 0;
  std::uint64_t max_bytes_in_flight = 0;
  std::uint64_t link_bandwidth = 0;  // bytes per second of requests toward the backends
  std::uint64_t link_burst = 0;      // token bucket size; 0: a tenth of a second's worth
  std::uint32_t max_queue = 10000;
  std::chrono::nanoseconds queue_timeout = std::chrono::seconds(30);
  std::vector<GroupLimitsConfig> groups;

  // Bounds on what one peer can make the gateway hold (never 0: these always apply).
  // Stream bytes buffered by the whole process; 0 in the file = a quarter of the
  // machine's memory, resolved by the loader.
  std::uint64_t max_buffered_bytes = 0;
  // A model-scoped request's bytes before its first tensor (model, version, id,
  // parameters): what routing reads, inflated if compressed.
  std::uint64_t max_routing_fields_bytes = 64 * 1024;
  // A request whose fields are out of canonical order is held whole up to this.
  std::uint64_t max_reorder_bytes = 64ull << 20;
  // Requests the gateway answers itself or fans out, as received and as inflated.
  std::uint64_t max_control_message_bytes = 16ull << 20;
  // The sequence affinity table (ids are the clients'): each live sequence is charged
  // its model, id and backend name plus 128 bytes; a new sequence past it is refused.
  std::uint64_t max_sequence_table_bytes = 64ull << 20;
  // The jobs admission tracks (names are the clients'): each is charged its name plus
  // 256 bytes; a new job past it is refused.
  std::uint64_t max_job_table_bytes = 64ull << 20;
  // A ModelStreamInfer's messages sent to backends and not yet answered.
  std::uint32_t max_stream_messages_in_flight = 1024;
  // How long a request waits for a slot on a backend at its max_inflight.
  std::chrono::nanoseconds backend_wait_timeout = std::chrono::seconds(30);

  // True when any limit is set (otherwise admission is skipped entirely).
  bool any() const {
    return max_jobs != 0 || max_inflight != 0 || per_job_max_inflight != 0 ||
           max_bytes_in_flight != 0 || link_bandwidth != 0 || !groups.empty();
  }
};

// How a backend is chosen for each request.
struct RoutingConfig {
  std::string policy = "least_loaded";  // least_loaded | round_robin | random
  int retries = 1;                      // attempts on other backends after the first
  double retry_budget_percent = 10;     // retries at most this share of recent requests
  std::chrono::nanoseconds sequence_idle_timeout = std::chrono::seconds(60);
  std::uint64_t retry_buffer_bytes = 16ull << 20;  // request bytes kept for a retry
  bool latency_aware = true;  // least_loaded also weighs each backend's recent latency
  // Where a new sequence goes: hash (rendezvous hashing of its id over the backends
  // serving the model: every gateway replica agrees) or load (the least loaded).
  std::string sequence_placement = "hash";
  // Scale from zero: a request for a model no healthy backend has ready waits (up to
  // limits.queue_timeout, within its deadline) for one to join, instead of failing.
  bool wait_for_backend = false;
  // Models the fleet is expected to serve: their per-model metrics exist from the start
  // (at zero), so an autoscaler sees a model that no backend serves yet.
  std::vector<std::string> models;
};

// Active probes and passive outlier detection.
struct HealthConfig {
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  std::chrono::nanoseconds timeout = std::chrono::milliseconds(500);
  int unhealthy_threshold = 2;
  int healthy_threshold = 2;
  std::chrono::nanoseconds inventory_interval = std::chrono::seconds(10);
  int consecutive_failures = 5;
  std::chrono::nanoseconds ejection_base = std::chrono::seconds(5);
  std::chrono::nanoseconds ejection_max = std::chrono::seconds(60);
  double max_ejected_percent = 50;
  std::chrono::nanoseconds slow_start = std::chrono::seconds(10);
  // Scraping of the backends' metrics_url pages.
  std::chrono::nanoseconds metrics_interval = std::chrono::seconds(5);
  std::chrono::nanoseconds metrics_timeout = std::chrono::seconds(2);
};

// The client-facing HTTP/2 side.
// TLS on the gRPC frontend (frontend.tls). With `client_ca`, client certificates are
// asked for and verified (mTLS); `require_client_cert` refuses clients without one.
struct FrontendTlsConfig {
  std::string cert;  // PEM chain, leaf first
  std::string key;   // PEM private key
  std::string client_ca;
  bool require_client_cert = false;
  std::string min_version = "1.2";  // 1.2 | 1.3

  bool operator==(const FrontendTlsConfig&) const = default;
};

struct FrontendConfig {
  std::uint32_t max_concurrent_streams = 1024;  // per client connection
  std::uint64_t stream_window_bytes = 1 << 20;  // per stream and direction
  // A request larger than stream_window gets a window sized to its message once it goes to
  // a backend, up to this (the most one such stream may buffer).
  std::uint64_t max_stream_window_bytes = 16 << 20;
  std::uint64_t connection_window_bytes = 16 << 20;
  std::string response_compression = "none";  // none | gzip | deflate, if the client accepts
  std::uint64_t response_compression_min_bytes = 64 * 1024;
  // A new connection must send the client preface and SETTINGS within this.
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
  // A connection with no open stream for this long is closed (GOAWAY first).
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(300);
  // A stream on which no byte moved, on either leg, for this long is ended.
  std::chrono::nanoseconds stream_idle_timeout = std::chrono::seconds(300);
  // Client connections held at once; more are accepted and closed at once.
  std::uint32_t max_connections = 10000;
  // A request's decoded header list; far past it (4x) the connection is closed.
  std::uint64_t max_header_bytes = 64 * 1024;
  // When set, `listen` speaks TLS (and `listen_plaintext`, if set, plaintext beside it).
  std::optional<FrontendTlsConfig> tls;

  bool operator==(const FrontendConfig&) const = default;
};

// Connections to backends.
struct UpstreamConfig {
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(2);
  std::uint32_t streams_per_connection = 100;
  std::uint32_t connections_per_backend = 8;  // per worker
  // A backend stream that has received nothing for this long is reset.
  std::chrono::nanoseconds stream_idle_timeout = std::chrono::seconds(300);
  // PING every interval; no answer within the timeout closes the connection.
  std::chrono::nanoseconds keepalive_interval = std::chrono::seconds(30);
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(10);
  // Streams one connection carries in its life before it is retired (stream IDs are
  // 31 bits, two per stream: a connection can never open more than 2^30).
  std::uint32_t max_streams_per_connection = 1000000000;

  bool operator==(const UpstreamConfig&) const = default;
};

// The HTTP admin port (/metrics, /healthz, /status).
// One accepted bearer token: the lower-case hex of its SHA-256 (never the token), and the
// group (or name) it stands for.
struct TokenHash {
  std::string sha256_hex;
  std::string group;
  bool operator==(const TokenHash&) const = default;
};

// admin.tls: the admin port speaks HTTPS with this pair (PEM), reloaded on SIGHUP.
struct AdminTlsConfig {
  std::string cert;
  std::string key;
  bool operator==(const AdminTlsConfig&) const = default;
};

struct AdminConfig {
  // When set ("SHA256HEX NAME" per line): /metrics, /status and /status.json need one of
  // these bearer tokens (Prometheus' authorization); /healthz stays open.
  std::string tokens_file;
  std::vector<TokenHash> tokens;
  // Admin connections held at once. Past it a new one takes the place of the oldest that
  // has not begun a request, or is closed at once if every one is busy.
  std::uint32_t max_connections = 64;
  // Each request must arrive, and each answer leave, within this.
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  std::optional<AdminTlsConfig> tls;

  bool operator==(const AdminConfig&) const = default;
};

// One issuer of JWTs (auth.mode jwt): its keys come from a local JWKS file and/or its
// JWKS URL (fetched on the control thread); tokens it signs are accepted when their
// audience matches and they carry auth.required_scope.
struct JwtIssuerConfig {
  std::string issuer;  // the token's "iss", exactly
  std::string jwks_file;
  std::string jwks_url;               // http:// or https://, fetched and refreshed
  std::string jwks_ca;                // https jwks_url: the CAs to trust (empty: the system's)
  std::vector<std::string> audience;  // any one of these in "aud" (empty: any audience)
  std::string group;                  // the group its jobs belong to (default: the issuer)
  std::string jwks;                   // jwks_file's contents, read when the config loads

  bool operator==(const JwtIssuerConfig&) const = default;
};

// Who may call (auth:). mode none: anyone; token: a bearer token whose SHA-256 is listed
// in tokens_file (with the group it names); jwt: a JWT (WLCG or SciTokens profile) signed
// by one of `issuers`, checked by scitokens-cpp.
struct AuthConfig {
  using Token = TokenHash;
  std::string mode = "none";
  std::string tokens_file;
  std::vector<Token> tokens;                 // read from tokens_file when the config loads
  bool allow_unauthenticated_health = true;  // ServerLive, ServerReady, Health/Check
  // mode jwt.
  std::vector<JwtIssuerConfig> issuers;
  std::string required_scope;  // in "scope" or "wlcg.groups" (empty: none required)
  std::string job_claim = "sub";
  std::chrono::nanoseconds jwks_refresh = std::chrono::minutes(15);  // jwks_url re-fetched
  std::chrono::nanoseconds jwks_timeout = std::chrono::seconds(5);   // one fetch, all of it
  std::uint32_t max_cached_tokens = 100000;  // validated tokens remembered until they expire

  bool operator==(const AuthConfig&) const = default;
};

// discovery: how backends given by dns or srv are found again as the fleet changes.
struct DiscoveryConfig {
  // Asked again this often, or when the records' TTL is shorter (never more often than
  // every 250ms).
  std::chrono::nanoseconds interval = std::chrono::seconds(5);
  std::chrono::nanoseconds timeout = std::chrono::seconds(2);  // one round of questions
  std::vector<HostPort> resolvers;  // DNS servers to ask (empty: the system's)
  // Backends one dns or srv entry may stand for (SRV targets followed, and addresses
  // kept): the first in order past it are dropped, and that is logged.
  std::uint32_t max_members = 256;

  bool operator==(const DiscoveryConfig&) const = default;
};

// cluster: the limits of `limits:` held across every gateway naming the same Redis.
struct ClusterConfig {
  RedisUrl redis;
  std::string name = "infergate";  // namespaces the keys: infergate:{name}:...
  // Job leases last this long, renewed every half of it; shares are renewed every lease.
  std::chrono::nanoseconds lease = std::chrono::milliseconds(100);
  // One Redis answer (and a connection): at most half the lease, which is the default.
  std::chrono::nanoseconds timeout = std::chrono::milliseconds(50);
  std::string ca;  // rediss: the CAs that sign Redis's certificate (empty: the system's)
  // The replicas assumed for the even split while Redis has never been reached.
  int expected_replicas = 1;

  bool operator==(const ClusterConfig&) const = default;
};

struct Config {
  HostPort listen{.host = "0.0.0.0", .port = 8001};          // KServe v2 gRPC frontend
  HostPort admin_listen{.host = "127.0.0.1", .port = 8002};  // HTTP: /metrics, /status, /healthz
  // With frontend.tls: a second, plaintext gRPC listener (e.g. for a node-local sidecar).
  std::optional<HostPort> listen_plaintext;
  std::vector<BackendConfig> backends;

  int workers = 0;  // data-plane threads; 0 = one per core
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
  std::string log_level = "info";
  bool access_log = false;  // one "access" log line per finished RPC
  FrontendConfig frontend;
  AdminConfig admin;
  UpstreamConfig upstream;
  RoutingConfig routing;
  HealthConfig health;
  LimitsConfig limits;
  AuthConfig auth;
  DiscoveryConfig discovery;
  std::optional<ClusterConfig> cluster;
  bool allow_repository_control = false;  // fan RepositoryModelLoad/Unload out to backends

  std::string source;  // the file (or name) it was loaded from
};

}  // namespace infergate::config
