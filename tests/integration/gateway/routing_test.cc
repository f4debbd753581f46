// Routing through a fleet of infergate-sim backends: least-loaded choice, model-aware
// candidates, sequence affinity, retries and health checks as backends fail and return.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <type_traits>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using inference::GRPCInferenceService;

// Fast health checks, so tests see transitions in a fraction of a second.
const char* kFastHealth =
    "health:\n  interval: 200ms\n  timeout: 150ms\n  unhealthy_threshold: 2\n"
    "  healthy_threshold: 2\n  inventory_interval: 1s\n";

// Runs `threads` callers, each making `each` ModelInfer calls; returns who served what.
struct LoadResult {
  std::map<std::string, int> served;  // backend name -> requests
  std::map<int, int> failures;        // gRPC code -> count
  std::string first_error;
};

LoadResult run_load(int port, int threads, int each, const std::string& model = "identity",
                    std::chrono::milliseconds deadline = 10s) {
  LoadResult result;
  std::mutex mu;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto stub = make_stub(port);
      for (int i = 0; i < each; ++i) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + deadline);
        inference::ModelInferResponse r;
        grpc::Status s = stub->ModelInfer(
            &c, identity_request(256, static_cast<std::uint32_t>(t * each + i), model), &r);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          ++result.served[served_by(r)];
        } else {
          ++result.failures[s.error_code()];
          if (result.first_error.empty()) result.first_error = s.error_message();
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  return result;
}

double state_is(Gateway& gw, const std::string& backend, const std::string& state) {
  return gw.metric("infergate_backend_state{backend=\"" + backend + "\",state=\"" + state + "\"}");
}

TEST(Routing, TheFastBackendServesMostWhenOneIsTenTimesSlower) {
  // 400 and 40 requests/s at most: the slow one's share stays small even when the machine
  // (a sanitizer build on 2 shared cores) cannot drive the fast one to its limit.
  Sim fast("fast", {"--model", "identity:latency=10ms,instances=4"});
  Sim slow("slow", {"--model", "identity:latency=100ms,instances=4"});
  Gateway gw({{"fast", fast.address()}, {"slow", slow.address()}});
  LoadResult r = run_load(gw.port(), 32, 25);
  EXPECT_TRUE(r.failures.empty()) << r.first_error;
  const int total = r.served["fast"] + r.served["slow"];
  EXPECT_EQ(total, 32 * 25);
  // Round-robin would split 50/50; least-loaded follows the backends' speed.
  EXPECT_GT(r.served["fast"], total * 3 / 4)
      << "fast " << r.served["fast"] << " slow " << r.served["slow"];
}

TEST(Routing, AModelOnOneBackendIsRoutedOnlyThere) {
  Sim a("sim-a", {"--model", "identity", "--model", "special"});
  Sim b("sim-b", {"--model", "identity"});
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}});
  LoadResult r = run_load(gw.port(), 4, 10, "special");
  EXPECT_TRUE(r.failures.empty()) << r.first_error;
  EXPECT_EQ(r.served["sim-a"], 40);
  EXPECT_EQ(r.served.count("sim-b"), 0u);
  LoadResult both = run_load(gw.port(), 4, 10, "identity");
  EXPECT_GT(both.served["sim-b"], 0);
  // A model no backend knows: NOT_FOUND, naming it.
  LoadResult none = run_load(gw.port(), 1, 1, "nonexistent");
  EXPECT_EQ(none.failures[grpc::StatusCode::NOT_FOUND], 1);
  EXPECT_EQ(none.first_error, "infergate: no backend serves model 'nonexistent'");
}

// Step `step` of `steps` of a sequence of the sim's accumulate model "counter": adds 1.
template <typename Id>
inference::ModelInferRequest counter_step(const Id& id, int step, int steps) {
  inference::ModelInferRequest q;
  q.set_model_name("counter");
  auto& params = *q.mutable_parameters();
  if constexpr (std::is_integral_v<Id>) {
    params["sequence_id"].set_uint64_param(static_cast<std::uint64_t>(id));
  } else {
    params["sequence_id"].set_string_param(id);
  }
  params["sequence_start"].set_bool_param(step == 0);
  params["sequence_end"].set_bool_param(step == steps - 1);
  auto* in = q.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("INT32");
  in->add_shape(1);
  const std::int32_t one = 1;
  q.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&one), 4));
  return q;
}

