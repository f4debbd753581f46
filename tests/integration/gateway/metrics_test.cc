// /metrics as traffic flows: requests counted once, outstanding back to zero, bytes equal
// to what crossed, per-model and per-backend series, and promtool accepts the text.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// Runs promtool check metrics on `text`; returns its output, *rc its exit status.
std::string promtool_check(const std::string& text, int* rc) {
  const std::string path =
      ::testing::TempDir() + "/infergate-metrics-" + std::to_string(::getpid()) + ".txt";
  { std::ofstream(path) << text; }
  std::string output;
  FILE* p = ::popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return "cannot run promtool";
  }
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::remove(path.c_str());
  return output;
}

TEST(Metrics, ValuesMoveWithTrafficAndPromtoolAcceptsThem) {
  Sim a("a");
  Sim b("b");
  Gateway gw({{"a", a.address()}, {"b", b.address()}}, "limits:\n  max_inflight: 64\n");
  auto stub = make_stub(gw.port());
  constexpr int kRequests = 20;
  double request_bytes = 0;
  double response_bytes = 0;
  for (int i = 0; i < kRequests; ++i) {
    const inference::ModelInferRequest req = identity_request(1000, static_cast<std::uint32_t>(i));
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 10s);
    inference::ModelInferResponse r;
    ASSERT_TRUE(stub->ModelInfer(&c, req, &r).ok());
    request_bytes += static_cast<double>(req.ByteSizeLong() + 5);  // + the gRPC prefix
    response_bytes += static_cast<double>(r.ByteSizeLong() + 5);
  }
  // A request the gateway answers itself is counted once, under its own code.
  {
    grpc::ClientContext c;
    inference::ModelInferResponse r;
    EXPECT_EQ(stub->ModelInfer(&c, identity_request(64, 1, "no-such-model"), &r).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  const std::string text = gw.metrics_text();
  EXPECT_EQ(metric_value(text, "infergate_requests_total{code=\"OK\",method=\"ModelInfer\"}"),
            kRequests);
  EXPECT_EQ(
      metric_value(text, "infergate_requests_total{code=\"NOT_FOUND\",method=\"ModelInfer\"}"), 1);
  auto per_backend = [&](const std::string& name, const std::string& more_labels = "") {
    double sum = 0;
    for (const char* backend : {"a", "b"}) {
      sum += std::max(
          0.0, metric_value(text, name + "{backend=\"" + backend + "\"" + more_labels + "}"));
    }
    return sum;
  };
  EXPECT_EQ(per_backend("infergate_backend_requests_total", ",code=\"OK\""), kRequests);
  EXPECT_EQ(per_backend("infergate_backend_request_bytes_total"), request_bytes);
  EXPECT_EQ(per_backend("infergate_backend_response_bytes_total"), response_bytes);
  EXPECT_EQ(per_backend("infergate_backend_request_duration_seconds_count"), kRequests);
  EXPECT_EQ(
      metric_value(text, "infergate_model_request_duration_seconds_count{model=\"identity\"}"),
      kRequests);
  // The unknown model is not a label of its own.
  EXPECT_EQ(metric_value(text, "infergate_model_request_duration_seconds_count{model=\"other\"}"),
            1);
  EXPECT_EQ(text.find("no-such-model"), std::string::npos);
  EXPECT_EQ(metric_value(text, "infergate_gateway_overhead_seconds_count"), kRequests);
  EXPECT_EQ(metric_value(text, "infergate_model_backends{model=\"identity\"}"), 2);
  // Admission comes before routing: the unknown model's request was admitted too.
  EXPECT_EQ(metric_value(text, "infergate_admission_admitted_total"), kRequests + 1);
  EXPECT_TRUE(wait_until(
      [&] {
        const std::string t = gw.metrics_text();
        return metric_value(t, "infergate_backend_outstanding_requests{backend=\"a\"}") == 0 &&
               metric_value(t, "infergate_backend_outstanding_requests{backend=\"b\"}") == 0 &&
               metric_value(t, "infergate_admission_inflight_requests") == 0;
      },
      5s));
  int rc = 0;
  const std::string lint = promtool_check(gw.metrics_text(), &rc);
  EXPECT_EQ(rc, 0) << "promtool check metrics (Debian package prometheus):\n" << lint;
}

// The per-model signals an autoscaler reads: requests waiting in the gateway, requests on
// a backend, and how long each waited. One backend that takes one request at a time and
// three requests at once: one in flight, two waiting, then all three counted as waited.
TEST(Metrics, PerModelWaitingInFlightAndQueueWaitForAnAutoscaler) {
  // Long enough that the three are seen together (one in flight, two waiting) even when
  // a loaded machine starts them slowly.
  Sim sim("sim-a", {"--model", "identity:latency=1500ms"});
  Gateway gw(Gateway::WithKeys{}, {{"sim-a", sim.address(), {"max_inflight: 1"}}}, "");
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&] {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 10s);
      inference::ModelInferResponse r;
      if (make_stub(gw.port(), true)->ModelInfer(&c, identity_request(64, 1), &r).ok()) ++ok;
    });
  }
  EXPECT_TRUE(wait_until(
      [&] {
        return gw.metric("infergate_model_inflight_requests{model=\"identity\"}") == 1 &&
               gw.metric("infergate_model_waiting_requests{model=\"identity\"}") == 2;
      },
      5s))
      << gw.metrics_text();
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_TRUE(wait_until(
      [&] {
        return gw.metric("infergate_model_inflight_requests{model=\"identity\"}") == 0 &&
               gw.metric("infergate_model_waiting_requests{model=\"identity\"}") == 0 &&
               gw.metric("infergate_model_queue_wait_seconds_count{model=\"identity\"}") == 3;
      },
      5s))
      << gw.metrics_text();
  // The last one waited for two others to finish.
  EXPECT_GE(gw.metric("infergate_model_queue_wait_seconds_sum{model=\"identity\"}"), 1.0);
  EXPECT_EQ(gw.metric("infergate_model_backends{model=\"identity\"}"), 1);
}

TEST(Metrics, TheAccessLogHasOneLinePerRequest) {
  Sim a("a");
  Gateway gw({{"a", a.address()}}, "access_log: true\n");
  auto stub = make_stub(gw.port());
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext c;
    c.AddMetadata("infergate-job", "job-42");
    inference::ModelInferResponse r;
    ASSERT_TRUE(
        stub->ModelInfer(&c, identity_request(1000, static_cast<std::uint32_t>(i)), &r).ok());
  }
  auto line = gw.process().wait_for_line(
      "request method=ModelInfer job=\"job-42\" model=\"identity\" backend=a code=OK", 5s);
  ASSERT_TRUE(line) << "no access log line";
  EXPECT_NE(line->find("gateway_ms="), std::string::npos) << *line;
  EXPECT_NE(line->find("backend_ms="), std::string::npos) << *line;
  EXPECT_TRUE(wait_until(
      [&] {
        int n = 0;
        for (const std::string& l : gw.process().lines()) {
          n += l.find(" access request method=ModelInfer") != std::string::npos;
        }
        return n == 3;
      },
      5s));
}

}  // namespace
}  // namespace infergate::testing
