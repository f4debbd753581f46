#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace infergate::config {
namespace {

using ::testing::HasSubstr;

LoadResult load(const std::string& yaml) { return load_config_string(yaml, "test.yaml"); }

// Finds the one problem whose path is `path`; fails the test if there is not exactly one.
Problem problem_at(const LoadResult& r, const std::string& path) {
  std::vector<Problem> found;
  for (const Problem& p : r.problems) {
    if (p.yaml_path == path) found.push_back(p);
  }
  std::string all;
  for (const Problem& p : r.problems) all += p.to_string() + "\n";
  EXPECT_EQ(found.size(), 1u) << "problems at '" << path << "':\n" << all;
  return found.empty() ? Problem{} : found.front();
}

TEST(ConfigLoader, LoadsTheContractSchema) {
  LoadResult r = load(R"(
listen: "0.0.0.0:8001"
admin_listen: "127.0.0.1:8002"
backends:
  - name: gpu-a
    address: "10.0.0.5:8001"
  - name: gpu-b
    address: "triton-1.triton.svc:8001"
  - name: gpu-c
    address: "[fd00::7]:8001"
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.listen, (HostPort{"0.0.0.0", 8001}));
  EXPECT_EQ(c.admin_listen, (HostPort{"127.0.0.1", 8002}));
  ASSERT_EQ(c.backends.size(), 3u);
  EXPECT_EQ(c.backends[0].name, "gpu-a");
  EXPECT_EQ(c.backends[0].address, (HostPort{"10.0.0.5", 8001}));
  EXPECT_EQ(c.backends[1].address.host, "triton-1.triton.svc");
  EXPECT_EQ(c.backends[2].address.host, "fd00::7");
  EXPECT_EQ(c.backends[2].address.to_string(), "[fd00::7]:8001");
  EXPECT_EQ(c.source, "test.yaml");
}

TEST(ConfigLoader, ProcessFrontendAndUpstreamSettingsUseUnits) {
  LoadResult r = load(R"(
backends: [{name: a, address: "h:1"}]
workers: 4
drain_timeout: 45s
log_level: debug
frontend:
  max_concurrent_streams: 256
  stream_window: 4MiB
  connection_window: 64MiB
upstream:
  connect_timeout: 250ms
  streams_per_connection: 50
  connections_per_backend: 2
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(45));
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.frontend.max_concurrent_streams, 256u);
  EXPECT_EQ(c.frontend.stream_window_bytes, 4u << 20);
  EXPECT_EQ(c.frontend.connection_window_bytes, 64u << 20);
  EXPECT_EQ(c.upstream.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.upstream.streams_per_connection, 50u);
  EXPECT_EQ(c.upstream.connections_per_backend, 2u);
}

TEST(ConfigLoader, RoutingAndHealthContract) {
  LoadResult r = load(R"(
backends:
  - name: gpu-a
    address: "10.0.0.5:8001"
    weight: 3
routing:
  policy: round_robin
  retries: 2
  retry_budget_percent: 20
  sequence_idle_timeout: 90s
health:
  interval: 2s
  timeout: 250ms
  unhealthy_threshold: 3
  healthy_threshold: 4
  inventory_interval: 30s
  ejection_base: 1s
  ejection_max: 20s
  max_ejected_percent: 34
  slow_start: 0s
allow_repository_control: true
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.backends[0].weight, 3.0);
  EXPECT_EQ(c.routing.policy, "round_robin");
  EXPECT_EQ(c.routing.retries, 2);
  EXPECT_EQ(c.routing.retry_budget_percent, 20);
  EXPECT_EQ(c.routing.sequence_idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.health.interval, std::chrono::seconds(2));
  EXPECT_EQ(c.health.timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.health.unhealthy_threshold, 3);
  EXPECT_EQ(c.health.healthy_threshold, 4);
  EXPECT_EQ(c.health.inventory_interval, std::chrono::seconds(30));
  EXPECT_EQ(c.health.ejection_base, std::chrono::seconds(1));
  EXPECT_EQ(c.health.ejection_max, std::chrono::seconds(20));
  EXPECT_EQ(c.health.max_ejected_percent, 34);
  EXPECT_EQ(c.health.slow_start, std::chrono::seconds(0));
  EXPECT_TRUE(c.allow_repository_control);
}

TEST(ConfigLoader, BadRoutingAndHealthValues) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1", weight: 0}]
routing:
  policy: fastest
  retries: -1
health:
  timeout: 2s
  interval: 1s
  ejection_base: 10s
  ejection_max: 5s
allow_repository_control: maybe
)");
  EXPECT_THAT(problem_at(r, "backends[0].weight").message, HasSubstr("out of range"));
  EXPECT_THAT(problem_at(r, "routing.policy").message, HasSubstr("least_loaded"));
  EXPECT_THAT(problem_at(r, "routing.retries").message, HasSubstr("out of range"));
  EXPECT_THAT(problem_at(r, "allow_repository_control").message, HasSubstr("true or false"));
  std::string all;
  for (const Problem& p : r.problems) all += p.to_string() + "\n";
  EXPECT_THAT(all, HasSubstr("ejection_max must not be shorter"));
  EXPECT_THAT(all, HasSubstr("timeout must not exceed"));
}

