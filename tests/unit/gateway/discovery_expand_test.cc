// expand_backends: a dns or srv entry becomes one backend per address found, with the
// entry's settings; plain entries stay as they are.
#include <gtest/gtest.h>

#include "gateway/fleet/discovery.h"

namespace infergate::gateway {
namespace {

TEST(DiscoveryExpand, EachAddressIsABackendWithTheEntrysSettings) {
  config::Config c;
  config::BackendConfig plain{.name = "gpu-a", .address = {.host = "10.0.0.5", .port = 8001}};
  config::BackendConfig set{.name = "triton", .dns = {.host = "triton.ns.svc", .port = 8001}};
  set.max_inflight = 7;
  set.metrics_url =
      config::HttpUrl{.address = {.host = "triton.ns.svc", .port = 8002}, .path = "/metrics"};
  set.tls = config::BackendTlsConfig{.ca = "/ca.crt"};
  config::BackendConfig far{.name = "far", .srv = "_grpc._tcp.far.example"};
  c.backends = {plain, set, far};
  const Discovery::Found found = {
      {"triton", {{.host = "10.0.3.7", .port = 8001}, {.host = "fd00::7", .port = 8001}}}};
  const config::Config out = expand_backends(c, found);
  ASSERT_EQ(out.backends.size(), 3u) << "far: nothing found for it yet";
  EXPECT_EQ(out.backends[0].name, "gpu-a");
  EXPECT_EQ(out.backends[1].name, "triton/10.0.3.7:8001");
  EXPECT_EQ(out.backends[1].address.to_string(), "10.0.3.7:8001");
  EXPECT_EQ(out.backends[1].max_inflight, 7u);
  EXPECT_EQ(out.backends[1].metrics_url->address.host, "10.0.3.7");
  EXPECT_EQ(out.backends[1].tls->server_name, "triton.ns.svc");
  EXPECT_EQ(out.backends[1].dns.port, 0);
  EXPECT_EQ(out.backends[2].name, "triton/[fd00::7]:8001");
  EXPECT_TRUE(uses_discovery(c));
  EXPECT_FALSE(uses_discovery(out));
}

}  // namespace
}  // namespace infergate::gateway
