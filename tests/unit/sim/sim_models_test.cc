// The simulated models and the input checks, on protobuf messages (no server).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "benchmarks/sim/sim_models.h"
#include "benchmarks/sim/tensor_checks.h"

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

inference::ModelInferRequest raw(const std::string& name, const std::string& datatype,
                                 std::vector<std::int64_t> shape, std::string data) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (std::int64_t d : shape) in->add_shape(d);
  r.add_raw_input_contents(std::move(data));
  return r;
}

TEST(TensorChecks, SizesMustMatchShapes) {
  std::uint64_t bytes = 0;
  EXPECT_TRUE(check_inputs(raw("x", "FP32", {2, 3}, std::string(24, '\0')), &bytes).ok());
  EXPECT_EQ(bytes, 24u);
  EXPECT_TRUE(check_inputs(raw("x", "FP16", {4}, std::string(8, '\0')), &bytes).ok());
  EXPECT_TRUE(check_inputs(raw("x", "UINT8", {0}, ""), &bytes).ok());
  grpc::Status s = check_inputs(raw("x", "INT64", {3}, std::string(16, '\0')), &bytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "input 'x' has 16 bytes of raw data, but shape [3] of INT64 needs 24 bytes");
  EXPECT_FALSE(check_inputs(raw("x", "FP32", {-1}, ""), &bytes).ok());
  EXPECT_FALSE(check_inputs(raw("x", "FP32", {1LL << 40, 1LL << 40}, ""), &bytes).ok());
  EXPECT_THAT(check_inputs(raw("x", "STRING", {1}, "a"), &bytes).error_message(),
              HasSubstr("unknown datatype 'STRING'"));
}

TEST(TensorChecks, BytesElementsAreLengthPrefixed) {
  std::uint64_t bytes = 0;
  const std::string two("\x02\0\0\0hi\x00\0\0\0", 10);
  EXPECT_TRUE(check_inputs(raw("s", "BYTES", {2}, two), &bytes).ok());
  EXPECT_FALSE(check_inputs(raw("s", "BYTES", {3}, two), &bytes).ok());
  EXPECT_FALSE(check_inputs(raw("s", "BYTES", {1}, std::string("\x09\0\0\0hi", 6)), &bytes).ok());
  EXPECT_FALSE(check_inputs(raw("s", "BYTES", {1}, std::string("\x01\0", 2)), &bytes).ok());
}

TEST(TensorChecks, RawAndTypedRules) {
  std::uint64_t bytes = 0;
  inference::ModelInferRequest typed;
  auto* in = typed.add_inputs();
  in->set_name("t");
  in->set_datatype("FP64");
  in->add_shape(2);
  in->mutable_contents()->add_fp64_contents(1.0);
  EXPECT_THAT(check_inputs(typed, &bytes).error_message(), HasSubstr("holds 1 FP64 elements"));
  in->mutable_contents()->add_fp64_contents(2.0);
  EXPECT_TRUE(check_inputs(typed, &bytes).ok());
  EXPECT_EQ(bytes, 16u);
  in->set_datatype("BF16");
  EXPECT_THAT(check_inputs(typed, &bytes).error_message(), HasSubstr("raw_input_contents"));

  inference::ModelInferRequest two = raw("a", "UINT8", {1}, "x");
  *two.add_inputs() = two.inputs(0);
  EXPECT_THAT(check_inputs(two, &bytes).error_message(), HasSubstr("raw_input_contents entries"));
  two.add_raw_input_contents("y");
  EXPECT_THAT(check_inputs(two, &bytes).error_message(), HasSubstr("'a' is given twice"));
}

TEST(Identity, OutputNames) {
  EXPECT_EQ(identity_output_name("INPUT0"), "OUTPUT0");
  EXPECT_EQ(identity_output_name("INPUT__1"), "OUTPUT__1");
  EXPECT_EQ(identity_output_name("input_ids"), "output_ids");
  EXPECT_EQ(identity_output_name("pixels"), "OUTPUT_pixels");
}