TEST(ConfigLoader, MetricsUrlsAndScrapeSettings) {
  LoadResult r = load(R"(
backends:
  - name: gpu-a
    address: "10.0.0.5:8001"
    metrics_url: "http://10.0.0.5:8002/metrics"
  - name: gpu-b
    address: "[fd00::7]:8001"
    metrics_url: "HTTP://[fd00::7]:8002/metrics?name=nv_gpu"
  - name: gpu-c
    address: "triton-2.triton.svc:8001"
health:
  metrics_interval: 10s
  metrics_timeout: 3s
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const Config& c = *r.config;
  ASSERT_TRUE(c.backends[0].metrics_url.has_value());
  EXPECT_EQ(c.backends[0].metrics_url->address, (HostPort{"10.0.0.5", 8002}));
  EXPECT_EQ(c.backends[0].metrics_url->path, "/metrics");
  EXPECT_EQ(c.backends[0].metrics_url->to_string(), "http://10.0.0.5:8002/metrics");
  ASSERT_TRUE(c.backends[1].metrics_url.has_value());
  EXPECT_EQ(c.backends[1].metrics_url->address.host, "fd00::7");
  EXPECT_EQ(c.backends[1].metrics_url->path, "/metrics?name=nv_gpu");
  EXPECT_EQ(c.backends[1].metrics_url->to_string(), "http://[fd00::7]:8002/metrics?name=nv_gpu");
  EXPECT_FALSE(c.backends[2].metrics_url.has_value());  // optional: not scraped
  EXPECT_EQ(c.health.metrics_interval, std::chrono::seconds(10));
  EXPECT_EQ(c.health.metrics_timeout, std::chrono::seconds(3));
}

TEST(ConfigLoader, ScrapeSettingsHaveDefaults) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1"}])");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  EXPECT_FALSE(r.config->backends[0].metrics_url.has_value());
  EXPECT_EQ(r.config->health.metrics_interval, std::chrono::seconds(5));
  EXPECT_EQ(r.config->health.metrics_timeout, std::chrono::seconds(2));
}

TEST(ConfigLoader, BadMetricsUrlsAreLocated) {
  LoadResult r = load(R"(backends:
  - {name: a, address: "h:1", metrics_url: "https://u@h:8002/metrics"}
  - {name: b, address: "h:2", metrics_url: "h:8002/metrics"}
  - {name: c, address: "h:3", metrics_url: "http://h:x/metrics"}
  - {name: d, address: "h:4", metrics_url: "http://h:8002"}
  - {name: e, address: "h:5", metrics_url: "http://h:0/metrics"}
  - {name: f, address: "h:6", metrics_url: "http://user@h:8002/metrics"}
  - {name: g, address: "h:7", metrics_url: "http://h:8002/my metrics"}
  - {name: i, address: "h:8", metrics_url: "ftp://h:8002/metrics"}
  - {name: j, address: "h:9", metrics_url: "http://h:8002/metrics#top"}
  - {name: k, address: "h:10", metrics_url: [1, 2]}
)");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "backends[0].metrics_url").message, HasSubstr("user info"));
  EXPECT_THAT(problem_at(r, "backends[1].metrics_url").message,
              HasSubstr("must start with http://"));
  problem_at(r, "backends[2].metrics_url");  // not a port
  EXPECT_THAT(problem_at(r, "backends[3].metrics_url").message, HasSubstr("needs a path"));
  EXPECT_THAT(problem_at(r, "backends[4].metrics_url").message, HasSubstr("port 0"));
  EXPECT_THAT(problem_at(r, "backends[5].metrics_url").message, HasSubstr("user info"));
  EXPECT_THAT(problem_at(r, "backends[6].metrics_url").message, HasSubstr("space"));
  EXPECT_THAT(problem_at(r, "backends[7].metrics_url").message, HasSubstr("https:// URL"));
  EXPECT_THAT(problem_at(r, "backends[8].metrics_url").message, HasSubstr("fragment"));
  problem_at(r, "backends[9].metrics_url");  // not a string
  Problem p = problem_at(r, "backends[0].metrics_url");
  EXPECT_EQ(p.line, 2);
  EXPECT_EQ(p.column, 44);
  EXPECT_THAT(p.message, HasSubstr("https://u@h:8002/metrics"));
}

TEST(ConfigLoader, MetricsUrlsMayUseHttpsAndTheSchemesPort) {
  LoadResult r = load(R"(backends:
  - {name: a, address: "h:1", metrics_url: "https://triton-a.example/metrics"}
  - {name: b, address: "h:2", metrics_url: "http://10.0.0.5/metrics"}
  - {name: c, address: "h:3", metrics_url: "https://[fd00::5]:8443/metrics"}
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const auto& b = r.config->backends;
  EXPECT_TRUE(b[0].metrics_url->tls);
  EXPECT_EQ(b[0].metrics_url->address.port, 443);
  EXPECT_EQ(b[0].metrics_url->to_string(), "https://triton-a.example:443/metrics");
  EXPECT_FALSE(b[1].metrics_url->tls);
  EXPECT_EQ(b[1].metrics_url->address.port, 80);
  EXPECT_EQ(b[2].metrics_url->address.host, "fd00::5");
  EXPECT_EQ(b[2].metrics_url->address.port, 8443);
}

TEST(ConfigLoader, BadScrapeSettings) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1"}]
health:
  metrics_interval: 0s
  metrics_timeout: soon
)");
  EXPECT_THAT(problem_at(r, "health.metrics_interval").message, HasSubstr("must be positive"));
  problem_at(r, "health.metrics_timeout");
  LoadResult slow = load(R"(backends: [{name: a, address: "h:1"}]
health:
  metrics_interval: 1s
  metrics_timeout: 2s
  metrics_intervall: 3s
)");
  std::string all;
  for (const Problem& p : slow.problems) all += p.to_string() + "\n";
  EXPECT_THAT(all, HasSubstr("metrics_timeout must not exceed health.metrics_interval"));
  EXPECT_THAT(problem_at(slow, "health.metrics_intervall").message,
              HasSubstr("did you mean 'metrics_interval'"));
}

