// Backends found in DNS (dns: every address of a name; srv: SRV records), against a real
// DNS server started by the test: Debian's dnsmasq on a loopback port, answering from a
// hosts file the test rewrites (SIGHUP) and one SRV record. Sims listen on 127.0.0.2,
// 127.0.0.3 and 127.0.0.4 (all loopback) on one port, as the pods behind a headless
// Service do.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/fake_http_server.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// dnsmasq on 127.0.0.1:port, authoritative for nothing, answering from `hosts` (read
// again on SIGHUP) with a TTL of `ttl_seconds`, plus the SRV records given.
class DnsServer {
 public:
  DnsServer(const std::string& hosts, const std::vector<std::string>& srv_records,
            int ttl_seconds = 1) {
    char pattern[] = "/tmp/infergate-dns-XXXXXX";
    ::close(::mkstemp(pattern));
    hosts_path_ = pattern;
    write_hosts(hosts);
    port_ = closed_port();
    std::vector<std::string> args = {"--no-daemon",
                                     "--conf-file=/dev/null",
                                     "--port=" + std::to_string(port_),
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--addn-hosts=" + hosts_path_,
                                     "--local-ttl=" + std::to_string(ttl_seconds),
                                     "--user=root",
                                     "--pid-file=",
                                     "--log-facility=-",
                                     "--log-queries"};
    for (const std::string& r : srv_records) args.push_back("--srv-host=" + r);
    process_ = std::make_unique<Process>("/usr/sbin/dnsmasq", args);
    ok_ = process_->wait_for_line("started, version", 10s).has_value();
  }
  ~DnsServer() { std::remove(hosts_path_.c_str()); }

  bool ok() const { return ok_; }
  int port() const { return port_; }
  Process& process() { return *process_; }
  // New records: the file is rewritten and dnsmasq told to read it again.
  void write_hosts(const std::string& hosts) {
    std::ofstream(hosts_path_) << hosts;
    if (process_) process_->signal(SIGHUP);
  }

 private:
  std::string hosts_path_;
  int port_ = 0;
  bool ok_ = false;
  std::unique_ptr<Process> process_;
};

std::string served_by_one(int port) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  inference::ModelInferResponse r;
  const grpc::Status s = make_stub(port)->ModelInfer(&c, identity_request(256, 3), &r);
  return s.ok() ? served_by(r) : "error: " + s.error_message();
}

TEST(Discovery, DnsAndSrvNamesFollowTheRecordsAndARemovedAddressDrains) {
  const int port = closed_port();  // every "pod" listens on it, each on its own address
  Sim a("sim-a", {"--listen", "127.0.0.2:" + std::to_string(port)});
  Sim b("sim-b", {"--listen", "127.0.0.3:" + std::to_string(port)});
  Sim c("sim-c");  // behind the SRV record, on a port of its own
  DnsServer dns("127.0.0.2 triton.test\n127.0.0.3 triton.test\n127.0.0.1 sim-c.test\n",
                {"_grpc._tcp.srvset.test,sim-c.test," + std::to_string(c.port())});
  ASSERT_TRUE(dns.ok()) << "dnsmasq did not start";
  Gateway gw(
      Gateway::WithKeys{},
      {{"triton", "", {"dns: \"triton.test:" + std::to_string(port) + "\""}},
       {"srvset", "", {"srv: _grpc._tcp.srvset.test"}}},
      "discovery:\n  interval: 500ms\n  resolvers: [\"127.0.0.1:" + std::to_string(dns.port()) +
          "\"]\nhealth:\n  interval: 200ms\n  timeout: 150ms\n  healthy_threshold: 1\n"
          "  slow_start: 0s\n",
      2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 3, 15s)) << gw.metrics_text();
  EXPECT_EQ(gw.metric("infergate_backend_state{backend=\"triton/127.0.0.2:" + std::to_string(port) +
                      "\",state=\"healthy\"}"),
            1)
      << gw.metrics_text();
  std::map<std::string, int> served;
  for (int i = 0; i < 60; ++i) ++served[served_by_one(gw.port())];
  EXPECT_GT(served["sim-a"], 0);
  EXPECT_GT(served["sim-b"], 0);
  EXPECT_GT(served["sim-c"], 0) << "the SRV record's target";

  // Requests keep flowing while 127.0.0.3 leaves the records: none fails.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  std::mutex mu;
  std::string first_failure;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      while (!stop) {
        const std::string who = served_by_one(gw.port());
        ++done;
        if (who.starts_with("error")) {
          ++failures;
          std::lock_guard lock(mu);
          if (first_failure.empty()) first_failure = who;
        }
      }
    });
  }
  dns.write_hosts("127.0.0.2 triton.test\n127.0.0.1 sim-c.test\n");
  const bool shrank = wait_for_healthy(gw, 2, 10s);
  // And a new pod appears: probed, then served.
  Sim d("sim-d", {"--listen", "127.0.0.4:" + std::to_string(port)});
  dns.write_hosts("127.0.0.2 triton.test\n127.0.0.4 triton.test\n127.0.0.1 sim-c.test\n");
  const bool grew = wait_for_healthy(gw, 3, 10s);
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_TRUE(shrank) << gw.metrics_text();
  EXPECT_TRUE(grew) << gw.metrics_text();
  EXPECT_EQ(failures.load(), 0) << first_failure << " (of " << done.load() << ")";
  EXPECT_GT(done.load(), 20);
  served.clear();
  for (int i = 0; i < 60; ++i) ++served[served_by_one(gw.port())];
  EXPECT_EQ(served["sim-b"], 0) << "gone from the records";
  EXPECT_GT(served["sim-d"], 0) << "new in the records";
  EXPECT_TRUE(gw.process().wait_for_line("discovery_changed", 1s).has_value());
}

