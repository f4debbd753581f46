// infergate-sim's inference: identity echo, validation, large tensors, streams, and a
// latency model that saturates like a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/integration/sim/sim_harness.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kRpc = 10s;

TEST(SimInfer, IdentityEchoesEveryInput) {
  Sim sim({"--name", "gpu-a", "--model", "m:versions=1|2"});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferRequest req = fp32_request("m", 6);
  req.set_id("req-1");
  auto* second = req.add_inputs();
  second->set_name("weights");
  second->set_datatype("INT64");
  second->add_shape(2);
  req.add_raw_input_contents(std::string(16, '\x07'));
  inference::ModelInferResponse resp;
  ASSERT_TRUE(sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp).ok());
  EXPECT_EQ(resp.model_name(), "m");
  EXPECT_EQ(resp.model_version(), "2");  // the highest when none is asked for
  EXPECT_EQ(resp.id(), "req-1");
  EXPECT_EQ(string_param(resp, "served_by"), "gpu-a");
  ASSERT_EQ(resp.outputs_size(), 2);
  EXPECT_EQ(resp.outputs(0).name(), "OUTPUT0");
  EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
  EXPECT_THAT(resp.outputs(0).shape(), ElementsAre(1, 6));
  EXPECT_EQ(resp.outputs(1).name(), "OUTPUT_weights");
  ASSERT_EQ(resp.raw_output_contents_size(), 2);
  EXPECT_EQ(resp.raw_output_contents(0), req.raw_input_contents(0));
  EXPECT_EQ(resp.raw_output_contents(1), req.raw_input_contents(1));

  // Only the requested outputs, in the requested order; a version on request.
  req.add_outputs()->set_name("OUTPUT_weights");
  req.set_model_version("1");
  ASSERT_TRUE(sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp).ok());
  EXPECT_EQ(resp.model_version(), "1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "OUTPUT_weights");
  EXPECT_EQ(resp.raw_output_contents(0), req.raw_input_contents(1));

  req.add_outputs()->set_name("OUTPUT9");
  grpc::Status s = sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("OUTPUT9"));
}

TEST(SimInfer, IdentityEchoesTypedContents) {
  Sim sim({});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  auto* in = req.add_inputs();
  in->set_name("INPUT1");
  in->set_datatype("INT32");
  in->add_shape(3);
  for (int v : {5, -6, 7}) in->mutable_contents()->add_int_contents(v);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp).ok());
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "OUTPUT1");
  EXPECT_THAT(resp.outputs(0).contents().int_contents(), ElementsAre(5, -6, 7));
  EXPECT_EQ(resp.raw_output_contents_size(), 0);
}

