// Several gateways, one set of limits (cluster.redis): three gateway processes and one
// redis-server (Debian's), all started by the test on loopback. max_jobs is exact across
// the replicas; a killed replica's jobs leave with their leases; Redis stopped and
// started under load loses no request, and the even split holds meanwhile; a password
// and TLS (rediss://) work.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/fake_http_server.h"
#include "tests/support/process.h"
#include "tests/support/relay.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// redis-server on 127.0.0.1:port (a fresh port, or the one given: a restart), with no
// persistence; with `tls_dir`, TLS only (DIR/redis.crt and .key, made by the test).
class RedisServer {
 public:
  explicit RedisServer(int port = 0, const std::string& password = "",
                       const std::string& tls_dir = "")
      : port_(port != 0 ? port : closed_port()) {
    std::vector<std::string> args = {"--bind",       "127.0.0.1", "--save",           "",
                                     "--appendonly", "no",        "--protected-mode", "no"};
    if (tls_dir.empty()) {
      args.insert(args.end(), {"--port", std::to_string(port_)});
    } else {
      args.insert(args.end(),
                  {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                   tls_dir + "/redis.crt", "--tls-key-file", tls_dir + "/redis.key",
                   "--tls-ca-cert-file", tls_dir + "/redis.crt", "--tls-auth-clients", "no"});
    }
    if (!password.empty()) args.insert(args.end(), {"--requirepass", password});
    process_ = std::make_unique<Process>("/usr/bin/redis-server", args);
    ok_ = process_->wait_for_line("Ready to accept connections", 10s).has_value();
  }

  bool ok() const { return ok_; }
  int port() const { return port_; }
  Process& process() { return *process_; }

 private:
  int port_;
  bool ok_ = false;
  std::unique_ptr<Process> process_;
};

std::string cluster_yaml(const std::string& url, const std::string& name,
                         const std::string& lease = "100ms", const std::string& more = "") {
  return "cluster:\n  redis: \"" + url + "\"\n  name: " + name + "\n  lease: " + lease + "\n" +
         more;
}

std::string redis_url(const RedisServer& redis) {
  return "redis://127.0.0.1:" + std::to_string(redis.port());
}

grpc::Status infer_as(int port, const std::string& job) { return infer_with_token(port, "", job); }

// Three gateways in front of one sim, sharing `limits` through `redis`.
struct Replicas {
  Replicas(const std::string& sim_model, const std::string& cluster, const std::string& limits)
      : Replicas(sim_model, std::vector<std::string>(3, cluster), limits) {}
  // Each replica with its own cluster section.
  Replicas(const std::string& sim_model, const std::vector<std::string>& clusters,
           const std::string& limits)
      : sim("sim-a", {"--model", sim_model}) {
    for (const std::string& cluster : clusters) {
      gateways.push_back(std::make_unique<Gateway>(
          std::vector<std::pair<std::string, std::string>>{{"sim-a", sim.address()}},
          cluster + limits, 1));
    }
  }
  bool all(const std::string& series, double value) {
    for (auto& g : gateways) {
      if (g->metric(series) != value) return false;
    }
    return true;
  }
  Sim sim;
  std::vector<std::unique_ptr<Gateway>> gateways;
};