TEST(Identity, CopiesOrMovesTensors) {
  inference::ModelInferRequest req = raw("INPUT0", "UINT8", {3}, "abc");
  inference::ModelInferResponse copied;
  ASSERT_TRUE(run_identity(req, nullptr, &copied).ok());
  EXPECT_EQ(copied.raw_output_contents(0), "abc");
  EXPECT_EQ(req.raw_input_contents(0), "abc");
  inference::ModelInferResponse moved;
  ASSERT_TRUE(run_identity(req, &req, &moved).ok());
  EXPECT_EQ(moved.raw_output_contents(0), "abc");
  EXPECT_EQ(req.raw_input_contents(0), "");  // taken, not copied
  EXPECT_EQ(moved.outputs(0).name(), "OUTPUT0");
  EXPECT_THAT(moved.outputs(0).shape(), ElementsAre(3));
}

TEST(Identity, RequestedOutputs) {
  inference::ModelInferRequest req = raw("INPUT0", "UINT8", {1}, "a");
  *req.add_inputs() = req.inputs(0);
  req.mutable_inputs(1)->set_name("INPUT1");
  req.add_raw_input_contents("b");
  req.add_outputs()->set_name("OUTPUT1");
  inference::ModelInferResponse resp;
  ASSERT_TRUE(run_identity(req, nullptr, &resp).ok());
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0), "b");
  req.add_outputs()->set_name("OUTPUT1");
  EXPECT_THAT(run_identity(req, nullptr, &resp).error_message(), HasSubstr("requested twice"));
  inference::ModelInferRequest clash = raw("X", "UINT8", {1}, "a");
  *clash.add_inputs() = clash.inputs(0);
  clash.mutable_inputs(1)->set_name("INPUT_X");
  clash.add_raw_input_contents("b");
  EXPECT_THAT(run_identity(clash, nullptr, &resp).error_message(), HasSubstr("OUTPUT_X"));
}

TEST(Accumulate, SumsPerSequence) {
  ModelSpec spec{.name = "acc", .kind = ModelSpec::Kind::kAccumulate};
  SimModel model(spec, true);
  VersionState& v = *model.versions()[0];
  const SteadyTime now = SteadyTime{} + 1h;
  std::string data(8, '\0');
  const std::int32_t values[2] = {3, 4};
  std::memcpy(data.data(), values, 8);
  inference::ModelInferRequest req = raw("INPUT0", "INT32", {2}, data);
  (*req.mutable_parameters())["sequence_id"].set_int64_param(5);
  (*req.mutable_parameters())["sequence_start"].set_bool_param(true);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(run_accumulate(model, v, req, now, &resp).ok());
  std::int32_t sum = 0;
  std::memcpy(&sum, resp.raw_output_contents(0).data(), 4);
  EXPECT_EQ(sum, 7);
  EXPECT_EQ(resp.parameters().at("sequence_count").int64_param(), 1);

  (*req.mutable_parameters())["sequence_start"].set_int64_param(1);
  EXPECT_THAT(run_accumulate(model, v, req, now, &resp).error_message(),
              HasSubstr("sequence_start must be a bool"));
  req.mutable_parameters()->erase("sequence_start");
  (*req.mutable_parameters())["sequence_id"].set_double_param(5);
  EXPECT_FALSE(run_accumulate(model, v, req, now, &resp).ok());
  (*req.mutable_parameters())["sequence_id"].set_uint64_param(6);
  EXPECT_THAT(run_accumulate(model, v, req, now, &resp).error_message(),
              HasSubstr("sequence 6 to model 'acc'"));
  req.mutable_inputs(0)->set_datatype("FP32");
  EXPECT_THAT(run_accumulate(model, v, req, now, &resp).error_message(), HasSubstr("INT32"));
}

// Triton's example models, as its documented clients call them.
inference::ModelInferRequest simple_request(bool strings, bool raw_form) {
  inference::ModelInferRequest r;
  r.set_model_name(strings ? "simple_string" : "simple");
  for (const char* name : {"INPUT0", "INPUT1"}) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype(strings ? "BYTES" : "INT32");
    in->add_shape(1);
    in->add_shape(16);
    const bool first = std::string(name) == "INPUT0";
    std::string data;
    for (int i = 0; i < 16; ++i) {
      const std::int32_t v = first ? i : 1;  // as simple_grpc_infer_client: 0..15 and 1s
      if (strings) {
        const std::string text = std::to_string(v);
        if (raw_form) {
          const auto n = static_cast<std::uint32_t>(text.size());
          data.append(reinterpret_cast<const char*>(&n), 4);
          data += text;
        } else {
          in->mutable_contents()->add_bytes_contents(text);
        }
      } else if (raw_form) {
        data.append(reinterpret_cast<const char*>(&v), 4);
      } else {
        in->mutable_contents()->add_int_contents(v);
      }
    }
    if (raw_form) r.add_raw_input_contents(data);
  }
  return r;
}

