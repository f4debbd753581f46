// Scale from zero (routing.wait_for_backend): a request for a model no backend serves
// yet waits, counted where an autoscaler sees it, and is served once a backend joins;
// it gives up at limits.queue_timeout or its own deadline. The "autoscaler" here is the
// test starting a sim on the address the config names.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/fake_http_server.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

const char* kFastHealth =
    "health:\n  interval: 100ms\n  timeout: 100ms\n  unhealthy_threshold: 1\n"
    "  healthy_threshold: 1\n  inventory_interval: 1s\n  slow_start: 0s\n";

struct Outcome {
  grpc::Status status;
  std::string served_by;
  std::chrono::milliseconds took{0};
};

std::future<Outcome> infer_async(int port, std::chrono::milliseconds deadline,
                                 const std::string& model = "identity") {
  return std::async(std::launch::async, [port, deadline, model] {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + deadline);
    inference::ModelInferResponse r;
    const auto start = std::chrono::steady_clock::now();
    Outcome o;
    o.status = make_stub(port, /*own_connection=*/true)
                   ->ModelInfer(&c, identity_request(256, 5, model), &r);
    o.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (o.status.ok()) o.served_by = served_by(r);
    return o;
  });
}

std::string waiting(const std::string& model) {
  return "infergate_model_waiting_requests{model=\"" + model + "\"}";
}

TEST(ScaleFromZero, ARequestWaitsForTheFirstBackendAndIsServedWhenItJoins) {
  const int port = closed_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  Gateway gw({{"sim-a", address}},
             std::string(kFastHealth) +
                 "routing:\n  wait_for_backend: true\n  models: [identity]\n"
                 "limits:\n  queue_timeout: 20s\n",
             2, /*wait_healthy=*/false);
  // Listed models are exported before any backend serves them: what KEDA scales from.
  ASSERT_TRUE(wait_until([&] { return gw.metric(waiting("identity")) == 0; }, 5s));
  EXPECT_EQ(gw.metric("infergate_model_backends{model=\"identity\"}"), 0);

  std::future<Outcome> first = infer_async(gw.port(), 15s);
  std::future<Outcome> second = infer_async(gw.port(), 15s);
  EXPECT_TRUE(wait_until([&] { return gw.metric(waiting("identity")) == 2; }, 5s))
      << gw.metrics_text();
  EXPECT_EQ(first.wait_for(300ms), std::future_status::timeout);  // still waiting

  Sim a("sim-a", {"--listen", address});  // the autoscaler's new replica
  const Outcome one = first.get();
  const Outcome two = second.get();
  EXPECT_TRUE(one.status.ok()) << one.status.error_message();
  EXPECT_TRUE(two.status.ok()) << two.status.error_message();
  EXPECT_EQ(one.served_by, "sim-a");
  EXPECT_EQ(gw.metric(waiting("identity")), 0);
  // The wait is the request's queue time, as the autoscaler's latency signal sees it.
  EXPECT_GE(gw.metric("infergate_model_queue_wait_seconds_sum{model=\"identity\"}"), 0.3);
}

TEST(ScaleFromZero, AStreamsMessageWaitsAndTheStreamGoesOnWhenABackendJoins) {
  const int port = closed_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  Gateway gw(
      {{"sim-a", address}},
      std::string(kFastHealth) + "routing:\n  wait_for_backend: true\n  models: [identity]\n", 2,
      /*wait_healthy=*/false);
  auto stub = make_stub(gw.port());
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 15s);
  auto stream = stub->ModelStreamInfer(&c);
  inference::ModelInferRequest first = identity_request(256, 1);
  first.set_id("first");
  ASSERT_TRUE(stream->Write(first));
  ASSERT_TRUE(wait_until([&] { return gw.metric(waiting("identity")) == 1; }, 5s));
  Sim a("sim-a", {"--listen", address});
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.error_message(), "");
  EXPECT_EQ(r.infer_response().id(), "first");
  inference::ModelInferRequest second = identity_request(256, 2);
  second.set_id("second");
  ASSERT_TRUE(stream->Write(second));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.infer_response().id(), "second");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ScaleFromZero, WaitersForAColdModelHoldNoAdmissionSlot) {
  Sim warm("warm");
  Gateway gw({{"warm", warm.address()}},
             std::string(kFastHealth) +
                 "routing:\n  wait_for_backend: true\n  models: [cold]\n"
                 "limits:\n  max_inflight: 1\n  queue_timeout: 20s\n");
  std::future<Outcome> a = infer_async(gw.port(), 3s, "cold");
  std::future<Outcome> b = infer_async(gw.port(), 3s, "cold");
  ASSERT_TRUE(wait_until([&] { return gw.metric(waiting("cold")) == 2; }, 5s));
  // With max_inflight 1 held by a waiter, this one would queue for 20 s; it goes now.
  const Outcome served = infer_async(gw.port(), 2s, "identity").get();
  EXPECT_TRUE(served.status.ok()) << served.status.error_message();
  EXPECT_EQ(gw.metric("infergate_admission_inflight_requests"), 0);
  EXPECT_EQ(a.wait_for(0s), std::future_status::timeout);
  (void)b;
}

TEST(ScaleFromZero, AWaitEndsAtQueueTimeoutWithTheUsualAnswer) {
  const int port = closed_port();
  Gateway gw({{"sim-a", "127.0.0.1:" + std::to_string(port)}},
             std::string(kFastHealth) +
                 "routing:\n  wait_for_backend: true\n"
                 "limits:\n  queue_timeout: 600ms\n",
             2, /*wait_healthy=*/false);
  const Outcome o = infer_async(gw.port(), 10s, "nowhere").get();
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(o.status.error_message(),
            "infergate: no backend serves model 'nowhere' (waited limits.queue_timeout 600ms for "
            "one, routing.wait_for_backend)");
  EXPECT_GE(o.took, 550ms);
  EXPECT_LT(o.took, 5s);
  EXPECT_EQ(gw.metric("infergate_stream_timeouts_total{reason=\"backend_wait\"}"), 1);
}

TEST(ScaleFromZero, AWaitEndsAtTheRequestsDeadline) {
  const int port = closed_port();
  Gateway gw({{"sim-a", "127.0.0.1:" + std::to_string(port)}},
             std::string(kFastHealth) + "routing:\n  wait_for_backend: true\n", 2,
             /*wait_healthy=*/false);
  const Outcome o = infer_async(gw.port(), 700ms).get();
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(o.took, 5s);
}

TEST(ScaleFromZero, OffByDefaultARequestForAnUnservedModelFailsAtOnce) {
  const int port = closed_port();
  Gateway gw({{"sim-a", "127.0.0.1:" + std::to_string(port)}}, kFastHealth, 2,
             /*wait_healthy=*/false);
  const Outcome o = infer_async(gw.port(), 10s).get();
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(o.status.error_message(), "infergate: no backend serves model 'identity'");
  EXPECT_LT(o.took, 2s);
}

}  // namespace
}  // namespace infergate::testing