// Twelve callers, four on each replica, each making 256-byte ModelInfer calls one after
// another until stop(); counts what was served and what failed.
class Load {
 public:
  explicit Load(Replicas& r) {
    for (int t = 0; t < 12; ++t) {
      threads_.emplace_back([this, &r, t] {
        auto stub = make_stub(r.gateways[static_cast<size_t>(t % 3)]->port(), true);
        while (!stop_.load()) {
          grpc::ClientContext c;
          c.set_deadline(std::chrono::system_clock::now() + 30s);
          inference::ModelInferResponse resp;
          const grpc::Status s =
              stub->ModelInfer(&c, identity_request(256, static_cast<std::uint32_t>(t)), &resp);
          if (s.ok()) {
            ++ok_;
          } else {
            std::lock_guard lock(mu_);
            ++failures_;
            if (first_error_.empty()) first_error_ = s.error_message();
          }
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int ok() const { return ok_.load(); }
  // After stop(): the calls that failed, and the first one's message.
  int failures() const { return failures_; }
  const std::string& first_error() const { return first_error_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::mutex mu_;
  int failures_ = 0;
  std::string first_error_;
  std::vector<std::thread> threads_;
};

TEST(Cluster, TenJobsAgainstMaxJobsFourAdmitExactlyFourAcrossThreeGateways) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  // A lease of 500 ms: Redis's answers may take 250 ms (lease/2) before a replica falls
  // back to deciding alone, which a stall of a loaded machine must not cause here.
  Replicas r("identity", cluster_yaml(redis_url(redis), "jobs", "500ms"),
             "limits:\n  max_jobs: 4\n  job_idle_timeout: 60s\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  // Ten jobs at once, each on one replica (jobs 0, 3, 6, 9 on the first, ...).
  std::vector<grpc::Status> results(10);
  std::vector<std::thread> jobs;
  for (int j = 0; j < 10; ++j) {
    jobs.emplace_back([&, j] {
      results[static_cast<size_t>(j)] =
          infer_as(r.gateways[j % 3]->port(), "job-" + std::to_string(j));
    });
  }
  for (auto& t : jobs) t.join();
  std::vector<int> admitted;
  for (int j = 0; j < 10; ++j) {
    const grpc::Status& s = results[static_cast<size_t>(j)];
    if (s.ok()) {
      admitted.push_back(j);
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      EXPECT_NE(s.error_message().find("too many active jobs (limits.max_jobs = 4)"),
                std::string::npos)
          << s.error_message();
    }
  }
  EXPECT_EQ(admitted.size(), 4u);
  // The admitted jobs go on, on any replica (their leases are renewed); no other starts.
  for (int j : admitted) {
    for (auto& g : r.gateways) {
      EXPECT_TRUE(infer_as(g->port(), "job-" + std::to_string(j)).ok()) << j;
    }
  }
  EXPECT_EQ(infer_as(r.gateways[0]->port(), "job-late").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(Cluster, AKilledReplicasJobsAreFreedWithinTwoLeasePeriods) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  Replicas r("identity", cluster_yaml(redis_url(redis), "killed", "500ms"),
             "limits:\n  max_jobs: 4\n  job_idle_timeout: 60s\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  for (int j = 0; j < 4; ++j)
    ASSERT_TRUE(infer_as(r.gateways[0]->port(), "job-" + std::to_string(j)).ok());
  EXPECT_EQ(infer_as(r.gateways[1]->port(), "job-new").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  r.gateways[0]->process().signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return infer_as(r.gateways[1]->port(), "job-new").ok(); }, 5s));
  const auto freed = std::chrono::steady_clock::now() - killed;
  std::printf(
      "a killed replica's jobs were freed after %lld ms (lease 500 ms)\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(freed).count()));
  EXPECT_LE(freed, 1000ms);  // two lease periods
  // And exactly the dead replica's four (their leases end a few ms apart, as they were
  // taken): three more fit with job-new, the fifth does not.
  for (const char* job : {"job-b", "job-c", "job-d"}) {
    EXPECT_TRUE(wait_until([&] { return infer_as(r.gateways[2]->port(), job).ok(); }, 1s)) << job;
  }
  EXPECT_EQ(infer_as(r.gateways[1]->port(), "job-e").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(Cluster, RedisStoppedAndStartedUnderLoadLosesNothingAndTheSplitHolds) {
  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->ok());
  const int port = redis->port();
  Replicas r("identity:instances=64,latency=10ms", cluster_yaml(redis_url(*redis), "outage"),
             "limits:\n  max_inflight: 6\n  queue_timeout: 30s\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  Load load(r);
  ASSERT_TRUE(wait_until([&] { return load.ok() > 100; }, 10s));
  redis->process().signal(SIGKILL);
  redis.reset();
  EXPECT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 0); }, 5s));
  // Never more than the limit: first the smaller of each one's last share and its split
  // (while what was admitted above the split drains), then the even split over the three
  // last seen: 2 + 2 + 2.
  auto shares = [&] {
    double sum = 0;
    for (auto& g : r.gateways) sum += g->metric("infergate_cluster_share{limit=\"max_inflight\"}");
    return sum;
  };
  EXPECT_LE(shares(), 6);
  EXPECT_TRUE(wait_until([&] { return shares() == 6; }, 5s)) << shares();
  for (auto& g : r.gateways) {
    EXPECT_EQ(g->metric("infergate_cluster_share{limit=\"max_inflight\"}"), 2);
  }
  const int before = load.ok();
  EXPECT_TRUE(wait_until([&] { return load.ok() > before + 100; }, 10s));  // serving meanwhile
  RedisServer again(port);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 10s));
  const int after = load.ok();
  EXPECT_TRUE(wait_until([&] { return load.ok() > after + 100; }, 10s));
  load.stop();
  EXPECT_EQ(load.failures(), 0) << load.first_error();
  const double seen = r.sim.metric("infergate_sim_inflight_max");
  std::printf("max_inflight 6 over three replicas: the sim saw at most %.0f at once, %d served\n",
              seen, load.ok());
  EXPECT_LE(seen, 6);
  EXPECT_GE(seen, 4);
}

// One redis-cli command's output (its first line).
std::string redis_cli(const RedisServer& redis, const std::string& command) {
  const std::string line =
      "redis-cli -p " + std::to_string(redis.port()) + " --no-raw " + command + " 2>/dev/null";
  FILE* pipe = ::popen(line.c_str(), "r");
  if (pipe == nullptr) return "";
  char out[256] = {};
  if (std::fgets(out, sizeof out, pipe) == nullptr) out[0] = 0;
  ::pclose(pipe);
  std::string text = out;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// Each replica's shares, as Redis holds them now (one HGETALL: an atomic snapshot).
std::vector<std::array<double, 3>> shares_in_redis(const RedisServer& redis,
                                                   const std::string& name) {
  const std::string command = "redis-cli -p " + std::to_string(redis.port()) +
                              " --no-raw HGETALL 'infergate:{" + name + "}:shares' 2>/dev/null";
  std::vector<std::array<double, 3>> out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char line[512];
  int n = 0;
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    // Lines alternate: 1) "replica id", 2) "share share share".
    if (++n % 2 == 1) continue;
    std::array<double, 3> v{};
    const char* text = std::strchr(line, '"');
    if (text != nullptr && std::sscanf(text + 1, "%lf %lf %lf", &v[0], &v[1], &v[2]) == 3) {
      out.push_back(v);
    }
  }
  ::pclose(pipe);
  return out;
}

// Redis comes back for one replica while the two others cannot reach it yet (their new
// connections hang, as when they retry later on their own backoff). The first one back
// must not take the others' shares while they still admit on their fallback split: its
// share stays at what it holds until they report (or until they could have: a retry, a
// timeout and two leases later), so the three never admit more than the limit.
TEST(Cluster, AReplicaBackBeforeTheOthersKeepsItsSplitUntilTheyReport) {
  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->ok());
  const int port = redis->port();
  std::vector<std::unique_ptr<TcpRelay>> relays;
  std::vector<std::string> clusters;
  for (int i = 0; i < 3; ++i) {
    relays.push_back(std::make_unique<TcpRelay>(port));
    clusters.push_back(
        cluster_yaml("redis://127.0.0.1:" + std::to_string(relays.back()->port()), "late"));
  }
  Replicas r("identity:instances=64,latency=10ms", clusters,
             "limits:\n  max_inflight: 6\n  queue_timeout: 30s\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  Load load(r);  // four callers on each replica: each wants more than 2
  ASSERT_TRUE(wait_until([&] { return load.ok() > 100; }, 10s));
  relays[1]->set_silent(true);
  relays[2]->set_silent(true);
  redis->process().signal(SIGKILL);
  redis.reset();
  EXPECT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 0); }, 5s));
  RedisServer again(port);
  ASSERT_TRUE(again.ok());
  auto& first = *r.gateways[0];
  ASSERT_TRUE(wait_until([&] { return first.metric("infergate_cluster_connected") == 1; }, 10s));
  // One second on (well past two leases, well inside the bound), sampled: the first one
  // back holds its split, 2, whatever its demand.
  double most = 0;
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    most = std::max(most, first.metric("infergate_cluster_share{limit=\"max_inflight\"}"));
    std::this_thread::sleep_for(20ms);  // poll until the deadline above
  }
  EXPECT_LE(most, 2);
  EXPECT_EQ(r.gateways[1]->metric("infergate_cluster_connected"), 0) << "the relay let it back";
  const double seen = r.sim.metric("infergate_sim_inflight_max");
  std::printf("max_inflight 6, one replica back before the others: the sim saw at most %.0f\n",
              seen);
  EXPECT_LE(seen, 6);
  // The others get through and all three report again (when they do depends on where
  // their backoff stands, possibly past the bound: not counted above).
  relays[1]->set_silent(false);
  relays[2]->set_silent(false);
  EXPECT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 10s));
  load.stop();
  EXPECT_EQ(load.failures(), 0) << load.first_error();
}

