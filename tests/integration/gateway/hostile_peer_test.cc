// The frame layer against peers that misbehave: garbage on the wire, a client that stops
// reading, a backend that says GOAWAY with streams in flight, a backend that vanishes.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

int connect_raw(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes (true) or the 5 s receive timeout passes (false).
bool read_until_closed(int fd, std::string* received = nullptr) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    if (received != nullptr) received->append(buf, static_cast<size_t>(n));
  }
}

bool serves(int port) {
  auto stub = make_stub(port, true);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 5s);
  inference::ModelInferResponse r;
  return stub->ModelInfer(&c, identity_request(256), &r).ok();
}

TEST(HostilePeer, GarbageInsteadOfHttp2ClosesOnlyThatConnection) {
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}});
  const std::string inputs[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string(4096, '\xff'),
      // A valid preface, then a DATA frame on stream 0 (a connection error).
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
          std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9) +
          std::string("\x00\x00\x04\x00\x01\x00\x00\x00\x00", 9) + "abcd",
      // A valid preface, then a frame claiming 16 MiB.
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
          std::string("\xff\xff\xff\x00\x00\x00\x00\x00\x01", 9),
  };
  for (const std::string& input : inputs) {
    int fd = connect_raw(gw.port());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, input.data(), input.size()), static_cast<ssize_t>(input.size()));
    EXPECT_TRUE(read_until_closed(fd)) << "the gateway kept a garbage connection open";
    ::close(fd);
    EXPECT_TRUE(serves(gw.port()));
  }
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_client_connections") == 0; }, 5s));
}

TEST(HostilePeer, PeerThatVanishesMidRequestFreesItsStream) {
  Sim sim("sim-a", {"--hang-rate", "1"});
  Gateway gw({{"sim-a", sim.address()}});
  {
    auto stub = make_stub(gw.port(), true);
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 60s);
    inference::ModelInferResponse r;
    std::thread t([&] { stub->ModelInfer(&c, identity_request(256), &r); });
    ASSERT_TRUE(
        wait_until([&] { return sim.metric("infergate_sim_inflight_requests") == 1; }, 10s));
    c.TryCancel();
    t.join();
  }
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_active_streams") == 0; }, 5s));
  EXPECT_TRUE(wait_until([&] { return sim.metric("infergate_sim_inflight_requests") == 0; }, 5s));
}

TEST(HostilePeer, ClientThatStopsReadingKeepsGatewayMemoryBounded) {
  Sim sim("sim-a");
  Gateway gw({{"sim-a", sim.address()}});
  // No BDP probing: the client's stream window stays small while it does not read.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT32_MAX);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateCustomChannel(gw.address(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext c;
  auto stream = stub->ModelStreamInfer(&c);
  constexpr int kMessages = 32;
  constexpr size_t kBytes = 2 << 20;  // 64 MiB of answers in all
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(stream->Write(identity_request(kBytes, static_cast<std::uint32_t>(i))));
  }
  stream->WritesDone();
  // Every request has gone through; the answers pile up against the unread client.
  ASSERT_TRUE(wait_until(
      [&] { return gw.metric("infergate_request_body_bytes_total") >= kMessages * double(kBytes); },
      30s));
  // Sample the gauge for a second (each sample is an HTTP round trip).
  double peak = 0;
  for (auto end = std::chrono::steady_clock::now() + 1s; std::chrono::steady_clock::now() < end;) {
    peak = std::max(peak, gw.metric("infergate_buffered_bytes"));
  }
  // Bounded by the flow-control windows (1 MiB per stream and direction, 16 MiB per
  // connection), far below the 64 MiB the backend wants to send.
  EXPECT_LT(peak, 24.0 * (1 << 20)) << "gateway buffered " << peak << " bytes";
  // Once the client reads, everything arrives intact and in order.
  inference::ModelStreamInferResponse response;
  int received = 0;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.infer_response().raw_output_contents(0),
              identity_request(kBytes, static_cast<std::uint32_t>(received)).raw_input_contents(0));
    ++received;
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, kMessages);
}

TEST(HostilePeer, BackendGoawayLetsStreamsInFlightFinish) {
  Sim sim("sim-a", {"--model", "identity:latency=1500ms,instances=8"});
  Gateway gw({{"sim-a", sim.address()}});
  auto stub = make_stub(gw.port());
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(4);
  std::vector<inference::ModelInferResponse> responses(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 20s);
      statuses[i] = stub->ModelInfer(&c, identity_request(512, i), &responses[i]);
    });
  }
  ASSERT_TRUE(wait_until([&] { return sim.metric("infergate_sim_inflight_requests") == 4; }, 10s));
  // A graceful gRPC server shutdown sends GOAWAY and lets accepted streams finish.
  sim.process().signal(SIGTERM);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(served_by(responses[i]), "sim-a");
  }
  // The backend is gone now: a new request fails fast, saying why (its connection is
  // refused, or health checks have already taken it out).
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  grpc::Status s = stub->ModelInfer(&c, identity_request(64), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message().rfind("infergate: ", 0), 0u) << s.error_message();
}

TEST(HostilePeer, BackendThatVanishesFailsItsStreamsFastAndTheRestGoOn) {
  Sim a("sim-a", {"--model", "identity:latency=2s,instances=8"});
  Sim b("sim-b", {"--model", "identity:latency=2s,instances=8"});
  // No retries: what a client sees when its backend dies under its request.
  Gateway gw({{"sim-a", a.address()}, {"sim-b", b.address()}}, "routing:\n  retries: 0\n",
             /*workers=*/1);
  auto stub = make_stub(gw.port());
  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(6);
  std::vector<inference::ModelInferResponse> responses(6);
  std::vector<std::chrono::steady_clock::time_point> ended(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + 20s);
      statuses[i] = stub->ModelInfer(&c, identity_request(512, i), &responses[i]);
      ended[i] = std::chrono::steady_clock::now();
    });
  }
  ASSERT_TRUE(wait_until(
      [&] {
        return a.metric("infergate_sim_inflight_requests") +
                   b.metric("infergate_sim_inflight_requests") ==
               6;
      },
      10s));
  const auto killed = std::chrono::steady_clock::now();
  b.process().signal(SIGKILL);
  for (auto& t : threads) t.join();
  int ok = 0;
  int lost = 0;
  for (int i = 0; i < 6; ++i) {
    if (statuses[i].ok()) {
      ++ok;
      EXPECT_EQ(served_by(responses[i]), "sim-a");
    } else {
      ++lost;
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::UNAVAILABLE);
      EXPECT_NE(statuses[i].error_message().find("infergate: backend sim-b"), std::string::npos)
          << statuses[i].error_message();
      // Failed when the connection dropped, not after the 2 s the request would take.
      EXPECT_LT(ended[i] - killed, 1500ms);
    }
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(lost, 3);
  EXPECT_TRUE(wait_until([&] { return gw.metric("infergate_active_streams") == 0; }, 5s));
}

}  // namespace
}  // namespace infergate::testing
