// Compression through a real gateway: requests compressed for a backend that asks for
// it (bytes counted on that connection by a relay), responses compressed for a client
// that accepts it, answers byte-identical either way.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/cluster.h"
#include "tests/support/relay.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// A DeepMET-like input: FP32 values, mostly zero padding (one value in 16 is set).
inference::ModelInferRequest padded_request(size_t bytes, std::uint32_t seed) {
  inference::ModelInferRequest r = identity_request(bytes, seed);
  std::string& data = *r.mutable_raw_input_contents(0);
  for (size_t i = 0; i < data.size(); ++i) {
    if ((i / 4) % 16 != 0) data[i] = 0;
  }
  return r;
}

struct Answer {
  grpc::Status status;
  inference::ModelInferResponse response;
};

Answer infer(inference::GRPCInferenceService::Stub& stub, const inference::ModelInferRequest& req) {
  Answer a;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 30s);
  a.status = stub.ModelInfer(&c, req, &a.response);
  return a;
}

void expect_echo(const Answer& a, const inference::ModelInferRequest& req) {
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  ASSERT_EQ(a.response.raw_output_contents_size(), 1);
  EXPECT_TRUE(a.response.raw_output_contents(0) == req.raw_input_contents(0))
      << "the answer is not byte-identical";
}

TEST(Compression, RequestsToACompressingBackendShrinkOnTheWire) {
  for (const char* algorithm : {"gzip", "deflate"}) {
    SCOPED_TRACE(algorithm);
    Sim sim("a");
    TcpRelay relay(sim.port());
    Gateway gw(Gateway::WithKeys{},
               {{"a",
                 "127.0.0.1:" + std::to_string(relay.port()),
                 {std::string("compression: ") + algorithm, "compression_min_bytes: 64KiB"}}},
               "");
    auto stub = make_stub(gw.port());
    relay.reset_counts();
    constexpr size_t kBytes = 2 << 20;
    constexpr int kRequests = 4;
    for (int i = 0; i < kRequests; ++i) {
      const inference::ModelInferRequest req =
          padded_request(kBytes, static_cast<std::uint32_t>(i));
      expect_echo(infer(*stub, req), req);
    }
    // Requests crossed the link at a fraction of their size; responses did not shrink.
    const double sent = static_cast<double>(relay.bytes_to_target());
    EXPECT_LT(sent, 0.25 * kRequests * kBytes) << sent << " bytes to the backend";
    EXPECT_GT(static_cast<double>(relay.bytes_from_target()), 0.9 * kRequests * kBytes);
    EXPECT_EQ(gw.metric("infergate_backend_compressed_requests_total{backend=\"a\"}"), kRequests);
    const double in = gw.metric("infergate_backend_compression_input_bytes_total{backend=\"a\"}");
    const double out = gw.metric("infergate_backend_compression_output_bytes_total{backend=\"a\"}");
    EXPECT_GT(in, kRequests * kBytes);
    EXPECT_LT(out, 0.25 * in);
    // Below compression_min_bytes, and dense data that would not shrink, go as they are.
    const inference::ModelInferRequest small = identity_request(1024, 7);
    expect_echo(infer(*stub, small), small);
    const inference::ModelInferRequest dense = identity_request(256 * 1024, 8);
    expect_echo(infer(*stub, dense), dense);
    EXPECT_EQ(gw.metric("infergate_backend_compressed_requests_total{backend=\"a\"}"), kRequests);
  }
}

TEST(Compression, ResponsesAreCompressedForClientsThatAcceptIt) {
  Sim sim("a");
  Gateway gw({{"a", sim.address()}},
             "frontend:\n  response_compression: gzip\n  response_compression_min_bytes: 64KiB\n");
  // The relay sits between the client and the gateway: it sees what the client gets.
  TcpRelay relay(gw.port());
  auto stub = make_stub(relay.port());
  constexpr size_t kBytes = 2 << 20;
  const inference::ModelInferRequest req = padded_request(kBytes, 3);
  relay.reset_counts();
  expect_echo(infer(*stub, req), req);
  EXPECT_LT(static_cast<double>(relay.bytes_from_target()), 0.25 * kBytes);
  // Small and dense answers are still right (sent with the compressed flag clear).
  const inference::ModelInferRequest small = identity_request(512, 4);
  expect_echo(infer(*stub, small), small);
  const inference::ModelInferRequest dense = identity_request(300 * 1024, 5);
  expect_echo(infer(*stub, dense), dense);
  // A client that does not accept gzip gets it uncompressed.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
  args.SetInt(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1);  // identity only
  auto plain = inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(relay.port()), grpc::InsecureChannelCredentials(), args));
  relay.reset_counts();
  expect_echo(infer(*plain, req), req);
  EXPECT_GT(static_cast<double>(relay.bytes_from_target()), 0.9 * kBytes);
}

}  // namespace
}  // namespace infergate::testing