TEST(SimInfer, InvalidRequestsAreRejectedClearly) {
  Sim sim({"--model", "m", "--model", "cold:ready=false"});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferResponse resp;
  auto infer = [&](const inference::ModelInferRequest& req) {
    return sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp);
  };
  grpc::Status s = infer(raw_request("m", "FP32", {2, 2}, std::string(12, '\0')));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("12 bytes"));
  EXPECT_THAT(s.error_message(), HasSubstr("needs 16 bytes"));

  inference::ModelInferRequest two_inputs = fp32_request("m", 2);
  *two_inputs.add_inputs() = two_inputs.inputs(0);
  two_inputs.mutable_inputs(1)->set_name("INPUT1");
  EXPECT_EQ(infer(two_inputs).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // 1 raw for 2

  EXPECT_EQ(infer(raw_request("m", "FP31", {1}, std::string(4, '\0'))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer(raw_request("m", "FP32", {-1}, "")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer(raw_request("m", "BYTES", {1}, std::string("\x05\0\0\0ab", 6))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(infer(raw_request("m", "BYTES", {2}, std::string("\x01\0\0\0a\x00\0\0\0", 9))).ok());
  EXPECT_EQ(infer(fp32_request("nope", 2)).error_code(), grpc::StatusCode::NOT_FOUND);
  inference::ModelInferRequest bad_version = fp32_request("m", 2);
  bad_version.set_model_version("9");
  EXPECT_EQ(infer(bad_version).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(infer(fp32_request("cold", 2)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(SimInfer, SixtyFourMegabyteTensorRoundTrips) {
  Sim sim({"--model", "big"});
  ASSERT_TRUE(sim.ok());
  constexpr size_t kBytes = 64u << 20;
  std::string data(kBytes, '\0');
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < kBytes; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(data.data() + i, &x, 8);
  }
  inference::ModelInferRequest req =
      raw_request("big", "UINT8", {static_cast<std::int64_t>(kBytes)}, data);
  inference::ModelInferResponse resp;
  grpc::Status s = sim.stub().ModelInfer(context_with_deadline(60s).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_TRUE(resp.raw_output_contents(0) == data);  // not EXPECT_EQ: no 64 MB diff on failure
}

using StreamRw =
    grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>;

TEST(SimInfer, ThousandStreamMessagesComeBackInOrder) {
  // Requests of varying size on 4 instances with a per-MiB cost: later small requests end
  // before earlier big ones, yet responses must keep request order.
  Sim sim({"--name", "s1", "--model", "m:instances=4,latency=50us,per_mb=40ms"});
  ASSERT_TRUE(sim.ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  std::unique_ptr<StreamRw> stream = sim.stub().ModelStreamInfer(&ctx);
  constexpr int kMessages = 1000;
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) {
      inference::ModelInferRequest req = fp32_request("m", (i % 7) * 4000 + 1);
      req.set_id(std::to_string(i));
      if (!stream->Write(req)) return;
    }
    stream->WritesDone();
  });
  inference::ModelStreamInferResponse resp;
  int received = 0;
  int out_of_order = 0;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.error_message(), "");
    if (resp.infer_response().id() != std::to_string(received)) ++out_of_order;
    EXPECT_EQ(string_param(resp.infer_response(), "served_by"), "s1");
    ++received;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(received, kMessages);
  EXPECT_EQ(out_of_order, 0);
}

TEST(SimInfer, StreamErrorsDoNotEndTheStream) {
  Sim sim({"--model", "m:latency=1ms"});
  ASSERT_TRUE(sim.ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  std::unique_ptr<StreamRw> stream = sim.stub().ModelStreamInfer(&ctx);
  for (const char* model : {"m", "nope", "m"}) {
    inference::ModelInferRequest req = fp32_request(model, 4);
    req.set_id(model);
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  std::vector<std::string> seen;
  inference::ModelStreamInferResponse resp;
  while (stream->Read(&resp)) {
    seen.push_back(resp.infer_response().id() + ":" +
                   (resp.error_message().empty() ? "ok" : "err"));
    if (!resp.error_message().empty()) {
      EXPECT_THAT(resp.error_message(), HasSubstr("nope"));
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_THAT(seen, ElementsAre("m:ok", "nope:err", "m:ok"));
}

TEST(SimInfer, CancelledStreamReleasesItsRequests) {
  Sim sim({"--model", "m", "--hang-rate", "1", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  ASSERT_GT(sim.metrics_port(), 0);
  {
    grpc::ClientContext ctx;
    std::unique_ptr<StreamRw> stream = sim.stub().ModelStreamInfer(&ctx);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(stream->Write(fp32_request("m", 4)));
    EXPECT_TRUE(wait_until(
        [&] { return scrape(sim.metrics_port(), "infergate_sim_inflight_requests") == 3; }, 10s));
    ctx.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(wait_until(
      [&] { return scrape(sim.metrics_port(), "infergate_sim_inflight_requests") == 0; }, 10s));
  inference::ServerLiveResponse live;
  EXPECT_TRUE(sim.stub().ServerLive(context_with_deadline(kRpc).get(), {}, &live).ok());
}

TEST(SimInfer, LatencyModelSaturatesLikeAGpu) {
  // 2 instances x 20 ms: at most 100 requests/s however many clients; 8 clients without
  // queueing would reach 400/s. Tolerances are wide: a timing is never a tight assertion.
  Sim sim({"--model", "gpu:latency=20ms,instances=2"});
  ASSERT_TRUE(sim.ok());
  constexpr int kClients = 8;
  constexpr int kPerClient = 10;
  std::atomic<int> ok{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      inference::ModelInferResponse resp;
      for (int i = 0; i < kPerClient; ++i) {
        if (sim.stub()
                .ModelInfer(context_with_deadline(kRpc).get(), fp32_request("gpu", 4), &resp)
                .ok()) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(ok.load(), kClients * kPerClient);
  const double rate = ok.load() / seconds;
  EXPECT_LT(rate, 140.0) << "no queueing: " << rate << "/s";
  EXPECT_GT(rate, 40.0) << "far below the plateau: " << rate << "/s";

  inference::ModelStatisticsRequest req;
  req.set_name("gpu");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(sim.stub().ModelStatistics(context_with_deadline(kRpc).get(), req, &stats).ok());
  const auto& s = stats.model_stats(0).inference_stats();
  // 80 requests x 20 ms of compute, and most of them waited in the queue.
  EXPECT_NEAR(static_cast<double>(s.compute_infer().ns()), 80 * 20e6, 80 * 1e6);
  EXPECT_GT(s.queue().ns(), 80 * 10'000'000ull);
}

}  // namespace
}  // namespace infergate::testing