TEST(ConfigLoader, LimitsAndCompressionContract) {
  LoadResult r = load(R"(
backends:
  - name: gpu-a
    address: "10.0.0.5:8001"
    max_inflight: 64
    compression: gzip
    compression_min_bytes: 64KiB
  - name: gpu-b
    address: "10.0.0.6:8001"
limits:
  job_header: Infergate-Job
  job_idle_timeout: 60s
  max_jobs: 600
  max_inflight: 4096
  per_job_max_inflight: 16
  max_bytes_in_flight: 8GiB
  link_bandwidth: 100Gbps
  max_queue: 10000
  queue_timeout: 30s
frontend:
  response_compression: deflate
)");
  ASSERT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].to_string());
  const Config& c = *r.config;
  EXPECT_EQ(c.backends[0].max_inflight, 64u);
  EXPECT_EQ(c.backends[0].compression, "gzip");
  EXPECT_EQ(c.backends[0].compression_min_bytes, 65536u);
  EXPECT_EQ(c.backends[1].max_inflight, 0u);
  EXPECT_EQ(c.backends[1].compression, "none");
  EXPECT_EQ(c.limits.job_header, "infergate-job");  // metadata keys are lowercase
  EXPECT_EQ(c.limits.job_idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.limits.max_jobs, 600u);
  EXPECT_EQ(c.limits.max_inflight, 4096u);
  EXPECT_EQ(c.limits.per_job_max_inflight, 16u);
  EXPECT_EQ(c.limits.max_bytes_in_flight, 8ull << 30);
  EXPECT_EQ(c.limits.link_bandwidth, 12'500'000'000ull);  // bytes per second
  EXPECT_EQ(c.limits.max_queue, 10000u);
  EXPECT_EQ(c.limits.queue_timeout, std::chrono::seconds(30));
  EXPECT_TRUE(c.limits.any());
  EXPECT_EQ(c.frontend.response_compression, "deflate");
}

TEST(ConfigLoader, NoLimitsByDefault) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1"}])");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->limits.any());
  EXPECT_EQ(r.config->limits.job_header, "infergate-job");
}

TEST(ConfigLoader, BadLimitsAndCompressionValues) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1", compression: zstd, max_inflight: -1}]
limits:
  job_header: "grpc-timeout"
  link_bandwidth: fast
  queue_timeout: 0s
  max_jobs: many
frontend:
  response_compression: br
)");
  EXPECT_THAT(problem_at(r, "backends[0].compression").message, HasSubstr("gzip"));
  EXPECT_THAT(problem_at(r, "backends[0].max_inflight").message, HasSubstr("out of range"));
  EXPECT_THAT(problem_at(r, "limits.job_header").message, HasSubstr("metadata key"));
  EXPECT_FALSE(problem_at(r, "limits.link_bandwidth").message.empty());
  EXPECT_THAT(problem_at(r, "limits.queue_timeout").message, HasSubstr("positive"));
  EXPECT_FALSE(problem_at(r, "limits.max_jobs").message.empty());
  EXPECT_THAT(problem_at(r, "frontend.response_compression").message, HasSubstr("deflate"));
}

TEST(ConfigLoader, BoundsContract) {
  LoadResult r = load(R"(
backends:
  - {name: a, address: "127.0.0.1:8001"}
frontend:
  handshake_timeout: 2s
  idle_timeout: 90s
  stream_idle_timeout: 45s
  max_connections: 500
  max_header_bytes: 32KiB
upstream:
  stream_idle_timeout: 50s
  keepalive_interval: 15s
  keepalive_timeout: 3s
  max_streams_per_connection: 1000
limits:
  max_buffered_bytes: 2GiB
  max_routing_fields_bytes: 16KiB
  max_reorder_bytes: 8MiB
  max_control_message_bytes: 1MiB
  max_sequence_table_bytes: 8MiB
  max_job_table_bytes: 4MiB
  max_stream_messages_in_flight: 64
  backend_wait_timeout: 5s
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.frontend.handshake_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c.frontend.idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.frontend.stream_idle_timeout, std::chrono::seconds(45));
  EXPECT_EQ(c.frontend.max_connections, 500u);
  EXPECT_EQ(c.frontend.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.upstream.stream_idle_timeout, std::chrono::seconds(50));
  EXPECT_EQ(c.upstream.keepalive_interval, std::chrono::seconds(15));
  EXPECT_EQ(c.upstream.keepalive_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.upstream.max_streams_per_connection, 1000u);
  EXPECT_EQ(c.limits.max_buffered_bytes, 2ull << 30);
  EXPECT_EQ(c.limits.max_routing_fields_bytes, 16u * 1024);
  EXPECT_EQ(c.limits.max_reorder_bytes, 8u << 20);
  EXPECT_EQ(c.limits.max_control_message_bytes, 1u << 20);
  EXPECT_EQ(c.limits.max_sequence_table_bytes, 8u << 20);
  EXPECT_EQ(c.limits.max_job_table_bytes, 4u << 20);
  EXPECT_EQ(c.limits.max_stream_messages_in_flight, 64u);
  EXPECT_EQ(c.limits.backend_wait_timeout, std::chrono::seconds(5));
  EXPECT_FALSE(c.limits.any());  // bounds are not admission limits
}

