// The admin port's bounds: admin.max_connections (an idle connection gives way to a new
// one; when every one is busy the new one is closed) and admin.timeout.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/raw_connection.h"

namespace infergate {
namespace {

using namespace std::chrono_literals;
using testing::Gateway;
using testing::http_get;
using testing::Sim;

using testing::RawConnection;

// True once the listener's side of the loopback connection from `client_port` to
// `server_port` has read everything sent to it (its receive queue, /proc/net/tcp, is empty).
bool server_read_all(int server_port, int client_port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    const int lport = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
    const int rport = std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16);
    if (lport != server_port || rport != client_port) continue;
    return std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16) == 0;
  }
  return false;  // not accepted yet
}

const char* kAdminBounds = "admin:\n  max_connections: 4\n  timeout: 1s\n";

TEST(AdminPort, IdleConnectionsGiveWayToANewOne) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}}, "admin:\n  max_connections: 4\n  timeout: 30s\n");
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<RawConnection>(gw.admin_port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // Accepted in order: the four are held before the probe's connection is taken.
  int status = 0;
  EXPECT_EQ(http_get(gw.admin_port(), "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200) << "a probe is served although idle connections fill the cap";
  EXPECT_TRUE(idle.front()->closed_within(2s)) << "the oldest idle connection made room";
  const std::string text = gw.metrics_text();
  EXPECT_GE(testing::metric_value(
                text, "infergate_admin_connections_limited_total{action=\"displaced\"}"),
            1);
  EXPECT_LE(testing::metric_value(text, "infergate_admin_connections"), 4);
}

TEST(AdminPort, ANewConnectionIsClosedWhenEveryHeldOneIsBusy) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}}, kAdminBounds);
  std::vector<std::unique_ptr<RawConnection>> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(std::make_unique<RawConnection>(gw.admin_port()));
    busy.back()->send("GET /healthz HTTP/1.1\r\n");  // a request begun, never finished
  }
  // The gateway must have read those bytes (asking the port would take a place itself:
  // the kernel tells).
  for (auto& c : busy) {
    ASSERT_TRUE(
        testing::wait_until([&] { return server_read_all(gw.admin_port(), c->local_port()); }, 5s));
  }
  RawConnection extra(gw.admin_port());
  EXPECT_TRUE(extra.closed_within(500ms)) << "refused at once, not held";
  // admin.timeout ends the unfinished requests; the port serves again.
  for (auto& c : busy) EXPECT_TRUE(c->closed_within(3s));
  EXPECT_GE(testing::metric_value(gw.metrics_text(),
                                  "infergate_admin_connections_limited_total{action=\"refused\"}"),
            1);
}

TEST(AdminPort, AConnectionThatSendsNothingIsClosedAfterTheTimeout) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}}, kAdminBounds);
  RawConnection silent(gw.admin_port());
  ASSERT_TRUE(silent.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_within(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 800ms);
}

// admin.tokens_file: the pages need a listed bearer token (Prometheus' authorization);
// /healthz stays open for probes.
TEST(AdminPort, PagesNeedABearerTokenWhenTokensAreListed) {
  char pattern[] = "/tmp/infergate-admin-tokens-XXXXXX";
  ::close(::mkstemp(pattern));
  const std::string path = pattern;
  // SHA-256 of "scrape-me".
  std::ofstream(path) << "cbf2e4e7c4a228c087068e9f9cc2305faffed4c6e94598cfc4c9d6ddc11409d2 "
                         "prometheus\n";
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}}, "admin:\n  tokens_file: " + path + "\n", 2,
             /*wait_healthy=*/false);
  int status = 0;
  http_get(gw.admin_port(), "/metrics", &status);
  EXPECT_EQ(status, 401);
  http_get(gw.admin_port(), "/status.json", &status, {"Authorization: Bearer wrong"});
  EXPECT_EQ(status, 401);
  const std::string metrics =
      http_get(gw.admin_port(), "/metrics", &status, {"Authorization: Bearer scrape-me"});
  EXPECT_EQ(status, 200);
  EXPECT_NE(metrics.find("infergate_build_info"), std::string::npos);
  http_get(gw.admin_port(), "/healthz", &status);
  EXPECT_NE(status, 401) << "probes need no token";
  http_get(gw.admin_port(), "/readyz", &status);
  EXPECT_NE(status, 401) << "probes need no token";
  std::remove(path.c_str());
}

// admin.tls: the admin port speaks HTTPS (curl trusting the test's certificate reads the
// metrics), and plain HTTP gets nothing from it.
TEST(AdminPort, AdminTlsServesHttpsOnly) {
  char pattern[] = "/tmp/infergate-admin-tls-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  ASSERT_TRUE(testing::make_self_signed_certificate(dir, "admin"));
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}},
             "admin:\n  tls: {cert: " + dir + "/admin.crt, key: " + dir + "/admin.key}\n", 2,
             /*wait_healthy=*/false);  // the harness asks the admin port in plain HTTP
  const std::string out = dir + "/metrics.txt";
  const std::string curl = "curl -sS --max-time 5 --cacert " + dir +
                           "/admin.crt https://127.0.0.1:" + std::to_string(gw.admin_port()) +
                           "/metrics -o " + out;
  ASSERT_EQ(std::system(curl.c_str()), 0) << curl;
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("infergate_build_info"), std::string::npos);
  int status = 0;
  http_get(gw.admin_port(), "/metrics", &status);
  EXPECT_NE(status, 200) << "plain HTTP on an HTTPS port";
  EXPECT_TRUE(gw.process().running());
  std::filesystem::remove_all(dir);
}

// /readyz: ready while a backend is healthy (what grpc.health.v1 Check says on the gRPC
// port), for probes that cannot speak gRPC over TLS.
TEST(AdminPort, ReadyzFollowsTheFleetsHealth) {
  auto sim = std::make_unique<Sim>("sim-a");
  // Two probes in a row must fail: one that is late on a loaded runner does not make the
  // first answer 503; a stopped backend refuses both at once.
  Gateway gw({{"sim-a", sim->address()}},
             "health:\n  interval: 200ms\n  timeout: 200ms\n  unhealthy_threshold: 2\n");
  int status = 0;
  EXPECT_EQ(http_get(gw.admin_port(), "/readyz", &status), "ready: 1 healthy backend\n");
  EXPECT_EQ(status, 200);
  sim.reset();
  EXPECT_TRUE(testing::wait_until(
      [&] {
        http_get(gw.admin_port(), "/readyz", &status);
        return status == 503;
      },
      5s));
  EXPECT_EQ(http_get(gw.admin_port(), "/readyz", &status), "no healthy backend\n");
}

}  // namespace
}  // namespace infergate
