// Admission control through a real gateway: concurrency caps counted at the sims, the
// job cap with RepositoryIndex refused, the link bandwidth measured on the wire, and a
// storm of cancelled requests that must leave nothing held.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/relay.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using inference::GRPCInferenceService;

struct Tally {
  std::atomic<int> ok{0};
  std::mutex mu;
  std::map<int, int> failures;
  std::string first_error;

  void add(const grpc::Status& s) {
    if (s.ok()) {
      ++ok;
      return;
    }
    std::lock_guard lock(mu);
    ++failures[s.error_code()];
    if (first_error.empty()) first_error = s.error_message();
  }
};

// `threads` callers, each with its own connection, each making `each` ModelInfer calls.
void run_clients(int port, int threads, int each, size_t bytes, Tally& tally,
                 const std::string& job = "") {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto stub = make_stub(port, /*own_connection=*/true);
      for (int i = 0; i < each; ++i) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + 30s);
        if (!job.empty()) c.AddMetadata("infergate-job", job);
        inference::ModelInferResponse r;
        tally.add(stub->ModelInfer(&c, identity_request(bytes, static_cast<std::uint32_t>(t)), &r));
      }
    });
  }
  for (auto& t : pool) t.join();
}

TEST(Admission, GatewayMaxInflightHoldsWhatTheBackendSees) {
  // The sim could run 64 at once; the gateway must never let more than 8 reach it.
  Sim sim("a", {"--model", "identity:instances=64,latency=20ms"});
  Gateway gw({{"a", sim.address()}}, "limits:\n  max_inflight: 8\n");
  Tally tally;
  run_clients(gw.port(), 64, 4, 1024, tally);
  EXPECT_EQ(tally.ok.load(), 256) << tally.first_error;
  const double seen = sim.metric("infergate_sim_inflight_max");
  std::printf("max_inflight 8: the sim saw at most %.0f at once\n", seen);
  EXPECT_LE(seen, 8);
  EXPECT_GE(seen, 4);  // the cap was reached for real, not avoided by a slow client
  EXPECT_GT(gw.metric("infergate_admission_queue_wait_seconds_count"), 0);
  EXPECT_TRUE(
      wait_until([&] { return gw.metric("infergate_admission_inflight_requests") == 0; }, 5s));
  EXPECT_EQ(gw.metric("infergate_admission_queued_requests"), 0);
}

TEST(Admission, PerBackendMaxInflightIsNeverExceeded) {
  Sim a("a", {"--model", "identity:instances=64,latency=20ms"});
  Sim b("b", {"--model", "identity:instances=64,latency=20ms"});
  Gateway gw(Gateway::WithKeys{},
             {{"a", a.address(), {"max_inflight: 3"}}, {"b", b.address(), {"max_inflight: 3"}}},
             "");
  Tally tally;
  run_clients(gw.port(), 32, 5, 1024, tally);
  EXPECT_EQ(tally.ok.load(), 160) << tally.first_error;
  EXPECT_LE(a.metric("infergate_sim_inflight_max"), 3);
  EXPECT_LE(b.metric("infergate_sim_inflight_max"), 3);
  EXPECT_GE(a.metric("infergate_sim_inflight_max") + b.metric("infergate_sim_inflight_max"), 4);
  EXPECT_TRUE(wait_until(
      [&] { return gw.metric("infergate_backend_outstanding_requests{backend=\"a\"}") == 0; }, 5s));
}

// RepositoryIndex as job `job`.
grpc::Status repository_index(GRPCInferenceService::Stub& stub, const std::string& job,
                              std::string* pushback = nullptr) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  c.AddMetadata("infergate-job", job);
  inference::RepositoryIndexRequest req;
  inference::RepositoryIndexResponse resp;
  grpc::Status s = stub.RepositoryIndex(&c, req, &resp);
  if (pushback != nullptr) {
    for (const auto& [k, v] : c.GetServerTrailingMetadata()) {
      if (k == "grpc-retry-pushback-ms") *pushback = std::string(v.data(), v.size());
    }
  }
  return s;
}

grpc::Status infer(GRPCInferenceService::Stub& stub, const std::string& job) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  c.AddMetadata("infergate-job", job);
  inference::ModelInferResponse r;
  return stub.ModelInfer(&c, identity_request(256), &r);
}