// The DNS server's records decide how many backends an entry makes: at most
// discovery.max_members, the first in sorted order (the same every round), logged once.
TEST(Discovery, AnEntryStandsForAtMostMaxMembersBackends) {
  const int port = closed_port();
  Sim a("sim-a", {"--listen", "127.0.0.2:" + std::to_string(port)});
  Sim b("sim-b", {"--listen", "127.0.0.3:" + std::to_string(port)});
  // Six addresses, the last four with nothing listening; and an SRV record set of three
  // targets, of which the first two in order are followed.
  Sim c("sim-c");
  DnsServer dns(
      "127.0.0.2 many.test\n127.0.0.3 many.test\n127.0.0.4 many.test\n127.0.0.5 many.test\n"
      "127.0.0.6 many.test\n127.0.0.7 many.test\n127.0.0.1 t1.test\n127.0.0.1 t2.test\n"
      "127.0.0.9 t3.test\n",
      {"_grpc._tcp.srvset.test,t3.test," + std::to_string(c.port()),
       "_grpc._tcp.srvset.test,t1.test," + std::to_string(c.port()),
       "_grpc._tcp.srvset.test,t2.test," + std::to_string(c.port() + 1)});
  ASSERT_TRUE(dns.ok()) << "dnsmasq did not start";
  Gateway gw(Gateway::WithKeys{},
             {{"many", "", {"dns: \"many.test:" + std::to_string(port) + "\""}},
              {"srvset", "", {"srv: _grpc._tcp.srvset.test"}}},
             "discovery:\n  interval: 300ms\n  max_members: 2\n  resolvers: [\"127.0.0.1:" +
                 std::to_string(dns.port()) +
                 "\"]\nhealth:\n  interval: 200ms\n  timeout: 150ms\n  healthy_threshold: 1\n"
                 "  slow_start: 0s\n",
             2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 3, 15s)) << gw.metrics_text();
  // Three rounds later still the same four members: two addresses, two SRV targets (t1,
  // t2; both on 127.0.0.1, one port with nothing on it).
  auto rounds = [&] {
    const std::vector<std::string> lines = dns.process().lines();
    return std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
      return line.find("query[A] many.test") != std::string::npos;
    });
  };
  const auto seen = rounds();
  ASSERT_TRUE(wait_until([&] { return rounds() >= seen + 3; }, 10s)) << "no new rounds";
  const std::string text = gw.metrics_text();
  for (const std::string& member :
       {"many/127.0.0.2:" + std::to_string(port), "many/127.0.0.3:" + std::to_string(port),
        "srvset/127.0.0.1:" + std::to_string(c.port()),
        "srvset/127.0.0.1:" + std::to_string(c.port() + 1)}) {
    EXPECT_NE(text.find("infergate_backend_state{backend=\"" + member + "\""), std::string::npos)
        << member << "\n"
        << text;
  }
  EXPECT_EQ(text.find("127.0.0.4:"), std::string::npos) << text;
  EXPECT_EQ(text.find("127.0.0.9:"), std::string::npos) << "t3 is third in order";
  EXPECT_TRUE(gw.process().wait_for_line("discovery_truncated backend=many named=6 kept=2", 1s));
  EXPECT_TRUE(gw.process().wait_for_line("discovery_truncated backend=srvset named=3 kept=2", 1s));
}

// A DNS server that stops answering does not empty the fleet: the last addresses stay.
TEST(Discovery, ADnsOutageKeepsTheLastAddresses) {
  const int port = closed_port();
  Sim a("sim-a", {"--listen", "127.0.0.2:" + std::to_string(port)});
  auto dns = std::make_unique<DnsServer>("127.0.0.2 triton.test\n", std::vector<std::string>{});
  ASSERT_TRUE(dns->ok());
  Gateway gw(
      Gateway::WithKeys{}, {{"triton", "", {"dns: \"triton.test:" + std::to_string(port) + "\""}}},
      "discovery:\n  interval: 300ms\n  timeout: 300ms\n  resolvers: [\"127.0.0.1:" +
          std::to_string(dns->port()) + "\"]\nhealth:\n  interval: 200ms\n  timeout: 150ms\n",
      2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 1, 15s));
  dns.reset();  // nothing answers on that port now
  ASSERT_TRUE(gw.process().wait_for_line("discovery_failed backend=triton", 10s).has_value());
  EXPECT_EQ(gw.metric("infergate_healthy_backends"), 1);
  EXPECT_EQ(served_by_one(gw.port()), "sim-a");
}

