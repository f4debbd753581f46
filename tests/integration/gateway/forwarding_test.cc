// The gateway between real gRPC-library clients and infergate-sim backends: every RPC
// answered as the backend answers it, large and streamed messages intact, errors and
// the gateway's own answers as specified.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using google::protobuf::util::MessageDifferencer;
using inference::GRPCInferenceService;

class ForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim_ = std::make_unique<Sim>("sim-a", std::vector<std::string>{"--model", "identity", "--model",
                                                                   "counter:kind=accumulate"});
    gateway_ = std::make_unique<Gateway>(
        std::vector<std::pair<std::string, std::string>>{{"sim-a", sim_->address()}},
        "allow_repository_control: true\n");
    direct_ = make_stub(sim_->port());
    via_ = make_stub(gateway_->port());
  }

  // Calls `rpc` on both stubs and expects equal status and equal responses.
  template <typename Request, typename Response, typename Rpc>
  void expect_same(const Request& request, Rpc rpc, const char* what) {
    Response a;
    Response b;
    grpc::ClientContext ca;
    grpc::ClientContext cb;
    grpc::Status sa = ((*direct_).*rpc)(&ca, request, &a);
    grpc::Status sb = ((*via_).*rpc)(&cb, request, &b);
    EXPECT_EQ(sa.error_code(), sb.error_code()) << what << ": " << sb.error_message();
    EXPECT_EQ(sa.error_message(), sb.error_message()) << what;
    // Lists the gateway assembles (the repository index) may come in another order.
    MessageDifferencer differ;
    const auto* models =
        inference::RepositoryIndexResponse::descriptor()->FindFieldByName("models");
    if (a.GetDescriptor() == models->containing_type()) differ.TreatAsSet(models);
    EXPECT_TRUE(differ.Compare(a, b))
        << what << "\ndirect: " << a.ShortDebugString() << "\nvia: " << b.ShortDebugString();
  }

  std::unique_ptr<Sim> sim_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<GRPCInferenceService::Stub> direct_;
  std::unique_ptr<GRPCInferenceService::Stub> via_;
};

TEST_F(ForwardingTest, ForwardedControlRpcsAreAnsweredAsTheBackendAnswers) {
  using S = GRPCInferenceService::Stub;
  inference::ModelMetadataRequest metadata;
  metadata.set_name("identity");
  expect_same<inference::ModelMetadataRequest, inference::ModelMetadataResponse>(
      metadata, &S::ModelMetadata, "ModelMetadata");
  inference::ModelConfigRequest config;
  config.set_name("counter");
  expect_same<inference::ModelConfigRequest, inference::ModelConfigResponse>(
      config, &S::ModelConfig, "ModelConfig");
  inference::TraceSettingRequest trace;
  expect_same<inference::TraceSettingRequest, inference::TraceSettingResponse>(
      trace, &S::TraceSetting, "TraceSetting");
  inference::LogSettingsRequest log;
  expect_same<inference::LogSettingsRequest, inference::LogSettingsResponse>(log, &S::LogSettings,
                                                                             "LogSettings");
}

TEST_F(ForwardingTest, AOneBackendFleetAnswersLikeThatBackend) {
  using S = GRPCInferenceService::Stub;
  expect_same<inference::ServerLiveRequest, inference::ServerLiveResponse>({}, &S::ServerLive,
                                                                           "ServerLive");
  expect_same<inference::ServerReadyRequest, inference::ServerReadyResponse>({}, &S::ServerReady,
                                                                             "ServerReady");
  inference::ModelReadyRequest ready;
  ready.set_name("identity");
  expect_same<inference::ModelReadyRequest, inference::ModelReadyResponse>(ready, &S::ModelReady,
                                                                           "ModelReady");
  ready.set_name("no-such-model");
  expect_same<inference::ModelReadyRequest, inference::ModelReadyResponse>(ready, &S::ModelReady,
                                                                           "ModelReady unknown");
  inference::RepositoryIndexRequest index;
  expect_same<inference::RepositoryIndexRequest, inference::RepositoryIndexResponse>(
      index, &S::RepositoryIndex, "RepositoryIndex");
  // ServerMetadata is the fleet's: the backend's name and version and extensions.
  grpc::ClientContext ca;
  grpc::ClientContext cb;
  inference::ServerMetadataResponse direct;
  inference::ServerMetadataResponse via;
  ASSERT_TRUE(direct_->ServerMetadata(&ca, {}, &direct).ok());
  ASSERT_TRUE(via_->ServerMetadata(&cb, {}, &via).ok());
  EXPECT_EQ(via.name(), direct.name());
  EXPECT_EQ(via.name(), "triton");
  EXPECT_EQ(via.version(), direct.version());
  std::vector<std::string> a(direct.extensions().begin(), direct.extensions().end());
  std::vector<std::string> b(via.extensions().begin(), via.extensions().end());
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, b);
  // An unknown model is the gateway's NOT_FOUND, naming the model.
  grpc::ClientContext cm;
  inference::ModelMetadataRequest metadata;
  metadata.set_name("missing");
  inference::ModelMetadataResponse m;
  grpc::Status s = via_->ModelMetadata(&cm, metadata, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "infergate: no backend serves model 'missing'");
  // The gateway's own answers say which gateway made them.
  const auto& headers = cb.GetServerInitialMetadata();
  EXPECT_EQ(headers.count("infergate-version"), 1u);
}