TEST(Admission, JobCapRefusesAThirdJobUntilOneGoesIdle) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}}, "limits:\n  max_jobs: 2\n  job_idle_timeout: 1s\n");
  auto stub = make_stub(gw.port());
  ASSERT_TRUE(infer(*stub, "job-a").ok());
  ASSERT_TRUE(infer(*stub, "job-b").ok());
  std::string pushback;
  grpc::Status s = repository_index(*stub, "job-c", &pushback);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("max_jobs"), std::string::npos) << s.error_message();
  EXPECT_EQ(pushback, "1000");
  EXPECT_EQ(infer(*stub, "job-c").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The admitted jobs keep full service.
  EXPECT_TRUE(repository_index(*stub, "job-a").ok());
  EXPECT_TRUE(infer(*stub, "job-b").ok());
  // job-a stops; job-b keeps working; job-c gets in once job-a has been idle for 1 s.
  bool admitted = wait_until(
      [&] {
        EXPECT_TRUE(infer(*stub, "job-b").ok());
        return repository_index(*stub, "job-c").ok();
      },
      5s);
  EXPECT_TRUE(admitted);
  EXPECT_TRUE(infer(*stub, "job-c").ok());
  EXPECT_TRUE(infer(*stub, "job-b").ok());
  EXPECT_EQ(infer(*stub, "job-a").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GE(gw.metric("infergate_admission_rejections_total{limit=\"max_jobs\"}"), 3);
}

// Job names come from a header the client writes: with admission on (here only a per-job
// cap, no max_jobs), what the jobs tracked hold is capped, and idle jobs make room.
TEST(Admission, JobsPastTheJobTableCapAreRefusedUntilOthersGoIdle) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}},
             "limits:\n  per_job_max_inflight: 4\n  job_idle_timeout: 1s\n"
             "  max_job_table_bytes: 64KiB\n");
  auto stub = make_stub(gw.port());
  // ~4 KiB names: about 15 fit in 64 KiB.
  auto job = [](int i) { return "job-" + std::to_string(i) + "-" + std::string(4000, 'j'); };
  grpc::Status refused;
  const int admitted = count_until_refused(
      40, [&](int i) { return repository_index(*stub, job(i)); }, refused);
  EXPECT_GE(admitted, 10);
  EXPECT_LE(admitted, 16);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("limits.max_job_table_bytes = 65536 bytes"),
            std::string::npos)
      << refused.error_message();
  EXPECT_TRUE(infer(*stub, job(0)).ok()) << "known jobs go on";
  EXPECT_GE(gw.metric("infergate_admission_rejections_total{limit=\"max_job_table_bytes\"}"), 1);
  // Once the others have been idle for job_idle_timeout, the refused one gets in.
  EXPECT_TRUE(wait_until([&] { return repository_index(*stub, job(admitted)).ok(); }, 5s));
}

TEST(Admission, AReloadAppliesNewLimits) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}});
  auto stub = make_stub(gw.port());
  ASSERT_TRUE(infer(*stub, "job-a").ok());
  ASSERT_TRUE(infer(*stub, "job-b").ok());  // no limits: any number of jobs
  {
    std::ofstream out(gw.config_path());
    out << "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\nworkers: 2\n"
        << "backends:\n  - name: a\n    address: \"" << sim.address() << "\"\n"
        << "limits:\n  max_jobs: 1\n  job_idle_timeout: 30s\n";
  }
  gw.process().signal(SIGHUP);
  ASSERT_TRUE(gw.process().wait_for_line("reloaded", 5s));
  // Jobs are counted from the reload on: the first one in takes the only place.
  EXPECT_TRUE(infer(*stub, "job-c").ok());
  EXPECT_EQ(infer(*stub, "job-a").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(infer(*stub, "job-c").ok());
}

TEST(Admission, LinkBandwidthHoldsTheRequestByteRate) {
  Sim sim("a", {"--model", "identity:instances=16"});
  TcpRelay relay(sim.port());
  Gateway gw({{"a", "127.0.0.1:" + std::to_string(relay.port())}},
             "limits:\n  link_bandwidth: 50MB/s\n  link_burst: 1MiB\n");
  relay.reset_counts();  // health probes so far
  Tally tally;
  // Bounded: 3 s of load (about 150 requests of 1 MiB at the configured rate).
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&, t] {
      auto stub = make_stub(gw.port(), /*own_connection=*/true);
      const inference::ModelInferRequest req =
          identity_request(1 << 20, static_cast<std::uint32_t>(t));
      while (std::chrono::steady_clock::now() < deadline) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + 30s);
        inference::ModelInferResponse r;
        tally.add(stub->ModelInfer(&c, req, &r));
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_TRUE(tally.failures.empty()) << tally.first_error;
  const double rate = relay.rate_to_target();
  RecordProperty("measured_MBps", std::to_string(rate / 1e6));
  std::printf("link_bandwidth 50MB/s: measured %.1f MB/s, %d requests\n", rate / 1e6,
              tally.ok.load());
  // The cap is the contract: never more than the rate (plus the burst, 0.35 MB/s over 3 s).
  EXPECT_LE(rate, 55e6) << "measured " << rate / 1e6 << " MB/s over the wire";
  // The limiter must not hold traffic far below its rate either; how close it gets is up to
  // the machine (a sanitizer build on a loaded 2-core runner reached 43.9 MB/s), so the
  // floor is loose: a limiter that halves the rate still fails here.
  EXPECT_GE(rate, 25e6) << "measured " << rate / 1e6 << " MB/s over the wire";
}