TEST(ConfigLoader, EveryBoundHasASafeDefault) {
  LoadResult r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\n");
  ASSERT_TRUE(r.ok());
  const Config& c = *r.config;
  EXPECT_GT(c.limits.max_buffered_bytes, 0u);  // a share of the machine's memory
  EXPECT_EQ(c.limits.max_routing_fields_bytes, 64u * 1024);
  EXPECT_EQ(c.limits.max_reorder_bytes, 64u << 20);
  EXPECT_EQ(c.limits.max_control_message_bytes, 16u << 20);
  EXPECT_EQ(c.limits.max_sequence_table_bytes, 64u << 20);
  EXPECT_EQ(c.limits.max_job_table_bytes, 64u << 20);
  EXPECT_EQ(c.limits.max_stream_messages_in_flight, 1024u);
  EXPECT_EQ(c.frontend.handshake_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.frontend.stream_idle_timeout, std::chrono::seconds(300));
  EXPECT_EQ(c.upstream.keepalive_interval, std::chrono::seconds(30));
  EXPECT_EQ(c.upstream.max_streams_per_connection, 1000000000u);
}

TEST(ConfigLoader, FrontendTlsNeedsReadableFilesAndACaForRequiredClientCerts) {
  LoadResult r = load(R"(
backends: [{name: a, address: "127.0.0.1:8001"}]
listen_plaintext: "127.0.0.1:8011"
frontend:
  tls:
    cert: /nonexistent/tls.crt
    require_client_cert: true
    min_version: "1.1"
)");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "frontend.tls.cert").message, HasSubstr("cannot read"));
  EXPECT_THAT(problem_at(r, "frontend.tls").message, HasSubstr("'key'"));
  EXPECT_THAT(problem_at(r, "frontend.tls.require_client_cert").message, HasSubstr("client_ca"));
  problem_at(r, "frontend.tls.min_version");

  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nlisten_plaintext: \"127.0.0.1:8011\"\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "listen_plaintext").message, HasSubstr("frontend.tls"));

  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nfrontend:\n  tls:\n    cert: "
      "/etc/passwd\n    key: /etc/passwd\nlisten_plaintext: \"127.0.0.1:8011\"\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  ASSERT_TRUE(r.config->frontend.tls.has_value());
  EXPECT_EQ(r.config->frontend.tls->cert, "/etc/passwd");
  EXPECT_EQ(r.config->frontend.tls->min_version, "1.2");
  ASSERT_TRUE(r.config->listen_plaintext.has_value());
  EXPECT_EQ(r.config->listen_plaintext->port, 8011);
}

TEST(ConfigLoader, BackendTlsNamesReadableFilesAndACertWithItsKey) {
  LoadResult r = load(R"(
backends:
  - {name: a, address: "127.0.0.1:8001", tls: {ca: /etc/passwd, server_name: triton.example}}
  - {name: b, address: "127.0.0.1:8002", tls: {cert: /etc/passwd}}
  - {name: c, address: "127.0.0.1:8003", tls: {ca: /nonexistent.pem}}
)");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "backends[1].tls.cert").message, HasSubstr("go together"));
  EXPECT_THAT(problem_at(r, "backends[2].tls.ca").message, HasSubstr("cannot read"));
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\", tls: {ca: /etc/passwd, "
      "server_name: triton.example}}]\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  ASSERT_TRUE(r.config->backends[0].tls.has_value());
  EXPECT_EQ(r.config->backends[0].tls->server_name, "triton.example");
}

TEST(ConfigLoader, AuthTokensFileListsHashesWithTheirGroups) {
  char pattern[] = "/tmp/infergate-tokens-test-XXXXXX";
  ::close(::mkstemp(pattern));
  const std::string path = pattern;
  std::ofstream(path)
      << "# the SHA-256 of each token, and its group\n"
      << "sha256:8766B9CB08E6040B704F1E3EE1E186EFCCF2635B1D2634D6525333007E6AEAE1 cms\n"
      << "\n"
      << "not-a-hash atlas\n";
  LoadResult r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nauth:\n  mode: token\n"
      "  tokens_file: " +
      path + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "auth.tokens_file").message, HasSubstr("line 4"));
  std::ofstream(path) << "8766b9cb08e6040b704f1e3ee1e186efccf2635b1d2634d6525333007e6aeae1 cms\n";
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nauth:\n  mode: token\n"
      "  tokens_file: " +
      path + "\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  ASSERT_EQ(r.config->auth.tokens.size(), 1u);
  EXPECT_EQ(r.config->auth.tokens[0].group, "cms");
  EXPECT_TRUE(r.config->auth.allow_unauthenticated_health);
  r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\nauth:\n  mode: token\n");
  ASSERT_FALSE(r.ok());
  problem_at(r, "auth");  // tokens_file is required
  std::remove(path.c_str());
}