TEST_F(ForwardingTest, AnUnknownVersionIsNotFoundAsOnTriton) {
  grpc::ClientContext c;
  inference::ModelInferRequest request = identity_request(64);
  request.set_model_version("99");
  inference::ModelInferResponse r;
  const grpc::Status s = via_->ModelInfer(&c, request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(s.error_message(), "infergate: no backend serves model 'identity' version 99");
  grpc::ClientContext known;
  request.set_model_version("1");
  EXPECT_TRUE(via_->ModelInfer(&known, request, &r).ok());
}

TEST_F(ForwardingTest, StatisticsAndRepositoryControlReachTheBackend) {
  grpc::ClientContext c1;
  inference::ModelInferResponse r;
  ASSERT_TRUE(via_->ModelInfer(&c1, identity_request(64), &r).ok());
  grpc::ClientContext c2;
  inference::ModelStatisticsRequest sreq;
  sreq.set_name("identity");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(via_->ModelStatistics(&c2, sreq, &stats).ok());
  ASSERT_EQ(stats.model_stats_size(), 1);
  EXPECT_EQ(stats.model_stats(0).inference_stats().success().count(), 1u);

  grpc::ClientContext c3;
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("identity");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(via_->RepositoryModelUnload(&c3, unload, &unloaded).ok());
  grpc::ClientContext c4;
  inference::ModelReadyRequest ready;
  ready.set_name("identity");
  inference::ModelReadyResponse ready_response;
  ASSERT_TRUE(direct_->ModelReady(&c4, ready, &ready_response).ok());
  EXPECT_FALSE(ready_response.ready());
  grpc::ClientContext c5;
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("identity");
  inference::RepositoryModelLoadResponse loaded;
  ASSERT_TRUE(via_->RepositoryModelLoad(&c5, load, &loaded).ok());
}

TEST_F(ForwardingTest, ModelInferRoundTripsAndNamesItsBackend) {
  inference::ModelInferRequest request = identity_request(4096, 7);
  grpc::ClientContext c;
  inference::ModelInferResponse response;
  grpc::Status s = via_->ModelInfer(&c, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(served_by(response), "sim-a");
  EXPECT_EQ(response.id(), "req-7");
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.raw_output_contents(0), request.raw_input_contents(0));
}

TEST_F(ForwardingTest, SixtyFourMegabyteInferRoundTripsByteIdentical) {
  inference::ModelInferRequest request = identity_request(64 << 20, 64);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 60s);
  inference::ModelInferResponse response;
  grpc::Status s = via_->ModelInfer(&c, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_TRUE(response.raw_output_contents(0) == request.raw_input_contents(0));
}

TEST_F(ForwardingTest, StreamInferKeepsOrderOverAThousandMessages) {
  grpc::ClientContext c;
  auto stream = via_->ModelStreamInfer(&c);
  constexpr int kMessages = 1000;
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) {
      inference::ModelInferRequest r = identity_request(256, static_cast<std::uint32_t>(i));
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  inference::ModelStreamInferResponse response;
  int received = 0;
  while (stream->Read(&response)) {
    ASSERT_TRUE(response.error_message().empty()) << response.error_message();
    EXPECT_EQ(response.infer_response().id(), "req-" + std::to_string(received));
    EXPECT_EQ(response.infer_response().raw_output_contents(0),
              identity_request(256, static_cast<std::uint32_t>(received)).raw_input_contents(0));
    ++received;
  }
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, kMessages);
}

// As Triton: a stream message that cannot be served is answered in the stream (its
// error_message), and the stream goes on; here the first, before any backend stream.
TEST_F(ForwardingTest, AStreamsBadFirstMessageIsAnsweredInTheStream) {
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = via_->ModelStreamInfer(&c);
  ASSERT_TRUE(stream->Write(identity_request(64, 1, "missing")));
  ASSERT_TRUE(stream->Write(identity_request(64, 2)));
  stream->WritesDone();
  inference::ModelStreamInferResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error_message(), "infergate: no backend serves model 'missing'");
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.error_message().empty()) << response.error_message();
  EXPECT_EQ(response.infer_response().raw_output_contents(0),
            identity_request(64, 2).raw_input_contents(0));
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(ForwardingTest, GzipAndDeflateRequestsRouteAndRoundTrip) {
  for (grpc_compression_algorithm algorithm : {GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE}) {
    // Zero-padded like a DeepMET input: compresses well, so it really is compressed.
    inference::ModelInferRequest request = identity_request(4, 3);
    request.mutable_inputs(0)->set_shape(1, 36000);
    request.mutable_raw_input_contents(0)->resize(144000, '\0');
    grpc::ClientContext c;
    c.set_compression_algorithm(algorithm);
    inference::ModelInferResponse response;
    grpc::Status s = via_->ModelInfer(&c, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.raw_output_contents(0), request.raw_input_contents(0));
  }
  EXPECT_GE(gateway_->metric("infergate_requests_total{code=\"OK\",method=\"ModelInfer\"}"), 2);
}