TEST(Admission, ACancellationStormLeavesEveryCounterAtZero) {
  // Many instances: what the gateway cancels still runs on the sim (it books an instance
  // at arrival), and should not delay the check at the end.
  Sim sim("a", {"--model", "identity:instances=64,latency=100ms"});
  Gateway gw({{"a", sim.address()}},
             "limits:\n  max_inflight: 4\n  per_job_max_inflight: 2\n  max_bytes_in_flight: "
             "1MiB\n  max_queue: 10000\n");
  // 1000 requests that give up: deadlines of 5-50 ms, so nearly all leave while queued
  // or while at the backend; a few are cancelled by the client explicitly.
  Tally tally;
  std::vector<std::thread> pool;
  for (int t = 0; t < 40; ++t) {
    pool.emplace_back([&, t] {
      auto stub = make_stub(gw.port());
      for (int i = 0; i < 25; ++i) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(5 + (i % 10) * 5));
        c.AddMetadata("infergate-job", "job-" + std::to_string(t % 4));
        inference::ModelInferResponse r;
        if (i % 5 == 0) {
          std::thread canceller([&c] { c.TryCancel(); });
          tally.add(
              stub->ModelInfer(&c, identity_request(4096, static_cast<std::uint32_t>(i)), &r));
          canceller.join();
        } else {
          tally.add(
              stub->ModelInfer(&c, identity_request(4096, static_cast<std::uint32_t>(i)), &r));
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(
      tally.ok.load() +
          [&] {
            int n = 0;
            for (auto& [code, count] : tally.failures) n += count;
            return n;
          }(),
      1000);
  EXPECT_GT(tally.failures[grpc::StatusCode::DEADLINE_EXCEEDED], 0);
  // The gateway's counters (the sim keeps executing what was cancelled on it: its
  // scheduler books an instance at arrival, as a GPU queue would).
  const char* kCounters[] = {"infergate_admission_inflight_requests",
                             "infergate_admission_queued_requests",
                             "infergate_admission_bytes_in_flight", "infergate_active_streams",
                             "infergate_backend_outstanding_requests{backend=\"a\"}"};
  std::string last;
  auto all_zero = [&] {
    const std::string text = gw.metrics_text();
    last.clear();
    bool zero = true;
    for (const char* c : kCounters) {
      const double v = metric_value(text, c);
      last += std::string(c) + "=" + std::to_string(v) + " ";
      zero = zero && v == 0;
    }
    return zero;
  };
  EXPECT_TRUE(wait_until(all_zero, 10s)) << last;
  // And the gateway still serves.
  auto stub = make_stub(gw.port());
  EXPECT_TRUE(infer(*stub, "after").ok());
}

}  // namespace
}  // namespace infergate::testing

namespace infergate::testing {
namespace {

// Regression: requests waiting for admission held the client connection's window with
// the bytes they had sent, so the admitted request on the same connection could not send
// the rest of its body, and nothing moved until deadlines (a head-of-line deadlock).
TEST(Admission, QueuedRequestsDoNotStarveTheAdmittedOneOfTheConnectionWindow) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}},
             "frontend:\n  stream_window: 64KiB\n  connection_window: 128KiB\n"
             "limits:\n  max_inflight: 1\n");
  auto channel = make_channel(gw.port(), /*own_connection=*/true);  // one connection for all
  Tally tally;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      auto stub = GRPCInferenceService::NewStub(channel);
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 10s);
      inference::ModelInferResponse r;
      tally.add(stub->ModelInfer(&c, identity_request(1 << 20, static_cast<std::uint32_t>(t)), &r));
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(tally.ok.load(), 4) << tally.first_error;
}

}  // namespace
}  // namespace infergate::testing
