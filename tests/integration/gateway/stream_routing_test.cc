// ModelStreamInfer routed per message: each message goes where its model and sequence
// call for, over one backend stream per (client stream, backend), and the answers come
// back merged into the client's stream, as if one Triton served them all.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Stream =
    grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>;

const char* kFastHealth =
    "health:\n  interval: 200ms\n  timeout: 150ms\n  unhealthy_threshold: 2\n"
    "  healthy_threshold: 2\n  inventory_interval: 1s\n";

// A request of Triton's simple_sequence example: INPUT (INT32 [1,1]) added to the
// sequence's running sum.
inference::ModelInferRequest sequence_request(std::uint64_t sequence, std::int32_t value,
                                              bool start, bool end, const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name("simple_sequence");
  r.set_id(id);
  auto* in = r.add_inputs();
  in->set_name("INPUT");
  in->set_datatype("INT32");
  in->add_shape(1);
  in->add_shape(1);
  r.add_raw_input_contents()->assign(reinterpret_cast<const char*>(&value), 4);
  auto& params = *r.mutable_parameters();
  params["sequence_id"].set_uint64_param(sequence);
  if (start) params["sequence_start"].set_bool_param(true);
  if (end) params["sequence_end"].set_bool_param(true);
  return r;
}

std::int32_t output_value(const inference::ModelInferResponse& r) {
  std::int32_t v = 0;
  if (r.raw_output_contents_size() == 1 && r.raw_output_contents(0).size() == 4) {
    std::memcpy(&v, r.raw_output_contents(0).data(), 4);
  }
  return v;
}

// Reads `n` answers; keyed by their request id.
std::map<std::string, inference::ModelStreamInferResponse> read_answers(Stream& stream, int n) {
  std::map<std::string, inference::ModelStreamInferResponse> answers;
  inference::ModelStreamInferResponse r;
  for (int i = 0; i < n && stream.Read(&r); ++i) answers[r.infer_response().id()] = r;
  return answers;
}

std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds deadline = 20s) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + deadline);
  return c;
}

// Two sims ("a" and "b", with their own arguments), the gateway in front of them, and a
// ModelStreamInfer open through it.
struct TwoBackendStream {
  TwoBackendStream(std::vector<std::string> a_args, std::vector<std::string> b_args,
                   const std::string& yaml = "")
      : a("a", std::move(a_args)),
        b("b", std::move(b_args)),
        gateway({{"a", a.address()}, {"b", b.address()}}, yaml),
        stub(make_stub(gateway.port())),
        c(context(30s)),
        stream(stub->ModelStreamInfer(c.get())) {}

  Sim a;
  Sim b;
  Gateway gateway;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
  std::unique_ptr<grpc::ClientContext> c;
  std::unique_ptr<Stream> stream;
};

// Two backends that serve different models: one stream reaches both, and each answer
// comes from the backend that has its model.
TEST(StreamRouting, AStreamReachesModelsOnDifferentBackends) {
  TwoBackendStream f({"--model", "alpha"}, {"--model", "beta"});
  Stream* stream = f.stream.get();
  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(stream->Write(
        identity_request(512, static_cast<std::uint32_t>(i), i % 2 == 0 ? "alpha" : "beta")));
  }
  stream->WritesDone();
  const auto answers = read_answers(*stream, kMessages + 1);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    const auto& r = answers.at("req-" + std::to_string(i));
    ASSERT_TRUE(r.error_message().empty()) << r.error_message();
    EXPECT_EQ(served_by(r.infer_response()), i % 2 == 0 ? "a" : "b");
    EXPECT_EQ(r.infer_response().raw_output_contents(0),
              identity_request(512, static_cast<std::uint32_t>(i)).raw_input_contents(0));
  }
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// Messages of one model keep to one backend while it serves the model: the stream's
// answers come back in the order they were asked, as from one Triton.
TEST(StreamRouting, MessagesOfOneModelKeepTheirOrder) {
  TwoBackendStream f({"--model", "alpha:latency=1ms"}, {"--model", "alpha:latency=1ms"});
  Stream* stream = f.stream.get();
  std::thread writer([&] {
    for (int i = 0; i < 200; ++i) {
      if (!stream->Write(identity_request(256, static_cast<std::uint32_t>(i), "alpha"))) break;
    }
    stream->WritesDone();
  });
  inference::ModelStreamInferResponse r;
  int n = 0;
  while (stream->Read(&r)) {
    ASSERT_TRUE(r.error_message().empty()) << r.error_message();
    EXPECT_EQ(r.infer_response().id(), "req-" + std::to_string(n));
    ++n;
  }
  writer.join();
  EXPECT_EQ(n, 200);
  EXPECT_TRUE(stream->Finish().ok());
}