TEST_F(ForwardingTest, BackendErrorsPassThroughUnchanged) {
  // A shape that does not match the bytes: the backend's own INVALID_ARGUMENT.
  inference::ModelInferRequest request = identity_request(64);
  request.mutable_inputs(0)->set_shape(1, 999);
  grpc::ClientContext ca;
  grpc::ClientContext cb;
  inference::ModelInferResponse a;
  inference::ModelInferResponse b;
  grpc::Status direct = direct_->ModelInfer(&ca, request, &a);
  grpc::Status via = via_->ModelInfer(&cb, request, &b);
  EXPECT_EQ(direct.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(via.error_code(), direct.error_code());
  EXPECT_EQ(via.error_message(), direct.error_message());
}

TEST_F(ForwardingTest, SharedMemoryRpcsFailWithFailedPrecondition) {
  grpc::ClientContext c;
  inference::SystemSharedMemoryRegisterRequest request;
  request.set_name("region");
  request.set_key("/shm");
  request.set_byte_size(1024);
  inference::SystemSharedMemoryRegisterResponse response;
  grpc::Status s = via_->SystemSharedMemoryRegister(&c, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message().rfind("infergate: shared memory cannot cross the gateway", 0), 0u)
      << s.error_message();
  grpc::ClientContext c2;
  inference::CudaSharedMemoryStatusRequest cuda;
  inference::CudaSharedMemoryStatusResponse cuda_response;
  EXPECT_EQ(via_->CudaSharedMemoryStatus(&c2, cuda, &cuda_response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// Sends `body` as the raw request message of `method` through a generic stub.
grpc::Status call_raw(int port, const std::string& method, const std::string& body,
                      grpc::ByteBuffer* response) {
  grpc::GenericStub stub(make_channel(port));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&c, method, grpc::StubOptions(), &request, response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    result = s;
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

TEST_F(ForwardingTest, UnknownMethodIsUnimplemented) {
  grpc::ByteBuffer response;
  grpc::Status s =
      call_raw(gateway_->port(), "/inference.GRPCInferenceService/Frobnicate", "", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(s.error_message().rfind("infergate: unknown method", 0), 0u) << s.error_message();
  s = call_raw(gateway_->port(), "/some.Other/Method", "", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// As Triton's gRPC server answers bytes it cannot parse ("Unable to parse request"):
// INTERNAL; the gateway's message says what was wrong.
TEST_F(ForwardingTest, GarbageRequestBytesGetInternalAndTheGatewayKeepsServing) {
  const std::string garbage[] = {
      std::string("\x08\x96\x01", 3),          // model name as a varint
      std::string("\xff\xff\xff\xff\x0f", 5),  // a huge field number
      std::string("\x0a\x50") + "short",       // a length past the end
  };
  for (const std::string& g : garbage) {
    grpc::ByteBuffer response;
    grpc::Status s =
        call_raw(gateway_->port(), "/inference.GRPCInferenceService/ModelInfer", g, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL) << s.error_message();
    EXPECT_EQ(s.error_message().rfind("infergate: malformed ModelInfer request", 0), 0u)
        << s.error_message();
  }
  // Nothing reached the backend.
  grpc::ClientContext sc;
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(direct_->ModelStatistics(&sc, {}, &stats).ok());
  for (const auto& m : stats.model_stats()) {
    EXPECT_EQ(m.inference_stats().success().count() + m.inference_stats().fail().count(), 0u);
  }
  grpc::ClientContext c;
  inference::ModelInferResponse r;
  EXPECT_TRUE(via_->ModelInfer(&c, identity_request(64), &r).ok());
}

TEST_F(ForwardingTest, MetricsCountRequestsByMethodAndCode) {
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext c;
    inference::ServerLiveResponse r;
    ASSERT_TRUE(via_->ServerLive(&c, {}, &r).ok());
  }
  EXPECT_TRUE(wait_until(
      [&] {
        return gateway_->metric("infergate_requests_total{code=\"OK\",method=\"ServerLive\"}") == 3;
      },
      5s));
  const std::string text = gateway_->metrics_text();
  EXPECT_NE(text.find("infergate_request_duration_seconds_bucket{code=\"OK\",method="
                      "\"ServerLive\",le=\"+Inf\"} 3"),
            std::string::npos)
      << text;
  EXPECT_EQ(gateway_->metric("infergate_active_streams"), 0);
  int status = 0;
  EXPECT_EQ(http_get(gateway_->admin_port(), "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace infergate::testing
