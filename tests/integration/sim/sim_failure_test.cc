// infergate-sim's failure injection: rates within binomial tolerances, reproducible seeds,
// refused requests answered at once, hung requests released by client deadlines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "tests/integration/sim/sim_harness.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kRpc = 10s;

// Sends `n` requests one after another; returns their status codes.
std::vector<grpc::StatusCode> run_sequential(Sim& sim, int n, std::vector<std::string>* messages) {
  std::vector<grpc::StatusCode> codes;
  inference::ModelInferResponse resp;
  for (int i = 0; i < n; ++i) {
    grpc::Status s =
        sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("m", 4), &resp);
    codes.push_back(s.error_code());
    if (messages != nullptr && !s.ok()) messages->push_back(s.error_message());
  }
  return codes;
}

TEST(SimFailures, ErrorRateWithinBinomialTolerance) {
  Sim sim({"--name", "f1", "--model", "m", "--error-rate", "0.3", "--seed", "7"});
  ASSERT_TRUE(sim.ok());
  std::vector<std::string> messages;
  std::vector<grpc::StatusCode> codes = run_sequential(sim, 1000, &messages);
  const auto failed = std::count(codes.begin(), codes.end(), grpc::StatusCode::INTERNAL);
  const auto ok = std::count(codes.begin(), codes.end(), grpc::StatusCode::OK);
  EXPECT_EQ(failed + ok, 1000);
  // 1000 x 0.3: mean 300, standard deviation 14.5; allow five of them.
  EXPECT_GT(failed, 228);
  EXPECT_LT(failed, 372);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages[0], "infergate-sim f1: injected failure");
}

TEST(SimFailures, ErrorCodeAndSeedAreHonoured) {
  Sim a({"--model", "m", "--error-rate", "0.5", "--error-code", "UNAVAILABLE", "--seed", "42"});
  Sim b({"--model", "m", "--error-rate", "0.5", "--error-code", "UNAVAILABLE", "--seed", "42"});
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<grpc::StatusCode> first = run_sequential(a, 60, nullptr);
  std::vector<grpc::StatusCode> second = run_sequential(b, 60, nullptr);
  EXPECT_EQ(first, second);  // the same seed gives the same fates
  EXPECT_GT(std::count(first.begin(), first.end(), grpc::StatusCode::UNAVAILABLE), 0);
  EXPECT_GT(std::count(first.begin(), first.end(), grpc::StatusCode::OK), 0);
}

TEST(SimFailures, RefusedRequestsAreAnsweredBeforeQueueing) {
  Sim sim({"--model", "m:latency=300ms,instances=32", "--refuse-rate", "0.5"});
  ASSERT_TRUE(sim.ok());
  std::mutex mu;
  std::vector<std::pair<grpc::StatusCode, Clock::time_point>> done;
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      inference::ModelInferResponse resp;
      grpc::Status s =
          sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("m", 4), &resp);
      std::lock_guard<std::mutex> lock(mu);
      done.emplace_back(s.error_code(), Clock::now());
    });
  }
  for (std::thread& t : clients) t.join();
  Clock::time_point last_refused = Clock::time_point::min();
  Clock::time_point first_served = Clock::time_point::max();
  int refused = 0;
  for (const auto& [code, at] : done) {
    ASSERT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::UNAVAILABLE);
    if (code == grpc::StatusCode::UNAVAILABLE) {
      ++refused;
      last_refused = std::max(last_refused, at);
    } else {
      first_served = std::min(first_served, at);
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_LT(refused, 16);
  EXPECT_LT(last_refused, first_served);  // refusals do not wait for the 300 ms execution
}

TEST(SimFailures, HungRequestsEndAtTheClientDeadline) {
  Sim sim({"--model", "m", "--hang-rate", "0.5", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(sim.ok());
  int hung = 0;
  int ok = 0;
  inference::ModelInferResponse resp;
  for (int i = 0; i < 12; ++i) {
    grpc::Status s =
        sim.stub().ModelInfer(context_with_deadline(200ms).get(), fp32_request("m", 4), &resp);
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) ++hung;
    if (s.ok()) ++ok;
  }
  EXPECT_GT(hung, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(hung + ok, 12);
  // Nothing leaks: every hung request left the server, counted as canceled.
  EXPECT_TRUE(wait_until(
      [&] { return scrape(sim.metrics_port(), "infergate_sim_inflight_requests") == 0; }, 10s));
  EXPECT_TRUE(wait_until(
      [&] {
        return scrape(
                   sim.metrics_port(),
                   "nv_inference_request_failure{model=\"m\",reason=\"CANCELED\",version=\"1\"}") ==
               hung;
      },
      10s));
  inference::ServerLiveResponse live;
  EXPECT_TRUE(sim.stub().ServerLive(context_with_deadline(kRpc).get(), {}, &live).ok());
}

TEST(SimFailures, HangHoldsEveryRpc) {
  Sim sim({"--hang"});
  ASSERT_TRUE(sim.ok());
  inference::ServerLiveResponse live;
  EXPECT_EQ(sim.stub().ServerLive(context_with_deadline(200ms).get(), {}, &live).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  inference::ModelInferResponse resp;
  EXPECT_EQ(sim.stub()
                .ModelInfer(context_with_deadline(200ms).get(), fp32_request("identity", 4), &resp)
                .error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  auto ctx = context_with_deadline(200ms);
  auto stream = sim.stub().ModelStreamInfer(ctx.get());
  stream->Write(fp32_request("identity", 4));
  inference::ModelStreamInferResponse out;
  EXPECT_FALSE(stream->Read(&out));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace infergate::testing