TEST(ConfigLoader, AuthJwtNamesIssuersWithTheirKeys) {
  char pattern[] = "/tmp/infergate-jwks-test-XXXXXX";
  ::close(::mkstemp(pattern));
  const std::string path = pattern;
  const std::string base = "backends: [{name: a, address: \"127.0.0.1:8001\"}]\n";
  LoadResult r = load(base + "auth:\n  mode: jwt\n");
  ASSERT_FALSE(r.ok());
  problem_at(r, "auth");  // issuers is required

  std::ofstream(path) << "{\"keys\": [{\"kty\": \"oct\", \"kid\": \"k\"}]}";
  r = load(base +
           "auth:\n  mode: jwt\n  issuers:\n    - issuer: https://cms-auth.example/\n"
           "      jwks_file: " +
           path + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "auth.issuers[0].jwks_file").message, HasSubstr("no RSA or EC key"));

  r = load(base +
           "auth:\n  mode: jwt\n  issuers:\n    - issuer: https://cms-auth.example/\n"
           "    - {issuer: x, jwks_url: \"ftp://x/keys\"}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "auth.issuers[0]").message, HasSubstr("jwks_file or jwks_url"));
  EXPECT_THAT(problem_at(r, "auth.issuers[1].jwks_url").message, HasSubstr("https://"));

  std::ofstream(path) << "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"k1\", \"crv\": \"P-256\", "
                         "\"x\": \"AA\", \"y\": \"AA\"}]}";
  r = load(base +
           "auth:\n  mode: jwt\n  required_scope: compute.read\n  job_claim: wlcg.job\n"
           "  jwks_refresh: 5m\n  max_cached_tokens: 500\n  issuers:\n"
           "    - issuer: https://cms-auth.example/\n      jwks_file: " +
           path +
           "\n"
           "      jwks_url: https://cms-auth.example/jwk\n"
           "      audience: [https://infergate.example, infergate]\n      group: cms\n"
           "    - {issuer: https://atlas-auth.example/, jwks_file: " +
           path + ", audience: infergate}\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const config::AuthConfig& a = r.config->auth;
  ASSERT_EQ(a.issuers.size(), 2u);
  EXPECT_EQ(a.issuers[0].audience,
            (std::vector<std::string>{"https://infergate.example", "infergate"}));
  EXPECT_EQ(a.issuers[0].group, "cms");
  EXPECT_EQ(a.issuers[0].jwks_url, "https://cms-auth.example/jwk");
  EXPECT_THAT(a.issuers[0].jwks, HasSubstr("\"k1\""));
  EXPECT_EQ(a.issuers[1].group, "https://atlas-auth.example/");  // the issuer, by default
  EXPECT_EQ(a.issuers[1].audience, (std::vector<std::string>{"infergate"}));
  EXPECT_EQ(a.required_scope, "compute.read");
  EXPECT_EQ(a.job_claim, "wlcg.job");
  EXPECT_EQ(a.jwks_refresh, std::chrono::minutes(5));
  EXPECT_EQ(a.max_cached_tokens, 500u);
  std::remove(path.c_str());
}

TEST(ConfigLoader, BackendsMayBeFoundInDns) {
  LoadResult r = load(R"(backends:
  - {name: triton, dns: "triton-headless.ns.svc:8001", max_inflight: 4}
  - {name: far, srv: _grpc._tcp.triton.ns.svc}
  - {name: one, address: "10.0.0.5:8001"}
discovery:
  interval: 10s
  timeout: 1s
  max_members: 32
  resolvers: ["10.96.0.10:53", "[fd00::a]:53"]
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const auto& b = r.config->backends;
  EXPECT_EQ(b[0].dns.to_string(), "triton-headless.ns.svc:8001");
  EXPECT_EQ(b[0].address.port, 0);
  EXPECT_EQ(b[1].srv, "_grpc._tcp.triton.ns.svc");
  EXPECT_EQ(r.config->discovery.interval, std::chrono::seconds(10));
  EXPECT_EQ(r.config->discovery.timeout, std::chrono::seconds(1));
  EXPECT_EQ(r.config->discovery.max_members, 32u);
  ASSERT_EQ(r.config->discovery.resolvers.size(), 2u);
  EXPECT_EQ(r.config->discovery.resolvers[1].host, "fd00::a");

  r = load(R"(backends:
  - {name: both, address: "10.0.0.5:8001", dns: "x.svc:8001"}
  - {name: neither, weight: 2}
  - {name: bad, srv: "not a name"}
  - {name: noport, dns: "x.svc"}
)");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "backends[0]").message, HasSubstr("exactly one of address"));
  EXPECT_THAT(problem_at(r, "backends[1]").message, HasSubstr("exactly one of address"));
  EXPECT_THAT(problem_at(r, "backends[2].srv").message, HasSubstr("DNS name"));
  problem_at(r, "backends[3].dns");
}

TEST(ConfigLoader, SequencePlacementIsHashOrLoad) {
  LoadResult r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->routing.sequence_placement, "hash");
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nrouting:\n"
      "  sequence_placement: load\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->routing.sequence_placement, "load");
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nrouting:\n"
      "  sequence_placement: sticky\n");
  EXPECT_FALSE(r.ok());
}