TEST(Cluster, AfterARedisRestartTheJobsInServiceAreCountedAgain) {
  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->ok());
  const int port = redis->port();
  Replicas r("identity", cluster_yaml(redis_url(*redis), "restart"),
             "limits:\n  max_jobs: 2\n  job_idle_timeout: 60s\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  ASSERT_TRUE(infer_as(r.gateways[0]->port(), "a").ok());
  ASSERT_TRUE(infer_as(r.gateways[0]->port(), "b").ok());
  redis->process().signal(SIGKILL);
  redis.reset();
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 0); }, 5s));
  RedisServer again(port);  // empty: every lease is gone
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 10s));
  // The first replica renews a and b into the new Redis: the cap is full again.
  EXPECT_TRUE(wait_until(
      [&] { return redis_cli(again, "ZCARD 'infergate:{restart}:jobs'") == "(integer) 2"; }, 5s));
  EXPECT_TRUE(wait_until(
      [&] {
        return infer_as(r.gateways[1]->port(), "c").error_code() ==
               grpc::StatusCode::RESOURCE_EXHAUSTED;
      },
      5s));
  EXPECT_TRUE(infer_as(r.gateways[2]->port(), "a").ok());
}

TEST(Cluster, SharesFollowDemandAndNeverAddUpToMoreThanTheLimit) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  Replicas r(
      "identity:instances=64,latency=5ms", cluster_yaml(redis_url(redis), "bound"),
      "limits:\n  max_inflight: 12\n  max_bytes_in_flight: 1MiB\n  link_bandwidth: 400Mbps\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 1); }, 5s));
  std::atomic<int> phase{0};  // 0: load on replica 0; 1: on replica 2; 2: stop
  std::atomic<int> failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 10; ++t) {
    load.emplace_back([&, t] {
      auto first = make_stub(r.gateways[t == 9 ? 1 : 0]->port(), true);
      auto second = make_stub(r.gateways[t == 9 ? 1 : 2]->port(), true);
      while (phase.load() < 2) {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + 30s);
        inference::ModelInferResponse resp;
        auto& stub = phase.load() == 0 ? first : second;
        if (!stub->ModelInfer(&c, identity_request(1024, static_cast<std::uint32_t>(t)), &resp)
                 .ok()) {
          ++failed;
        }
      }
    });
  }
  // Sampled (bounded): every snapshot of the shares adds up to at most each limit.
  double most_of_zero = 0;
  double most_of_two = 0;
  int samples = 0;
  size_t most_replicas = 0;
  auto sample_for = [&](std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    for (int n = 0; n < 200 && std::chrono::steady_clock::now() < until; ++n) {
      const auto shares = shares_in_redis(redis, "bound");
      ++samples;
      most_replicas = std::max(most_replicas, shares.size());
      std::array<double, 3> sum{};
      for (const auto& s : shares) {
        for (size_t k = 0; k < 3; ++k) sum[k] += s[k];
      }
      EXPECT_LE(sum[0], 12);
      EXPECT_LE(sum[1], 1 << 20);
      EXPECT_LE(sum[2], 50e6);
    }
  };
  sample_for(1500ms);
  EXPECT_TRUE(wait_until(
      [&] { return r.gateways[0]->metric("infergate_cluster_share{limit=\"max_inflight\"}") >= 6; },
      5s));
  most_of_zero = r.gateways[0]->metric("infergate_cluster_share{limit=\"max_inflight\"}");
  phase = 1;
  sample_for(1500ms);
  EXPECT_TRUE(wait_until(
      [&] { return r.gateways[2]->metric("infergate_cluster_share{limit=\"max_inflight\"}") >= 6; },
      5s));
  most_of_two = r.gateways[2]->metric("infergate_cluster_share{limit=\"max_inflight\"}");
  phase = 2;
  for (auto& t : load) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(most_replicas, 3u);  // the snapshots were read
  std::printf("%d snapshots; the loaded replica held %.0f of 12, then the other %.0f\n", samples,
              most_of_zero, most_of_two);
  EXPECT_GE(most_of_zero, 6);  // demand moves the shares: the busy replica holds most
  EXPECT_GE(most_of_two, 6);
  EXPECT_LE(r.sim.metric("infergate_sim_inflight_max"), 12);
}