// The single-address form by host name is followed too: a pod rescheduled to a new IP is
// reached there under the same backend name (not ejected in a loop at the old one).
TEST(Discovery, AnAddressByHostNameFollowsItsRecord) {
  const int port = closed_port();
  Sim a("sim-a", {"--listen", "127.0.0.2:" + std::to_string(port)});
  Sim b("sim-b", {"--listen", "127.0.0.3:" + std::to_string(port)});
  DnsServer dns("127.0.0.2 triton-0.test\n", {});
  ASSERT_TRUE(dns.ok());
  Gateway gw(
      Gateway::WithKeys{}, {{"triton-0", "triton-0.test:" + std::to_string(port), {}}},
      "discovery:\n  interval: 300ms\n  resolvers: [\"127.0.0.1:" + std::to_string(dns.port()) +
          "\"]\nhealth:\n  interval: 200ms\n  timeout: 150ms\n  healthy_threshold: 1\n",
      2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 1, 15s));
  EXPECT_EQ(served_by_one(gw.port()), "sim-a");
  dns.write_hosts("127.0.0.3 triton-0.test\n");
  EXPECT_TRUE(wait_until([&] { return served_by_one(gw.port()) == "sim-b"; }, 10s));
  EXPECT_EQ(gw.metric("infergate_backend_state{backend=\"triton-0\",state=\"healthy\"}"), 1)
      << gw.metrics_text();
}

// A connection to a member that fails sends discovery to DNS at once, not at the next
// interval (an hour here): the pod that moved is found at its new address.
TEST(Discovery, AFailedConnectionAsksDnsAgainAtOnce) {
  const int port = closed_port();
  auto a = std::make_unique<Sim>(
      "sim-a", std::vector<std::string>{"--listen", "127.0.0.2:" + std::to_string(port)});
  Sim b("sim-b", {"--listen", "127.0.0.3:" + std::to_string(port)});
  DnsServer dns("127.0.0.2 triton-0.test\n", {}, /*ttl_seconds=*/3600);
  ASSERT_TRUE(dns.ok());
  Gateway gw(Gateway::WithKeys{}, {{"triton-0", "triton-0.test:" + std::to_string(port), {}}},
             "discovery:\n  interval: 1h\n  resolvers: [\"127.0.0.1:" + std::to_string(dns.port()) +
                 "\"]\n",
             2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 1, 15s));
  EXPECT_EQ(served_by_one(gw.port()), "sim-a");
  // The pod moves: its old address refuses connections, DNS names the new one.
  dns.write_hosts("127.0.0.3 triton-0.test\n");
  a.reset();
  EXPECT_TRUE(wait_until([&] { return served_by_one(gw.port()) == "sim-b"; }, 10s));
}

size_t count_lines(Process& p, const std::string& needle) {
  size_t n = 0;
  for (const std::string& line : p.lines()) n += line.find(needle) != std::string::npos;
  return n;
}

// A server that refuses to answer, round after round, is logged once, and so is its end.
TEST(Discovery, AnOutageIsLoggedOnceAndItsEndToo) {
  const int port = closed_port();
  Sim a("sim-a", {"--listen", "127.0.0.2:" + std::to_string(port)});
  DnsServer dns("127.0.0.2 triton.test\n", {});
  ASSERT_TRUE(dns.ok());
  Gateway gw(
      Gateway::WithKeys{}, {{"triton", "", {"dns: \"triton.test:" + std::to_string(port) + "\""}}},
      "discovery:\n  interval: 300ms\n  resolvers: [\"127.0.0.1:" + std::to_string(dns.port()) +
          "\"]\nhealth:\n  interval: 200ms\n  timeout: 150ms\n",
      2, /*wait_healthy=*/false);
  ASSERT_TRUE(wait_for_healthy(gw, 1, 15s));
  // dnsmasq refuses names it has no record of (it has no upstream): every round fails.
  dns.write_hosts("");
  const size_t asked = count_lines(dns.process(), "query[A] triton.test");
  ASSERT_TRUE(wait_until(
      [&] { return count_lines(dns.process(), "query[A] triton.test") >= asked + 4; }, 10s));
  EXPECT_EQ(count_lines(gw.process(), "discovery_failed backend=triton"), 1u);
  EXPECT_EQ(gw.metric("infergate_healthy_backends"), 1) << "the last addresses stay";
  dns.write_hosts("127.0.0.2 triton.test\n");
  EXPECT_TRUE(gw.process().wait_for_line("discovery_recovered backend=triton", 5s).has_value());
}

}  // namespace
}  // namespace infergate::testing