TEST(ConfigLoader, MaxStreamWindowIsAtLeastTheStreamWindow) {
  LoadResult r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->frontend.max_stream_window_bytes, 16u << 20);
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nfrontend:\n  stream_window: 32MiB\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->frontend.max_stream_window_bytes, 32u << 20);  // follows it up
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nfrontend:\n  stream_window: 2MiB\n"
      "  max_stream_window: 1MiB\n");
  EXPECT_THAT(problem_at(r, "frontend.max_stream_window").message, HasSubstr("at least"));
}

TEST(ConfigLoader, WaitForBackendAndTheListedModels) {
  LoadResult r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->routing.wait_for_backend);
  EXPECT_TRUE(r.config->routing.models.empty());
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nrouting:\n"
      "  wait_for_backend: true\n  models: [particlenet, deepmet, particlenet]\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  EXPECT_TRUE(r.config->routing.wait_for_backend);
  EXPECT_EQ(r.config->routing.models, (std::vector<std::string>{"particlenet", "deepmet"}));
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nrouting:\n"
      "  models: [\"\"]\n");
  EXPECT_THAT(problem_at(r, "routing.models[0]").message, HasSubstr("1 to 256 bytes"));
  std::string many = "backends: [{name: a, address: \"127.0.0.1:8001\"}]\nrouting:\n  models: [";
  for (int i = 0; i < 64; ++i) many += (i ? ", m" : "m") + std::to_string(i);
  r = load(many + "]\n");
  EXPECT_THAT(problem_at(r, "routing.models[63]").message, HasSubstr("at most 63"));
}

TEST(ConfigLoader, ClusterNeedsARedisUrlAndChecksItsKeys) {
  LoadResult r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->cluster.has_value());
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\ncluster:\n"
      "  redis: \"rediss://:pw@redis.ns.svc:6380\"\n  name: cms-prod\n  lease: 250ms\n"
      "  timeout: 100ms\n  expected_replicas: 3\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  ASSERT_TRUE(r.config->cluster.has_value());
  EXPECT_EQ(r.config->cluster->redis.password, "pw");
  EXPECT_EQ(r.config->cluster->name, "cms-prod");
  EXPECT_EQ(r.config->cluster->lease, std::chrono::milliseconds(250));
  EXPECT_EQ(r.config->cluster->expected_replicas, 3);
  EXPECT_EQ(r.config->cluster->timeout, std::chrono::milliseconds(100));
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\ncluster:\n"
      "  redis: \"redis://h:6379\"\n  lease: 400ms\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->cluster->timeout, std::chrono::milliseconds(200));  // half the lease
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\ncluster:\n"
      "  redis: \"redis://h:6379\"\n  lease: 100ms\n  timeout: 80ms\n");
  EXPECT_THAT(problem_at(r, "cluster.timeout").message, HasSubstr("half of cluster.lease"));
  r = load("backends: [{name: a, address: \"127.0.0.1:8001\"}]\ncluster: {name: x}\n");
  problem_at(r, "cluster");  // missing required key 'redis'

  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\ncluster:\n"
      "  redis: \"redis://:topsecret@host:6379\"\n  name: \"a b\"\n  lease: 5ms\n");
  EXPECT_THAT(problem_at(r, "cluster.name").message, HasSubstr("letters"));
  EXPECT_THAT(problem_at(r, "cluster.lease").message, HasSubstr("20ms"));
  for (const auto& p : r.problems) EXPECT_EQ(p.to_string().find("topsecret"), std::string::npos);
}

TEST(ConfigLoader, AdminTlsNeedsBothFiles) {
  LoadResult r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\n"
      "admin:\n  tls: {cert: /etc/passwd}\n");
  ASSERT_FALSE(r.ok());
  problem_at(r, "admin.tls");  // key is required
  r = load(
      "backends: [{name: a, address: \"127.0.0.1:8001\"}]\n"
      "admin:\n  tls: {cert: /etc/passwd, key: /etc/passwd}\n");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  ASSERT_TRUE(r.config->admin.tls.has_value());
  EXPECT_EQ(r.config->admin.tls->key, "/etc/passwd");
}

TEST(ConfigLoader, LimitsGroupsCapEachGroup) {
  LoadResult r = load(R"(backends: [{name: a, address: "127.0.0.1:8001"}]
limits:
  link_bandwidth: 10Gbps
  groups:
    - {name: cms, max_jobs: 600, max_inflight: 2000, link_bandwidth_share: 0.5}
    - {name: atlas, max_jobs: 300}
)");
  ASSERT_TRUE(r.ok()) << r.problems.front().to_string();
  const auto& g = r.config->limits.groups;
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].name, "cms");
  EXPECT_EQ(g[0].max_jobs, 600u);
  EXPECT_EQ(g[0].max_inflight, 2000u);
  EXPECT_DOUBLE_EQ(g[0].link_bandwidth_share, 0.5);
  EXPECT_EQ(g[1].max_inflight, 0u);
  EXPECT_TRUE(r.config->limits.any());

  r = load(R"(backends: [{name: a, address: "127.0.0.1:8001"}]
limits:
  groups:
    - {name: cms, link_bandwidth_share: 0.5}
    - {name: cms, max_jobs: 1}
    - {max_jobs: 1}
    - {name: lhcb, link_bandwidth_share: 2}
)");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "limits.groups[0].link_bandwidth_share").message,
              HasSubstr("limits.link_bandwidth"));
  EXPECT_THAT(problem_at(r, "limits.groups[1]").message, HasSubstr("listed twice"));
  problem_at(r, "limits.groups[2]");  // name is required
  EXPECT_THAT(problem_at(r, "limits.groups[3].link_bandwidth_share").message,
              HasSubstr("out of range"));
}