TEST(Simple, AddsAndSubtractsInt32InBothForms) {
  for (bool raw_form : {true, false}) {
    inference::ModelInferResponse resp;
    ASSERT_TRUE(run_simple(simple_request(false, raw_form), false, &resp).ok());
    ASSERT_EQ(resp.outputs_size(), 2);
    EXPECT_EQ(resp.outputs(0).name(), "OUTPUT0");
    EXPECT_EQ(resp.outputs(1).name(), "OUTPUT1");
    for (int i = 0; i < 16; ++i) {
      std::int32_t sum = 0;
      std::int32_t diff = 0;
      if (raw_form) {
        std::memcpy(&sum, resp.raw_output_contents(0).data() + 4 * i, 4);
        std::memcpy(&diff, resp.raw_output_contents(1).data() + 4 * i, 4);
      } else {
        sum = resp.outputs(0).contents().int_contents(i);
        diff = resp.outputs(1).contents().int_contents(i);
      }
      EXPECT_EQ(sum, i + 1);
      EXPECT_EQ(diff, i - 1);
    }
  }
}

TEST(Simple, StringsHoldNumbers) {
  inference::ModelInferResponse resp;
  ASSERT_TRUE(run_simple(simple_request(true, false), true, &resp).ok());
  EXPECT_EQ(resp.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(resp.outputs(0).contents().bytes_contents(15), "16");
  EXPECT_EQ(resp.outputs(1).contents().bytes_contents(0), "-1");
  inference::ModelInferResponse raw_resp;
  ASSERT_TRUE(run_simple(simple_request(true, true), true, &raw_resp).ok());
  const std::string& out = raw_resp.raw_output_contents(0);
  ASSERT_GE(out.size(), 5u);
  EXPECT_EQ(out.substr(4, 1), "1");  // the first element: length 1, "1"
  inference::ModelInferRequest bad = simple_request(true, false);
  bad.mutable_inputs(1)->mutable_contents()->set_bytes_contents(3, "three");
  EXPECT_THAT(run_simple(bad, true, &resp).error_message(), HasSubstr("not an integer"));
  EXPECT_THAT(run_simple(simple_request(false, false), true, &resp).error_message(),
              HasSubstr("must be BYTES"));
}

TEST(SimpleSequence, AccumulatesWithTritonsNamesAndStartRule) {
  ModelSpec spec{.name = "simple_sequence", .kind = ModelSpec::Kind::kSimpleSequence};
  SimModel model(spec, true);
  VersionState& v = *model.versions()[0];
  const SteadyTime now = SteadyTime{} + 1h;
  auto request = [](std::int32_t value, bool start) {
    inference::ModelInferRequest r;
    r.set_model_name("simple_sequence");
    auto* in = r.add_inputs();
    in->set_name("INPUT");
    in->set_datatype("INT32");
    in->add_shape(1);
    in->mutable_contents()->add_int_contents(value);
    (*r.mutable_parameters())["sequence_id"].set_int64_param(1001);
    if (start) (*r.mutable_parameters())["sequence_start"].set_bool_param(true);
    return r;
  };
  inference::ModelInferResponse resp;
  EXPECT_THAT(run_accumulate(model, v, request(5, false), now, &resp).error_message(),
              HasSubstr("must specify the START flag"));
  ASSERT_TRUE(run_accumulate(model, v, request(5, true), now, &resp).ok());
  inference::ModelInferResponse second;
  ASSERT_TRUE(run_accumulate(model, v, request(7, false), now, &second).ok());
  EXPECT_EQ(second.outputs(0).name(), "OUTPUT");
  EXPECT_EQ(second.outputs(0).contents().int_contents(0), 12);
}

}  // namespace
}  // namespace infergate::sim