// Runs `sequences` sequences of `steps` steps of "counter" at once (ids: strings for every
// third, numbers from `first_id` for the others), each step sent to the gateway on
// port_for(sequence, step). Returns how many sequences went wrong (an error, a step served
// elsewhere than the first, or a wrong running sum); `owners` gets the backends they began on.
int run_counter_sequences(int sequences, int steps, std::uint64_t first_id,
                          const std::function<int(int, int)>& port_for,
                          std::set<std::string>* owners = nullptr) {
  std::atomic<int> wrong{0};
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int s = 0; s < sequences; ++s) {
    threads.emplace_back([&, s] {
      std::map<int, std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
      std::string owner;
      for (int step = 0; step < steps; ++step) {
        const inference::ModelInferRequest q =
            s % 3 == 0 ? counter_step("track-" + std::to_string(s), step, steps)
                       : counter_step(first_id + static_cast<std::uint64_t>(s), step, steps);
        const int port = port_for(s, step);
        if (!stubs[port]) stubs[port] = make_stub(port);
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + 10s);
        inference::ModelInferResponse r;
        const grpc::Status st = stubs[port]->ModelInfer(&c, q, &r);
        if (!st.ok()) {
          ADD_FAILURE() << "sequence " << s << " step " << step << ": " << st.error_message();
          ++wrong;
          return;
        }
        if (step == 0) owner = served_by(r);
        std::int32_t sum = 0;
        std::memcpy(&sum, r.raw_output_contents(0).data(), 4);
        // The running sum proves the state stayed on one server.
        if (served_by(r) != owner || sum != step + 1) {
          ADD_FAILURE() << "sequence " << s << " step " << step << ": sum " << sum << " on "
                        << served_by(r) << " (began on " << owner << ")";
          ++wrong;
          return;
        }
      }
      std::lock_guard lock(mu);
      if (owners != nullptr) owners->insert(owner);
    });
  }
  for (auto& t : threads) t.join();
  return wrong.load();
}

std::vector<std::unique_ptr<Sim>> counter_sims() {
  std::vector<std::unique_ptr<Sim>> sims;
  for (const char* name : {"sim-a", "sim-b", "sim-c"}) {
    sims.push_back(std::make_unique<Sim>(
        name, std::vector<std::string>{"--model", "counter:kind=accumulate,seq_idle=30s"}));
  }
  return sims;
}

TEST(Routing, SequencesStayOnTheirBackends) {
  std::vector<std::unique_ptr<Sim>> sims = counter_sims();
  Gateway gw(backends_of(sims));
  EXPECT_EQ(run_counter_sequences(20, 30, 1000, [&](int, int) { return gw.port(); }), 0);
}

// Clients choose sequence ids: the table of live sequences is capped. Past the cap a new
// sequence is refused (RESOURCE_EXHAUSTED naming the key), the ones already in the table
// go on, and one ending makes room for the next.
TEST(Routing, NewSequencesPastTheTableCapAreRefusedWhileLiveOnesGoOn) {
  std::vector<std::unique_ptr<Sim>> sims;
  sims.push_back(std::make_unique<Sim>(
      "sim-a", std::vector<std::string>{"--model", "counter:kind=accumulate,seq_idle=30s"}));
  Gateway gw(backends_of(sims), "limits:\n  max_sequence_table_bytes: 64KiB\n");
  auto stub = make_stub(gw.port());
  auto step = [&](const std::string& id, int n, int steps, inference::ModelInferResponse& r) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub->ModelInfer(&c, counter_step(id, n, steps), &r);
  };
  // ~4 KiB ids: about 15 fit in 64 KiB.
  auto id_of = [](int i) { return "job-" + std::to_string(i) + "-" + std::string(4000, 'q'); };
  grpc::Status refused;
  const int started = count_until_refused(
      40,
      [&](int i) {
        inference::ModelInferResponse r;
        return step(id_of(i), 0, 2, r);
      },
      refused);
  EXPECT_GE(started, 10);
  EXPECT_LE(started, 16);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("limits.max_sequence_table_bytes (65536 bytes)"),
            std::string::npos)
      << refused.error_message();
  EXPECT_GE(gw.metric("infergate_requests_over_limit_total{limit=\"limits.max_sequence_table_"
                      "bytes\"}"),
            1);
  // A sequence in the table goes on, on its backend, and its end frees its entry.
  inference::ModelInferResponse r;
  ASSERT_TRUE(step(id_of(0), 1, 2, r).ok());
  std::int32_t sum = 0;
  std::memcpy(&sum, r.raw_output_contents(0).data(), 4);
  EXPECT_EQ(sum, 2);
  // Room for the refused one now.
  const grpc::Status again = step(id_of(started), 0, 2, r);
  EXPECT_TRUE(again.ok()) << again.error_message();
}

// Two gateway replicas in front of the same three sims, and clients whose requests
// alternate between them (an L4 balancer moving a job, a reconnect): a new sequence's
// backend is chosen by rendezvous hash of its id, so both replicas send every step of a
// sequence to the same backend and every running sum is right.
TEST(Routing, SequencesKeepTheirBackendAcrossGatewayReplicas) {
  std::vector<std::unique_ptr<Sim>> sims = counter_sims();
  Gateway one(backends_of(sims));
  Gateway two(backends_of(sims));
  std::set<std::string> owners;
  // Steps alternate replicas; which one starts alternates too.
  EXPECT_EQ(
      run_counter_sequences(
          12, 20, 5000,
          [&](int s, int step) { return (step + s) % 2 == 0 ? one.port() : two.port(); }, &owners),
      0);
  EXPECT_GE(owners.size(), 2u) << "the hash spreads sequences over the backends";
}