TEST(ConfigLoader, BadBoundsAreLocated) {
  LoadResult r = load(R"(
backends:
  - {name: a, address: "127.0.0.1:8001"}
frontend:
  handshake_timeout: 0s
  max_header_bytes: 10
upstream:
  max_streams_per_connection: 0
limits:
  max_routing_fields_bytes: 1GiB
  max_stream_messages_in_flight: 0
)");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(problem_at(r, "frontend.handshake_timeout").message, HasSubstr("positive"));
  EXPECT_THAT(problem_at(r, "frontend.max_header_bytes").message, HasSubstr("between"));
  problem_at(r, "upstream.max_streams_per_connection");
  EXPECT_THAT(problem_at(r, "limits.max_routing_fields_bytes").message, HasSubstr("between"));
  problem_at(r, "limits.max_stream_messages_in_flight");
}

TEST(ConfigLoader, BadProcessSettingsAreLocated) {
  LoadResult r = load(R"(backends: [{name: a, address: "h:1"}]
workers: -1
drain_timeout: 30
log_level: loud
frontend:
  stream_window: 1KiB
  max_streams: 5
upstream:
  connect_timeout: 0s
)");
  EXPECT_THAT(problem_at(r, "workers").message, HasSubstr("out of range"));
  EXPECT_THAT(problem_at(r, "drain_timeout").message, HasSubstr("needs a unit"));
  EXPECT_THAT(problem_at(r, "log_level").message, HasSubstr("is not one of"));
  EXPECT_THAT(problem_at(r, "frontend.stream_window").message, HasSubstr("between 64KiB"));
  EXPECT_THAT(problem_at(r, "frontend.max_streams").message,
              HasSubstr("did you mean 'max_concurrent_streams'"));
  EXPECT_THAT(problem_at(r, "upstream.connect_timeout").message, HasSubstr("positive"));
  EXPECT_EQ(problem_at(r, "frontend.max_streams").line, 7);
}

TEST(ConfigLoader, ListenAddressesHaveTritonDefaultsAndAcceptPortZero) {
  LoadResult defaults = load("backends: [{name: a, address: 'h:1'}]");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults.config->listen.port, 8001);
  EXPECT_EQ(defaults.config->admin_listen.port, 8002);

  LoadResult zero = load(R"(
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
backends: [{name: a, address: "h:1"}]
)");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero.config->listen.port, 0);
}

TEST(ConfigLoader, UnknownKeyIsLocatedAndGetsASuggestion) {
  LoadResult r = load(R"(listen: "0.0.0.0:8001"
backend:
  - name: a
)");
  ASSERT_FALSE(r.ok());
  Problem p = problem_at(r, "backend");
  EXPECT_EQ(p.line, 2);
  EXPECT_EQ(p.column, 1);
  EXPECT_THAT(p.message, HasSubstr("unknown key 'backend'"));
  EXPECT_THAT(p.message, HasSubstr("did you mean 'backends'"));
  // The missing required key is reported too, at the document.
  EXPECT_THAT(problem_at(r, "").message, HasSubstr("missing required key 'backends'"));
}

TEST(ConfigLoader, UnknownKeyInsideABackend) {
  LoadResult r = load(R"(backends:
  - name: a
    address: "h:1"
    colour: blue
)");
  Problem p = problem_at(r, "backends[0].colour");
  EXPECT_EQ(p.line, 4);
  EXPECT_EQ(p.column, 5);
  EXPECT_THAT(p.message, HasSubstr("unknown key 'colour'"));
}

TEST(ConfigLoader, WrongTypesAreReportedWithTheirPosition) {
  LoadResult r = load(R"(listen: [1, 2]
backends:
  name: a
)");
  ASSERT_FALSE(r.ok());
  Problem listen = problem_at(r, "listen");
  EXPECT_EQ(listen.line, 1);
  EXPECT_EQ(listen.column, 9);
  EXPECT_THAT(listen.message, HasSubstr("expected an address host:port, got a list"));
  Problem backends = problem_at(r, "backends");
  EXPECT_EQ(backends.line, 3);
  EXPECT_THAT(backends.message, HasSubstr("expected a list, got a mapping"));
}

TEST(ConfigLoader, BackendMustBeAMappingWithNameAndAddress) {
  LoadResult r = load(R"(backends:
  - just-a-string
  - name: b
)");
  EXPECT_THAT(problem_at(r, "backends[0]").message, HasSubstr("expected a mapping"));
  Problem missing = problem_at(r, "backends[1]");
  EXPECT_THAT(missing.message, HasSubstr("needs exactly one of address"));
  EXPECT_EQ(missing.line, 3);
}

