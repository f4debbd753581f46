// Deadlines, cancellation, drain and scale: what happens around requests rather than in
// them, with real gRPC clients and infergate-sim backends.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using inference::GRPCInferenceService;

// A unary ModelInfer issued on the callback API; wait() blocks for its status.
class AsyncInfer {
 public:
  AsyncInfer(GRPCInferenceService::Stub& stub, inference::ModelInferRequest request,
             std::chrono::milliseconds deadline = 30000ms)
      : request_(std::move(request)) {
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
    stub.async()->ModelInfer(&context_, &request_, &response_, [this](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(s);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~AsyncInfer() {
    context_.TryCancel();
    wait(60s);
  }
  std::optional<grpc::Status> wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return done_; })) return std::nullopt;
    return status_;
  }
  void cancel() { context_.TryCancel(); }
  const inference::ModelInferRequest& request() const { return request_; }
  const inference::ModelInferResponse& response() const { return response_; }

 private:
  grpc::ClientContext context_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

const char* kInflight = "infergate_sim_inflight_requests";

TEST(Lifecycle, ClientDeadlineReachesTheBackend) {
  Sim sim("sim-a", {"--hang-rate", "1"});
  Gateway gw({{"sim-a", sim.address()}});
  auto stub = make_stub(gw.port());
  AsyncInfer call(*stub, identity_request(64), 300ms);
  auto status = call.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The hung request is released at the backend: the deadline (or the cancellation
  // that follows it) crossed the gateway.
  EXPECT_TRUE(wait_until([&] { return sim.metric(kInflight) == 0; }, 5s));
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_active_streams") == 0; }, 5s));
}

TEST(Lifecycle, CancellationReachesTheBackend) {
  Sim sim("sim-a", {"--hang-rate", "1"});
  Gateway gw({{"sim-a", sim.address()}});
  auto stub = make_stub(gw.port());
  AsyncInfer call(*stub, identity_request(64));
  ASSERT_TRUE(wait_until([&] { return sim.metric(kInflight) == 1; }, 10s));
  call.cancel();
  auto status = call.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(wait_until([&] { return sim.metric(kInflight) == 0; }, 5s));
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_active_streams") == 0; }, 5s));
  // The routing count of outstanding requests is exact: the cancellation released it.
  EXPECT_EQ(gw.metric("infergate_backend_outstanding_requests{backend=\"sim-a\"}"), 0);
}

TEST(Lifecycle, ResetInTheMiddleOfALargeUploadLeavesNothingBehind) {
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}});
  auto stub = make_stub(gw.port());
  for (int i = 0; i < 5; ++i) {
    // Cancel once the gateway has forwarded part of the 64 MiB message, at a different
    // point each time.
    const double before = gw.metric("infergate_request_body_bytes_total");
    AsyncInfer call(*stub, identity_request(64 << 20, static_cast<std::uint32_t>(i)));
    const double cut = before + (1 + 6 * i) * double(1 << 20);
    wait_until([&] { return gw.metric("infergate_request_body_bytes_total") >= cut; }, 10s);
    call.cancel();
    auto status = call.wait(20s);
    ASSERT_TRUE(status);
  }
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_active_streams") == 0; }, 10s));
  EXPECT_TRUE(wait_until([&] { return sim.metric(kInflight) == 0; }, 10s));
  EXPECT_EQ(gw.metric("infergate_backend_outstanding_requests{backend=\"sim-a\"}"), 0);
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  EXPECT_TRUE(stub->ModelInfer(&c, identity_request(1024), &r).ok());
}