TEST(Cluster, AReplicaCutOffFromRedisTakesItsSplitAndNoMore) {
  // Redis never reachable: each replica assumes cluster.expected_replicas and takes its part.
  Replicas r("identity",
             cluster_yaml("redis://127.0.0.1:" + std::to_string(closed_port()), "none", "100ms",
                          "  expected_replicas: 3\n"),
             "limits:\n  max_inflight: 7\n  max_jobs: 5\n");
  ASSERT_TRUE(wait_until([&] { return r.all("infergate_cluster_connected", 0); }, 5s));
  EXPECT_EQ(r.gateways[0]->metric("infergate_cluster_share{limit=\"max_inflight\"}"), 3);
  EXPECT_EQ(r.gateways[0]->metric("infergate_cluster_replicas"), 3);
  // Jobs are decided by each replica alone: its part of max_jobs 5 over 3 (2).
  EXPECT_TRUE(infer_as(r.gateways[0]->port(), "a").ok());
  EXPECT_TRUE(infer_as(r.gateways[0]->port(), "b").ok());
  EXPECT_EQ(infer_as(r.gateways[0]->port(), "c").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(Cluster, AReloadChangesTheSharedLimitsAndCanEndTheCluster) {
  RedisServer redis;
  ASSERT_TRUE(redis.ok());
  Sim sim("sim-a");
  const std::string head =
      "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\nworkers: 1\n"
      "backends:\n  - name: sim-a\n    address: \"" +
      sim.address() + "\"\n";
  Gateway gw({{"sim-a", sim.address()}},
             cluster_yaml(redis_url(redis), "reload") + "limits:\n  max_inflight: 4\n", 1);
  const std::string share = "infergate_cluster_share{limit=\"max_inflight\"}";
  ASSERT_TRUE(wait_until([&] { return gw.metric(share) == 4; }, 5s));  // one replica: all of it
  std::ofstream(gw.config_path()) << head << cluster_yaml(redis_url(redis), "reload")
                                  << "limits:\n  max_inflight: 10\n";
  gw.process().signal(SIGHUP);
  ASSERT_TRUE(gw.process().wait_for_line("reloaded", 5s));
  EXPECT_TRUE(wait_until([&] { return gw.metric(share) == 10; }, 5s));
  EXPECT_TRUE(infer_as(gw.port(), "a").ok());
  // Without cluster: the limits are this gateway's alone again, and nothing is shared.
  std::ofstream(gw.config_path()) << head << "limits:\n  max_inflight: 10\n  max_jobs: 1\n";
  gw.process().signal(SIGHUP);
  ASSERT_TRUE(gw.process().wait_for_line("reloaded", 5s));
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_cluster_connected") == -1; }, 5s));
  EXPECT_TRUE(infer_as(gw.port(), "a").ok());
  EXPECT_EQ(infer_as(gw.port(), "b").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(Cluster, RedisWithAPasswordOverTlsWorks) {
  char pattern[] = "/tmp/infergate-redis-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  ASSERT_TRUE(make_self_signed_certificate(dir, "redis"));
  RedisServer redis(0, "s3cret", dir);
  ASSERT_TRUE(redis.ok());
  const std::string url = "rediss://:s3cret@127.0.0.1:" + std::to_string(redis.port());
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             cluster_yaml(url, "tls", "100ms", "  ca: " + dir + "/redis.crt\n") +
                 "limits:\n  max_jobs: 1\n",
             1);
  ASSERT_TRUE(wait_until([&] { return gw.metric("infergate_cluster_connected") == 1; }, 5s));
  EXPECT_TRUE(infer_as(gw.port(), "only").ok());
  EXPECT_EQ(infer_as(gw.port(), "second").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A wrong password: refused by Redis, so the replica falls back (and says so).
  Gateway wrong({{"sim-a", sim.address()}},
                cluster_yaml("rediss://:wrong@127.0.0.1:" + std::to_string(redis.port()), "tls",
                             "100ms", "  ca: " + dir + "/redis.crt\n") +
                    "limits:\n  max_jobs: 1\n",
                1);
  EXPECT_TRUE(wait_until([&] { return wrong.metric("infergate_cluster_connected") == 0; }, 5s));
  EXPECT_TRUE(wrong.process().wait_for_line("cluster_fallback", 5s).has_value());
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace infergate::testing