TEST(ConfigLoader, DuplicateBackendNames) {
  LoadResult r = load(R"(backends:
  - name: gpu-a
    address: "h1:8001"
  - name: gpu-a
    address: "h2:8001"
)");
  Problem p = problem_at(r, "backends[1]");
  EXPECT_THAT(p.message, HasSubstr("duplicate backend name 'gpu-a' (also backends[0])"));
  EXPECT_EQ(p.line, 4);
  EXPECT_EQ(p.column, 5);
}

TEST(ConfigLoader, DuplicateBackendAddresses) {
  LoadResult r = load(R"(backends:
  - {name: a, address: "h1:8001"}
  - {name: b, address: "h1:8001"}
)");
  EXPECT_THAT(problem_at(r, "backends[1]").message, HasSubstr("is also backends[0]"));
}

TEST(ConfigLoader, EmptyBackendList) {
  LoadResult r = load("backends: []\n");
  Problem p = problem_at(r, "backends");
  EXPECT_THAT(p.message, HasSubstr("at least one backend"));
  EXPECT_EQ(p.line, 1);
  EXPECT_EQ(p.column, 11);
}

TEST(ConfigLoader, BadAddresses) {
  LoadResult r = load(R"(listen: "0.0.0.0"
admin_listen: "127.0.0.1:99999"
backends:
  - {name: a, address: "http://h:8001"}
  - {name: b, address: "h:0"}
  - {name: c, address: "h:port"}
  - {name: d, address: "::1:8001"}
  - {name: e, address: "bad host:1"}
)");
  EXPECT_THAT(problem_at(r, "listen").message, HasSubstr("needs a port"));
  EXPECT_THAT(problem_at(r, "admin_listen").message, HasSubstr("above 65535"));
  EXPECT_THAT(problem_at(r, "backends[0].address").message, HasSubstr("without a scheme"));
  EXPECT_THAT(problem_at(r, "backends[1].address").message, HasSubstr("port 0"));
  EXPECT_THAT(problem_at(r, "backends[2].address").message, HasSubstr("not a number"));
  EXPECT_THAT(problem_at(r, "backends[3].address").message, HasSubstr("[addr]:port"));
  EXPECT_THAT(problem_at(r, "backends[4].address").message, HasSubstr("invalid character"));
  Problem p = problem_at(r, "backends[0].address");
  EXPECT_EQ(p.line, 4);
  EXPECT_EQ(p.column, 24);
}

TEST(ConfigLoader, BadBackendName) {
  LoadResult r = load(R"(backends: [{name: "gpu a!", address: "h:1"}])");
  EXPECT_THAT(problem_at(r, "backends[0].name").message, HasSubstr("must be 1-64 characters"));
}

TEST(ConfigLoader, AdminListenMustNotCollideWithListen) {
  LoadResult r = load(R"(listen: "0.0.0.0:9000"
admin_listen: "127.0.0.1:9000"
backends: [{name: a, address: "h:1"}]
)");
  EXPECT_THAT(problem_at(r, "admin_listen").message, HasSubstr("collides with listen"));
}

TEST(ConfigLoader, DuplicateKeysAreReported) {
  LoadResult r = load(R"(listen: "0.0.0.0:1"
listen: "0.0.0.0:2"
backends: [{name: a, address: "h:1"}]
)");
  Problem p = problem_at(r, "listen");
  EXPECT_EQ(p.line, 2);
  EXPECT_THAT(p.message, HasSubstr("duplicate key 'listen'"));
}

TEST(ConfigLoader, EveryProblemIsReportedNotOnlyTheFirst) {
  LoadResult r = load(R"(listen: nowhere
extra: 1
backends:
  - {name: a, address: "h:1", weight_typo: 2}
  - {name: a, address: "h:x"}
)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems.size(), 5u);
  for (const Problem& p : r.problems) {
    EXPECT_EQ(p.file, "test.yaml");
    EXPECT_GT(p.line, 0) << p.to_string();
    EXPECT_GT(p.column, 0) << p.to_string();
  }
}

TEST(ConfigLoader, SyntaxErrorIsLocated) {
  LoadResult r = load("backends:\n  - name: a\n   address: [unclosed\n");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0].message, HasSubstr("YAML syntax error"));
  EXPECT_GT(r.problems[0].line, 1);
}

TEST(ConfigLoader, EmptyAndNonMappingDocuments) {
  EXPECT_THAT(load("").problems.at(0).message, HasSubstr("empty"));
  EXPECT_THAT(load("- a\n- b\n").problems.at(0).message, HasSubstr("expected a mapping"));
}

TEST(ConfigLoader, ProblemToStringIsFileLineColumnPathMessage) {
  LoadResult r = load("backends: []\n");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].to_string(),
            "test.yaml:1:11: backends: at least one backend is required");
}

TEST(ConfigLoader, LoadsFromAFileAndReportsAMissingOne) {
  const std::string path = ::testing::TempDir() + "/infergate_loader_test.yaml";
  {
    std::ofstream out(path);
    out << "backends:\n  - {name: a, address: 'h:1'}\n";
  }
  LoadResult r = load_config_file(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->source, path);
  std::remove(path.c_str());

  LoadResult missing = load_config_file(path);
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_THAT(missing.problems[0].to_string(), HasSubstr("cannot open"));
}

}  // namespace
}  // namespace infergate::config
