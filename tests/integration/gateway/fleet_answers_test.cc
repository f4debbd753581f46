// The answers the gateway gives for the whole fleet, and fleet changes at run time:
// readiness, the repository index, statistics, repository control, the gRPC health
// service, and a backend removed by reloading the config.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

const char* kFastHealth =
    "health:\n  interval: 200ms\n  timeout: 150ms\n  inventory_interval: 1s\n";

std::set<std::string> index_names(inference::GRPCInferenceService::Stub& stub, bool ready_only) {
  grpc::ClientContext c;
  inference::RepositoryIndexRequest q;
  q.set_ready(ready_only);
  inference::RepositoryIndexResponse r;
  EXPECT_TRUE(stub.RepositoryIndex(&c, q, &r).ok());
  std::set<std::string> names;
  for (const auto& m : r.models()) names.insert(m.name() + ":" + m.state());
  return names;
}

bool model_ready(inference::GRPCInferenceService::Stub& stub, const std::string& model) {
  grpc::ClientContext c;
  inference::ModelReadyRequest q;
  q.set_name(model);
  inference::ModelReadyResponse r;
  return stub.ModelReady(&c, q, &r).ok() && r.ready();
}

int health_status(int port) {
  auto stub = grpc::health::v1::Health::NewStub(make_channel(port));
  grpc::ClientContext c;
  grpc::health::v1::HealthCheckResponse r;
  grpc::Status s = stub->Check(&c, {}, &r);
  return s.ok() ? r.status() : -1;
}

TEST(FleetAnswers, ReadinessIndexMetadataAndHealthAreFleetWide) {
  Sim a("sim-a", {"--model", "resnet", "--model", "bert:ready=false"});
  Sim b("sim-b", {"--model", "deepmet"});
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}}, kFastHealth);
  auto stub = make_stub(gw.port());
  EXPECT_EQ(index_names(*stub, false),
            (std::set<std::string>{"resnet:READY", "bert:UNAVAILABLE", "deepmet:READY"}));
  EXPECT_EQ(index_names(*stub, true), (std::set<std::string>{"resnet:READY", "deepmet:READY"}));
  EXPECT_TRUE(model_ready(*stub, "resnet"));
  EXPECT_TRUE(model_ready(*stub, "deepmet"));
  EXPECT_FALSE(model_ready(*stub, "bert"));
  grpc::ClientContext c;
  inference::ServerMetadataResponse meta;
  ASSERT_TRUE(stub->ServerMetadata(&c, {}, &meta).ok());
  EXPECT_EQ(meta.name(), "triton");
  EXPECT_GT(meta.extensions_size(), 0);
  EXPECT_EQ(health_status(gw.port()), grpc::health::v1::HealthCheckResponse::SERVING);

  // One backend gone: its models leave the index, readiness follows.
  b.process().signal(SIGKILL);
  EXPECT_TRUE(wait_until([&] { return !model_ready(*stub, "deepmet"); }, 5s));
  EXPECT_EQ(index_names(*stub, true), (std::set<std::string>{"resnet:READY"}));
  grpc::ClientContext c2;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  // All gone: not ready, NOT_SERVING, but still live.
  a.process().signal(SIGKILL);
  EXPECT_TRUE(wait_until(
      [&] {
        return health_status(gw.port()) == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
      },
      5s));
  grpc::ClientContext c3;
  ASSERT_TRUE(stub->ServerReady(&c3, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  grpc::ClientContext c4;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub->ServerLive(&c4, {}, &live).ok());
  EXPECT_TRUE(live.live());
}

TEST(FleetAnswers, ModelStatisticsAreMergedAcrossBackends) {
  Sim a("sim-a");
  Sim b("sim-b");
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}});
  auto stub = make_stub(gw.port());
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext c;
    inference::ModelInferResponse r;
    ASSERT_TRUE(stub->ModelInfer(&c, identity_request(64, i), &r).ok());
  }
  grpc::ClientContext c;
  inference::ModelStatisticsRequest q;
  q.set_name("identity");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(stub->ModelStatistics(&c, q, &stats).ok());
  ASSERT_EQ(stats.model_stats_size(), 1);
  EXPECT_EQ(stats.model_stats(0).inference_stats().success().count(), 10u);
  EXPECT_EQ(stats.model_stats(0).inference_count(), 10u);
  grpc::ClientContext c2;
  q.set_name("missing");
  EXPECT_EQ(stub->ModelStatistics(&c2, q, &stats).error_code(), grpc::StatusCode::NOT_FOUND);
}

// As Triton refuses them when its model control is not explicit: UNAVAILABLE.
TEST(FleetAnswers, RepositoryControlIsRefusedUnlessAllowed) {
  Sim a("sim-a");
  Gateway gw({{"sim-a", a.address()}});
  auto stub = make_stub(gw.port());
  grpc::ClientContext c;
  inference::RepositoryModelUnloadRequest q;
  q.set_model_name("identity");
  inference::RepositoryModelUnloadResponse r;
  grpc::Status s = stub->RepositoryModelUnload(&c, q, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(),
            "infergate: explicit model load / unload is not allowed through this gateway "
            "(allow_repository_control: false)");
  EXPECT_TRUE(model_ready(*stub, "identity"));
}

