// Triton's own metrics through the gateway: each backend's metrics_url is scraped and
// re-exported on the gateway's /metrics, per backend and for the fleet; an endpoint that
// answers garbage or does not answer at all is stale, warned about once, and never gets
// in the way of requests.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <random>

#include "tests/support/cluster.h"
#include "tests/support/fake_http_server.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// Fast probes and scrapes, so tests see results in a fraction of a second.
const char* kFast =
    "health:\n  interval: 200ms\n  timeout: 150ms\n  inventory_interval: 1s\n"
    "  metrics_interval: 200ms\n  metrics_timeout: 150ms\n";

std::string metrics_url_key(int port) {
  return "metrics_url: \"http://127.0.0.1:" + std::to_string(port) + "/metrics\"";
}

// Lines of the gateway's log that contain `needle`.
int count_lines(Process& process, const std::string& needle) {
  int n = 0;
  for (const std::string& line : process.lines()) n += line.find(needle) != std::string::npos;
  return n;
}

// `n` ModelInfer calls through the gateway; returns who served how many (failures as "").
std::map<std::string, int> infer(int port, int n) {
  auto stub = make_stub(port);
  std::map<std::string, int> served;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 10s);
    inference::ModelInferResponse r;
    grpc::Status s = stub->ModelInfer(&c, identity_request(256, static_cast<std::uint32_t>(i)), &r);
    ++served[s.ok() ? served_by(r) : ""];
  }
  return served;
}

std::string garbage_page() {
  std::mt19937 rng(11);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return FakeHttpServer::ok(bytes);
}

TEST(TritonMetrics, AGoodEndpointIsReExportedAndAGarbageOneIsStaleAndWarnedOnce) {
  Sim a("a");
  Sim b("b");
  FakeHttpServer garbage(garbage_page());
  Gateway gw(Gateway::WithKeys{},
             {{"a", a.address(), {metrics_url_key(a.metrics_port())}},
              {"b", b.address(), {metrics_url_key(garbage.port())}}},
             kFast);
  ASSERT_TRUE(wait_until(
      [&] { return gw.metric("infergate_backend_metrics_fresh{backend=\"a\"}") == 1; }, 10s))
      << gw.metrics_text();
  const std::string text = gw.metrics_text();
  const double gib80 = 80.0 * (1ull << 30);  // the sim's GPU
  EXPECT_GE(metric_value(text, "infergate_backend_gpu_utilization{backend=\"a\"}"), 0) << text;
  EXPECT_LE(metric_value(text, "infergate_backend_gpu_utilization{backend=\"a\"}"), 1);
  EXPECT_GE(metric_value(text, "infergate_backend_pending_requests{backend=\"a\"}"), 0);
  EXPECT_EQ(metric_value(text, "infergate_backend_gpu_memory_total_bytes{backend=\"a\"}"), gib80);
  EXPECT_EQ(metric_value(text, "infergate_fleet_gpu_memory_total_bytes"), gib80);  // a only
  EXPECT_GE(metric_value(text, "infergate_fleet_pending_requests"), 0);

  // b's endpoint answers 200 with bytes that are not Prometheus text: stale, no values.
  ASSERT_TRUE(wait_until([&] { return garbage.requests() >= 5; }, 10s));
  EXPECT_EQ(gw.metric("infergate_backend_metrics_fresh{backend=\"b\"}"), 0);
  EXPECT_EQ(gw.metric("infergate_backend_gpu_utilization{backend=\"b\"}"), -1);  // absent
  EXPECT_EQ(count_lines(gw.process(), "metrics_scrape_failed backend=b "), 1);
  EXPECT_EQ(count_lines(gw.process(), "metrics_scrape_failed backend=a "), 0);

  // Requests flow to both backends as before.
  std::map<std::string, int> served = infer(gw.port(), 40);
  EXPECT_EQ(served[""], 0);
  EXPECT_GT(served["a"], 0);
  EXPECT_GT(served["b"], 0);
  // a's own success counter, re-exported, sees them.
  EXPECT_TRUE(wait_until(
      [&] { return gw.metric("infergate_backend_inference_success_total{backend=\"a\"}") > 0; },
      10s));
  EXPECT_EQ(count_lines(gw.process(), "metrics_scrape_failed backend=b "), 1);  // still once
}

TEST(TritonMetrics, AnEndpointWhereNothingListensIsStale) {
  Sim a("a");
  Gateway gw(Gateway::WithKeys{}, {{"a", a.address(), {metrics_url_key(closed_port())}}}, kFast);
  ASSERT_TRUE(wait_until(
      [&] { return count_lines(gw.process(), "metrics_scrape_failed backend=a ") == 1; }, 10s));
  EXPECT_EQ(gw.metric("infergate_backend_metrics_fresh{backend=\"a\"}"), 0);
  EXPECT_EQ(gw.metric("infergate_fleet_gpu_utilization"), -1);  // no fresh backend
  std::map<std::string, int> served = infer(gw.port(), 10);
  EXPECT_EQ(served["a"], 10);
}

TEST(TritonMetrics, BackendsWithoutAMetricsUrlAreNotShown) {
  Sim a("a");
  Gateway gw({{"a", a.address()}}, kFast);
  const std::string text = gw.metrics_text();
  EXPECT_EQ(metric_value(text, "infergate_backend_metrics_fresh"), -1) << text;
  EXPECT_EQ(metric_value(text, "infergate_fleet_pending_requests"), -1);
}

}  // namespace
}  // namespace infergate::testing
