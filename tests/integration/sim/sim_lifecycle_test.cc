// infergate-sim as a process: readiness flags, command-line errors, signals, /metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/sim/sim_harness.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr auto kRpc = 10s;

TEST(SimLifecycle, NotReadyServerAndModels) {
  Sim sim({"--not-ready", "--model", "m"});
  ASSERT_TRUE(sim.ok());
  inference::ServerLiveResponse live;
  ASSERT_TRUE(sim.stub().ServerLive(context_with_deadline(kRpc).get(), {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(sim.stub().ServerReady(context_with_deadline(kRpc).get(), {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ModelReadyRequest mreq;
  mreq.set_name("m");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(sim.stub().ModelReady(context_with_deadline(kRpc).get(), mreq, &mready).ok());
  EXPECT_FALSE(mready.ready());
  inference::ModelInferResponse resp;
  EXPECT_EQ(sim.stub()
                .ModelInfer(context_with_deadline(kRpc).get(), fp32_request("m", 2), &resp)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto health = grpc::health::v1::Health::NewStub(sim.channel());
  grpc::health::v1::HealthCheckResponse check;
  ASSERT_TRUE(health->Check(context_with_deadline(kRpc).get(), {}, &check).ok());
  EXPECT_EQ(check.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

TEST(SimLifecycle, BadCommandLinesExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"--listen"}, "--listen needs a value"},
      {{"--listen", "nowhere"}, "needs a port"},
      {{"--model", "m:kind=tensor"}, "bad value 'tensor' for kind"},
      {{"--model", "m:latency=5"}, "needs a unit"},
      {{"--model", "m:instances=0"}, "instances"},
      {{"--model", "m:versions=1|1"}, "versions"},
      {{"--model", "m:colour=red"}, "unknown key 'colour'"},
      {{"--model", "m", "--model", "m"}, "given twice"},
      {{"--error-rate", "1.5"}, "--error-rate"},
      {{"--error-rate", "0.6", "--hang-rate", "0.6"}, "add up to at most 1"},
      {{"--error-code", "TEAPOT"}, "--error-code"},
      {{"--seed", "-1"}, "--seed"},
      {{"stray"}, "unknown option 'stray'"},
  };
  for (const auto& [args, message] : cases) {
    Process p(INFERGATE_SIM_PATH, args, false);
    EXPECT_EQ(p.wait_exit(10s), 2) << args[0];
    EXPECT_TRUE(p.wait_for_line(message, 2s)) << "expected '" << message << "' for " << args[0];
  }
  Process help(INFERGATE_SIM_PATH, {"--help"}, false);
  EXPECT_EQ(help.wait_exit(10s), 0);
  EXPECT_TRUE(help.wait_for_line("--metrics-listen HOST:PORT", 2s));
}

TEST(SimLifecycle, SigtermEndsHungCallsAndExitsZero) {
  Sim sim({"--name", "t", "--hang-rate", "1", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  grpc::Status hung_status;
  std::thread client([&] {
    inference::ModelInferResponse resp;
    hung_status =
        sim.stub().ModelInfer(context_with_deadline(60s).get(), fp32_request("identity", 4), &resp);
  });
  EXPECT_TRUE(wait_until(
      [&] { return scrape(sim.metrics_port(), "infergate_sim_inflight_requests") == 1; }, 10s));
  sim.process().signal(SIGTERM);
  EXPECT_EQ(sim.process().wait_exit(15s), 0);
  client.join();
  EXPECT_EQ(hung_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(hung_status.error_message(), HasSubstr("infergate-sim t: shutting down"));
}

TEST(SimLifecycle, SigtermLetsBookedRequestsFinish) {
  Sim sim({"--model", "m:latency=500ms", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  grpc::Status status;
  inference::ModelInferResponse resp;
  std::thread client([&] {
    status = sim.stub().ModelInfer(context_with_deadline(60s).get(), fp32_request("m", 4), &resp);
  });
  EXPECT_TRUE(wait_until(
      [&] { return scrape(sim.metrics_port(), "infergate_sim_inflight_requests") == 1; }, 10s));
  sim.process().signal(SIGTERM);
  EXPECT_EQ(sim.process().wait_exit(15s), 0);
  client.join();
  EXPECT_TRUE(status.ok()) << status.error_message();  // graceful: the execution completed
  EXPECT_EQ(resp.raw_output_contents_size(), 1);
}

TEST(SimLifecycle, SigintExitsZero) {
  Sim sim({});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferResponse resp;
  ASSERT_TRUE(sim.stub()
                  .ModelInfer(context_with_deadline(kRpc).get(), fp32_request("identity", 4), &resp)
                  .ok());
  sim.process().signal(SIGINT);
  EXPECT_EQ(sim.process().wait_exit(15s), 0);
}

TEST(SimMetrics, ServesTritonNames) {
  Sim sim({"--name", "m1", "--model", "m:versions=1|2", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  ASSERT_GT(sim.metrics_port(), 0);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(
      sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("m", 4), &resp).ok());
  std::optional<HttpResult> page = http_get(sim.metrics_port(), "/metrics");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  for (const char* name :
       {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
        "nv_inference_exec_count", "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us",
        "nv_inference_pending_request_count", "nv_gpu_utilization", "nv_gpu_memory_total_bytes",
        "nv_gpu_memory_used_bytes", "infergate_sim_inflight_requests",
        "infergate_sim_inflight_max"}) {
    EXPECT_THAT(page->body, HasSubstr(std::string("\n# TYPE ") + name + " ")) << name;
  }
  EXPECT_EQ(metric(page->body, "nv_inference_request_success{model=\"m\",version=\"2\"}"), 1.0);
  EXPECT_EQ(metric(page->body, "nv_inference_request_success{model=\"m\",version=\"1\"}"), 0.0);
  EXPECT_EQ(metric(page->body, "nv_gpu_utilization{gpu_uuid=\"GPU-infergate-sim-m1\"}"), 0.0);
  std::optional<HttpResult> missing = http_get(sim.metrics_port(), "/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(SimMetrics, InflightAndPendingMove) {
  Sim sim({"--model", "slow:latency=2s,instances=1", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  constexpr int kCalls = 3;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int i = 0; i < kCalls; ++i) contexts.push_back(context_with_deadline(30s));
  std::vector<std::thread> clients;
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back([&, i] {
      inference::ModelInferResponse resp;
      sim.stub().ModelInfer(contexts[i].get(), fp32_request("slow", 4), &resp);
    });
  }
  const int port = sim.metrics_port();
  // Counted in flight on arrival, pending once booked behind the executing one.
  EXPECT_TRUE(wait_until(
      [&] {
        return scrape(port, "infergate_sim_inflight_requests") == kCalls &&
               scrape(port, "nv_inference_pending_request_count{model=\"slow\",version=\"1\"}") ==
                   kCalls - 1;
      },
      10s));
  EXPECT_GE(scrape(port, "infergate_sim_inflight_max").value_or(0), kCalls);
  EXPECT_EQ(scrape(port, "nv_gpu_utilization{gpu_uuid=\"GPU-infergate-sim-sim\"}"), 1.0);
  for (auto& ctx : contexts) ctx->TryCancel();
  for (std::thread& t : clients) t.join();
  EXPECT_TRUE(
      wait_until([&] { return scrape(port, "infergate_sim_inflight_requests") == 0; }, 10s));
  EXPECT_GE(scrape(port, "infergate_sim_inflight_max").value_or(0), kCalls);
}

}  // namespace
}  // namespace infergate::testing