TEST(Routing, KillingOneOfThreeUnderLoadLosesNothingRetryable) {
  std::vector<std::unique_ptr<Sim>> sims;
  for (const char* name : {"sim-a", "sim-b", "sim-c"}) {
    sims.push_back(std::make_unique<Sim>(
        name, std::vector<std::string>{"--model", "identity:latency=5ms,instances=8"}));
  }
  Gateway gw(backends_of(sims), kFastHealth);
  std::chrono::steady_clock::time_point killed;
  std::thread killer([&] {
    // Kill sim-c once the load is well under way.
    wait_until(
        [&] {
          return gw.metric("infergate_requests_total{code=\"OK\",method=\"ModelInfer\"}") > 200;
        },
        20s);
    killed = std::chrono::steady_clock::now();
    sims[2]->process().signal(SIGKILL);
  });
  LoadResult r = run_load(gw.port(), 16, 60);
  killer.join();
  EXPECT_TRUE(r.failures.empty()) << r.failures.size()
                                  << " kinds of failure, first: " << r.first_error;
  EXPECT_EQ(r.served["sim-a"] + r.served["sim-b"] + r.served["sim-c"], 16 * 60);
  // Health checks take it out within two probe intervals (plus a probe timeout), if
  // passive detection has not already.
  EXPECT_TRUE(wait_until([&] { return state_is(gw, "sim-c", "healthy") == 0; }, 5s));
  EXPECT_GE(gw.metric("infergate_retries_total"), 1);
  // Every dispatch was matched by a completion, retries and failures included.
  for (const char* name : {"sim-a", "sim-b", "sim-c"}) {
    EXPECT_EQ(
        gw.metric("infergate_backend_outstanding_requests{backend=\"" + std::string(name) + "\"}"),
        0)
        << name;
  }
}

TEST(Routing, AllBackendsDownGivesUnavailableFast) {
  Sim a("sim-a");
  Sim b("sim-b");
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}}, kFastHealth);
  a.process().signal(SIGKILL);
  b.process().signal(SIGKILL);
  ASSERT_TRUE(wait_until([&] { return gw.metric("infergate_healthy_backends") == 0; }, 5s));
  auto stub = make_stub(gw.port());
  {  // warm the client connection, so the timing below is the gateway's alone
    grpc::ClientContext c;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(stub->ServerLive(&c, {}, &live).ok());
  }
  const auto start = std::chrono::steady_clock::now();
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  grpc::Status s = stub->ModelInfer(&c, identity_request(64), &r);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "infergate: no healthy backend has model 'identity' ready");
  // Answered at once: not after a connect (2 s) or a queue timeout (30 s). The bound
  // leaves room for a loaded machine (a sanitizer build on 2 shared cores).
  EXPECT_LT(took, 1s);
}

TEST(Routing, AHangingBackendIsTakenOutAndAvoided) {
  Sim a("sim-a");
  Sim b("sim-b");
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}}, kFastHealth);
  // SIGSTOP: the kernel still accepts connections, nothing ever answers.
  b.process().signal(SIGSTOP);
  EXPECT_TRUE(wait_until([&] { return state_is(gw, "sim-b", "unhealthy") == 1; }, 5s));
  LoadResult r = run_load(gw.port(), 4, 25, "identity", 3s);
  EXPECT_TRUE(r.failures.empty()) << r.first_error;
  EXPECT_EQ(r.served["sim-a"], 100);
  b.process().signal(SIGCONT);
}

TEST(Routing, ARestartedBackendRejoinsWithSlowStart) {
  Sim a("sim-a");
  auto b = std::make_unique<Sim>("sim-b");
  const int port = b->port();
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b->address()}},
             std::string(kFastHealth) + "  slow_start: 3s\n");
  b.reset();  // killed
  ASSERT_TRUE(wait_until([&] { return state_is(gw, "sim-b", "unhealthy") == 1; }, 5s));
  Sim again("sim-b", {"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(wait_until([&] { return state_is(gw, "sim-b", "healthy") == 1; }, 5s));
  const std::string weight = "infergate_backend_effective_weight{backend=\"sim-b\"}";
  EXPECT_LT(gw.metric(weight), 0.7);  // ramping up, not at full weight at once
  EXPECT_TRUE(wait_until([&] { return gw.metric(weight) == 1.0; }, 6s));
  LoadResult r = run_load(gw.port(), 4, 20);
  EXPECT_GT(r.served["sim-b"], 0);
}

}  // namespace
}  // namespace infergate::testing