TEST(Lifecycle, SigtermDrainsInFlightRequestsThenExitsZero) {
  // Each request takes long enough that all eight are in flight at once even when a
  // loaded machine starts them slowly.
  Sim sim("sim-a", {"--model", "identity:latency=2s,instances=16"});
  Gateway gw({{"sim-a", sim.address()}}, "drain_timeout: 20s\n");
  auto stub = make_stub(gw.port());
  std::vector<std::unique_ptr<AsyncInfer>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::make_unique<AsyncInfer>(*stub, identity_request(4096, i)));
  }
  ASSERT_TRUE(wait_until([&] { return sim.metric(kInflight) == 8; }, 10s));
  gw.process().signal(SIGTERM);
  for (auto& call : calls) {
    auto status = call->wait(20s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->ok()) << status->error_message();
    EXPECT_EQ(call->response().raw_output_contents(0), call->request().raw_input_contents(0));
  }
  EXPECT_EQ(gw.process().wait_exit(10s), 0);
  EXPECT_TRUE(gw.process().wait_for_line("drained", 1s));
  // Nothing listens any more.
  auto late = make_stub(gw.port(), /*own_connection=*/true);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 2s);
  inference::ServerLiveResponse live;
  EXPECT_FALSE(late->ServerLive(&c, {}, &live).ok());
}

TEST(Lifecycle, UpstreamPoolOpensConnectionsPastTheStreamLimit) {
  Sim sim("sim-a", {"--model", "identity:latency=1500ms,instances=16"});  // all 8 at once
  Gateway gw({{"sim-a", sim.address()}}, "upstream:\n  streams_per_connection: 2\n",
             /*workers=*/1);
  auto stub = make_stub(gw.port());
  std::vector<std::unique_ptr<AsyncInfer>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::make_unique<AsyncInfer>(*stub, identity_request(256, i)));
  }
  ASSERT_TRUE(wait_until([&] { return sim.metric(kInflight) == 8; }, 10s));
  // Eight concurrent streams at two per connection: four connections to the backend.
  EXPECT_EQ(gw.metric("infergate_backend_connections_total"), 4);
  for (auto& call : calls) {
    auto status = call->wait(10s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->ok()) << status->error_message();
  }
  // Idle connections are reused, not multiplied.
  calls.clear();
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<AsyncInfer>(*stub, identity_request(256, i)));
  }
  for (auto& call : calls) EXPECT_TRUE(call->wait(10s)->ok());
  EXPECT_EQ(gw.metric("infergate_backend_connections_total"), 4);
}

TEST(Lifecycle, TwoHundredConcurrentClientsLoseNothing) {
  Sim sim("sim-a", {"--model", "identity:latency=2ms,instances=64"});
  Gateway gw({{"sim-a", sim.address()}});
  constexpr int kClients = 200;
  constexpr int kRequestsEach = 10;
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::mutex first_error_mu;
  std::string first_error;
  std::vector<std::thread> threads;
  // 20 threads drive 10 clients each, every client on its own connection.
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<GRPCInferenceService::Stub>> stubs;
      for (int c = 0; c < kClients / 20; ++c) stubs.push_back(make_stub(gw.port(), true));
      for (int i = 0; i < kRequestsEach; ++i) {
        std::vector<std::unique_ptr<AsyncInfer>> round;
        for (size_t c = 0; c < stubs.size(); ++c) {
          const auto seed = static_cast<std::uint32_t>(t * 100000 + c * 100 + i);
          round.push_back(std::make_unique<AsyncInfer>(*stubs[c], identity_request(1024, seed)));
        }
        for (auto& call : round) {
          auto status = call->wait(30s);
          if (status && status->ok() &&
              call->response().raw_output_contents(0) == call->request().raw_input_contents(0)) {
            ++ok;
          } else {
            ++wrong;
            std::lock_guard lock(first_error_mu);
            if (first_error.empty()) {
              first_error =
                  !status ? "no answer within 30 s"
                          : std::to_string(status->error_code()) + " " + status->error_message();
            }
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequestsEach) << first_error;
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(gw.metric("infergate_client_connections_total"), kClients);
  EXPECT_EQ(gw.metric("infergate_requests_total{code=\"OK\",method=\"ModelInfer\"}"),
            kClients * kRequestsEach);
}

}  // namespace
}  // namespace infergate::testing