TEST(FleetAnswers, RepositoryControlFansOutToEveryBackend) {
  Sim a("sim-a");
  Sim b("sim-b");
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}},
             std::string(kFastHealth) + "allow_repository_control: true\n");
  auto stub = make_stub(gw.port());
  grpc::ClientContext c;
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("identity");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(stub->RepositoryModelUnload(&c, unload, &unloaded).ok());
  for (Sim* sim : {&a, &b}) EXPECT_FALSE(model_ready(*make_stub(sim->port()), "identity"));
  EXPECT_TRUE(wait_until([&] { return !model_ready(*stub, "identity"); }, 5s));
  grpc::ClientContext c2;
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("identity");
  inference::RepositoryModelLoadResponse loaded;
  ASSERT_TRUE(stub->RepositoryModelLoad(&c2, load, &loaded).ok());
  EXPECT_TRUE(wait_until([&] { return model_ready(*stub, "identity"); }, 5s));
  // A model no backend has: the backends' error, naming them.
  grpc::ClientContext c3;
  load.set_model_name("nope");
  grpc::Status s = stub->RepositoryModelLoad(&c3, load, &loaded);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("sim-a"), std::string::npos) << s.error_message();
}

// Regression: ModelReady and the next inference gave the old answer right after a load or
// unload returned, until the next inventory refresh.
TEST(FleetAnswers, ReadinessHasSettledWhenALoadOrUnloadReturns) {
  Sim a("sim-a");
  Sim b("sim-b");
  // Slow probes: only the fan-out's own settling can make the answers agree at once.
  Gateway gw(
      {{"sim-a", a.address()}, {"sim-b", b.address()}},
      "allow_repository_control: true\nhealth:\n  interval: 30s\n  inventory_interval: 60s\n");
  auto stub = make_stub(gw.port());
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext c;
    inference::RepositoryModelUnloadRequest unload;
    unload.set_model_name("identity");
    inference::RepositoryModelUnloadResponse unloaded;
    ASSERT_TRUE(stub->RepositoryModelUnload(&c, unload, &unloaded).ok());
    EXPECT_FALSE(model_ready(*stub, "identity")) << "round " << round;
    EXPECT_FALSE(model_ready(*make_stub(gw.port(), /*own_connection=*/true), "identity"));
    grpc::ClientContext c2;
    inference::RepositoryModelLoadRequest load;
    load.set_model_name("identity");
    inference::RepositoryModelLoadResponse loaded;
    ASSERT_TRUE(stub->RepositoryModelLoad(&c2, load, &loaded).ok());
    EXPECT_TRUE(model_ready(*stub, "identity")) << "round " << round;
    EXPECT_TRUE(model_ready(*make_stub(gw.port(), /*own_connection=*/true), "identity"));
    grpc::ClientContext c3;
    inference::ModelInferResponse r;
    const grpc::Status s = stub->ModelInfer(&c3, identity_request(64), &r);
    EXPECT_TRUE(s.ok()) << "round " << round << ": " << s.error_message();
  }
}

TEST(FleetAnswers, ReloadDrainsARemovedBackend) {
  Sim a("sim-a", {"--model", "identity:latency=800ms,instances=8"});
  Sim b("sim-b", {"--model", "identity:latency=800ms,instances=8"});
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}}, kFastHealth);
  auto stub = make_stub(gw.port());
  // Requests in flight on both backends.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext c;
      inference::ModelInferResponse r;
      ok += stub->ModelInfer(&c, identity_request(64, i), &r).ok();
    });
  }
  ASSERT_TRUE(wait_until([&] { return b.metric("infergate_sim_inflight_requests") >= 1; }, 5s));
  {
    std::ofstream out(gw.config_path());
    out << "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\nworkers: 2\n"
        << "backends:\n  - name: sim-a\n    address: \"" << a.address() << "\"\n"
        << kFastHealth;
  }
  gw.process().signal(SIGHUP);
  EXPECT_TRUE(gw.process().wait_for_line("from=healthy to=draining", 5s));
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);  // the draining backend finished what it had
  EXPECT_TRUE(gw.process().wait_for_line("backend_removed backend=sim-b", 5s));
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_healthy_backends") == 1; }, 5s));
  const double before = b.metric("nv_inference_request_success");
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext c;
    inference::ModelInferResponse r;
    ASSERT_TRUE(stub->ModelInfer(&c, identity_request(64, i), &r).ok());
    EXPECT_EQ(served_by(r), "sim-a");
  }
  EXPECT_EQ(b.metric("nv_inference_request_success"), before);
}

TEST(FleetAnswers, AReloadWithErrorsKeepsTheRunningConfig) {
  Sim a("sim-a");
  Gateway gw({{"sim-a", a.address()}});
  { std::ofstream(gw.config_path()) << "backends: []\n"; }
  gw.process().signal(SIGHUP);
  EXPECT_TRUE(gw.process().wait_for_line("reload_rejected", 5s));
  EXPECT_TRUE(gw.process().wait_for_line("at least one backend is required", 1s));
  auto stub = make_stub(gw.port());
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  EXPECT_TRUE(stub->ModelInfer(&c, identity_request(64), &r).ok());
}

}  // namespace
}  // namespace infergate::testing