// Triton's sequence rules across the two ways of calling: sequences live on one of two
// backends; one runs entirely in the stream, one starts in the stream and goes on with
// unary calls, one starts with unary calls and goes on in the stream. Every sum is
// right, so every request of a sequence met its state.
TEST(StreamRouting, SequencesMixingUnaryCallsAndAStreamMeetTheirState) {
  TwoBackendStream f({"--model", "simple_sequence:kind=simple_sequence,seq_idle=30s"},
                     {"--model", "simple_sequence:kind=simple_sequence,seq_idle=30s"});
  auto& stub = f.stub;
  Stream* stream = f.stream.get();
  // Eight of each kind, so that (least-loaded picking new sequences) both backends hold
  // some, and a stream pinned to one backend could not pass.
  constexpr int kEach = 8;
  std::set<std::string> owners;
  auto unary = [&](std::uint64_t seq, std::int32_t v, bool start, bool end, std::int32_t want) {
    inference::ModelInferResponse r;
    const grpc::Status s =
        stub->ModelInfer(context().get(), sequence_request(seq, v, start, end, "u"), &r);
    ASSERT_TRUE(s.ok()) << "sequence " << seq << ": " << s.error_message();
    EXPECT_EQ(output_value(r), want) << "sequence " << seq;
    owners.insert(served_by(r));
  };
  // Sequences 300..: started by unary calls (two values: 1 + 2).
  for (int k = 0; k < kEach; ++k) {
    unary(300 + k, 1, true, false, 1);
    unary(300 + k, 2, false, false, 3);
  }
  // Interleaved: each sequence gets 10, then 20 (the 200s end there).
  for (std::int32_t step : {10, 20}) {
    for (int k = 0; k < kEach; ++k) {
      const std::string tag = std::to_string(k) + "/" + std::to_string(step);
      ASSERT_TRUE(
          stream->Write(sequence_request(100 + k, step, step == 10, step == 20, "s" + tag)));
      ASSERT_TRUE(stream->Write(sequence_request(200 + k, step, step == 10, false, "t" + tag)));
      ASSERT_TRUE(stream->Write(sequence_request(300 + k, step, false, false, "u" + tag)));
    }
  }
  const auto answers = read_answers(*stream, 6 * kEach);
  ASSERT_EQ(answers.size(), static_cast<size_t>(6 * kEach));
  for (int k = 0; k < kEach; ++k) {
    for (auto [prefix, base] : {std::pair{"s", 0}, {"t", 0}, {"u", 3}}) {
      const auto& first = answers.at(prefix + std::to_string(k) + "/10");
      const auto& second = answers.at(prefix + std::to_string(k) + "/20");
      ASSERT_TRUE(first.error_message().empty()) << prefix << k << ": " << first.error_message();
      ASSERT_TRUE(second.error_message().empty()) << prefix << k << ": " << second.error_message();
      EXPECT_EQ(output_value(first.infer_response()), base + 10) << prefix << k;
      EXPECT_EQ(output_value(second.infer_response()), base + 30) << prefix << k;
      owners.insert(served_by(first.infer_response()));
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // The sequences started in the stream go on with unary calls, and end.
  for (int k = 0; k < kEach; ++k) {
    unary(200 + k, 5, false, true, 35);
    unary(300 + k, 7, false, true, 40);
  }
  EXPECT_EQ(owners.size(), 2u) << "the sequences should have spread over both backends";
}

// A bad message in the middle of a multi-backend stream is answered in the stream; the
// ones after it are served.
TEST(StreamRouting, UnroutableMessagesAreAnsweredInTheStreamBetweenGoodOnes) {
  TwoBackendStream f({"--model", "alpha"}, {"--model", "beta"});
  Stream* stream = f.stream.get();
  ASSERT_TRUE(stream->Write(identity_request(64, 1, "missing")));
  ASSERT_TRUE(stream->Write(identity_request(64, 2, "alpha")));
  inference::ModelInferRequest bad_version = identity_request(64, 3, "beta");
  bad_version.set_model_version("7");
  ASSERT_TRUE(stream->Write(bad_version));
  ASSERT_TRUE(stream->Write(identity_request(64, 4, "beta")));
  ASSERT_TRUE(stream->Write(sequence_request(99, 1, false, false, "req-5")));  // no START
  stream->WritesDone();
  const auto answers = read_answers(*stream, 6);
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_EQ(answers.at("req-1").error_message(), "infergate: no backend serves model 'missing'");
  EXPECT_TRUE(answers.at("req-2").error_message().empty());
  EXPECT_EQ(served_by(answers.at("req-2").infer_response()), "a");
  EXPECT_EQ(answers.at("req-3").error_message(),
            "infergate: no backend serves model 'beta' version 7");
  EXPECT_TRUE(answers.at("req-4").error_message().empty());
  EXPECT_EQ(served_by(answers.at("req-4").infer_response()), "b");
  EXPECT_EQ(answers.at("req-5").error_message(),
            "infergate: no backend serves model 'simple_sequence'");
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// A backend killed under a stream that uses two: what was in flight on it is answered in
// the stream with an error naming the backend; the other backend's messages, and the
// ones sent after, are served; the stream ends OK.
TEST(StreamRouting, ABackendKilledUnderAStreamFailsOnlyWhatWasOnIt) {
  TwoBackendStream f({"--model", "alpha:latency=3s"}, {"--model", "beta"}, kFastHealth);
  Stream* stream = f.stream.get();
  for (std::uint32_t i = 0; i < 3; ++i)
    ASSERT_TRUE(stream->Write(identity_request(64, i, "alpha")));
  ASSERT_TRUE(stream->Write(identity_request(64, 10, "beta")));
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(stream->Read(&r));
  ASSERT_EQ(r.infer_response().id(), "req-10") << r.error_message();
  EXPECT_TRUE(r.error_message().empty());
  f.a.process().signal(SIGKILL);
  std::set<std::string> lost;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_NE(r.error_message().find("infergate: backend a"), std::string::npos)
        << r.error_message();
    lost.insert(r.infer_response().id());
  }
  EXPECT_EQ(lost, (std::set<std::string>{"req-0", "req-1", "req-2"}));
  for (std::uint32_t i = 11; i < 14; ++i)
    ASSERT_TRUE(stream->Write(identity_request(64, i, "beta")));
  stream->WritesDone();
  for (std::uint32_t i = 11; i < 14; ++i) {
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_TRUE(r.error_message().empty()) << r.error_message();
    EXPECT_EQ(r.infer_response().id(), "req-" + std::to_string(i));
  }
  EXPECT_FALSE(stream->Read(&r));
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// limits.max_stream_messages_in_flight, end to end: a stream of 64 messages to a slow
// model never has more than the cap on its backend, and every message is answered.
TEST(StreamRouting, AStreamKeepsAtMostItsCapOfMessagesOnTheBackends) {
  Sim a("a", {"--model", "alpha:latency=100ms,instances=64"});
  Gateway gateway({{"a", a.address()}}, "limits:\n  max_stream_messages_in_flight: 8\n");
  auto stub = make_stub(gateway.port());
  auto c = context();
  auto stream = stub->ModelStreamInfer(c.get());
  std::atomic<double> peak{0};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    wait_until(
        [&] {
          peak = std::max(peak.load(), a.metric("infergate_sim_inflight_requests"));
          return done.load();
        },
        60s);
  });
  constexpr int kMessages = 64;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(stream->Write(identity_request(64, static_cast<std::uint32_t>(i), "alpha")));
  }
  stream->WritesDone();
  const auto answers = read_answers(*stream, kMessages + 1);
  done = true;
  sampler.join();
  EXPECT_EQ(answers.size(), static_cast<size_t>(kMessages));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_GT(peak.load(), 1.0) << "the messages should have overlapped";
  EXPECT_LE(peak.load(), 8.0);
}

}  // namespace
}  // namespace infergate::testing
