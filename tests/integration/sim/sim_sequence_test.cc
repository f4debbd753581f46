// infergate-sim's accumulate model: sequence state as Triton keeps it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/integration/sim/sim_harness.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr auto kRpc = 10s;

struct Step {
  grpc::Status status;
  std::int32_t sum = 0;
  std::int64_t count = 0;
};

Step send(Sim& sim, const inference::ModelInferRequest& req) {
  inference::ModelInferResponse resp;
  Step out;
  out.status = sim.stub().ModelInfer(context_with_deadline(kRpc).get(), req, &resp);
  if (!out.status.ok()) return out;
  EXPECT_EQ(resp.outputs(0).name(), "OUTPUT0");
  if (resp.raw_output_contents_size() == 1 && resp.raw_output_contents(0).size() == 4) {
    std::memcpy(&out.sum, resp.raw_output_contents(0).data(), 4);
  } else if (resp.outputs(0).contents().int_contents_size() == 1) {
    out.sum = resp.outputs(0).contents().int_contents(0);
  }
  out.count = resp.parameters().at("sequence_count").int64_param();
  return out;
}

TEST(SimSequence, StartContinueEnd) {
  Sim sim({"--model", "acc:kind=accumulate"});
  ASSERT_TRUE(sim.ok());
  Step s = send(sim, sequence_request("acc", 4242, 5, true, false));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.sum, 5);
  EXPECT_EQ(s.count, 1);
  s = send(sim, sequence_request("acc", 77, 100, true, false));  // another sequence
  EXPECT_EQ(s.sum, 100);
  s = send(sim, sequence_request("acc", 4242, 3, false, false));
  EXPECT_EQ(s.sum, 8);
  EXPECT_EQ(s.count, 2);
  s = send(sim, sequence_request("acc", 4242, -1, false, true));
  EXPECT_EQ(s.sum, 7);
  EXPECT_EQ(s.count, 3);
  // Ended: the sequence is gone.
  s = send(sim, sequence_request("acc", 4242, 1, false, false));
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("sequence 4242"));
  EXPECT_THAT(s.status.error_message(), HasSubstr("START"));
  // A restart begins from zero.
  s = send(sim, sequence_request("acc", 77, 1, true, false));
  EXPECT_EQ(s.sum, 1);
  EXPECT_EQ(s.count, 1);
}

TEST(SimSequence, IdsMustBeGivenAndMayBeStrings) {
  Sim sim({"--model", "acc:kind=accumulate"});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferRequest no_id = sequence_request("acc", 1, 1, true, false);
  no_id.mutable_parameters()->erase("sequence_id");
  Step s = send(sim, no_id);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("must specify sequence_id"));
  EXPECT_EQ(send(sim, sequence_request("acc", 0, 1, true, false)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  inference::ModelInferRequest named = sequence_request("acc", 1, 2, true, false);
  (*named.mutable_parameters())["sequence_id"].set_string_param("job-9");
  ASSERT_TRUE(send(sim, named).status.ok());
  named.mutable_parameters()->erase("sequence_start");
  s = send(sim, named);
  EXPECT_EQ(s.sum, 4);
  EXPECT_EQ(s.count, 2);
  // The numeric id 1 is a different sequence, never started.
  EXPECT_EQ(send(sim, sequence_request("acc", 1, 1, false, false)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(SimSequence, TypedInputAndUnloadDropsState) {
  Sim sim({"--model", "acc:kind=accumulate"});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferRequest req;
  req.set_model_name("acc");
  auto* in = req.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("INT32");
  in->add_shape(3);
  for (int v : {1, 2, 3}) in->mutable_contents()->add_int_contents(v);
  (*req.mutable_parameters())["sequence_id"].set_int64_param(9);
  (*req.mutable_parameters())["sequence_start"].set_bool_param(true);
  Step s = send(sim, req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.sum, 6);

  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("acc");
  inference::RepositoryModelUnloadResponse u;
  ASSERT_TRUE(sim.stub().RepositoryModelUnload(context_with_deadline(kRpc).get(), unload, &u).ok());
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("acc");
  inference::RepositoryModelLoadResponse l;
  ASSERT_TRUE(sim.stub().RepositoryModelLoad(context_with_deadline(kRpc).get(), load, &l).ok());
  EXPECT_EQ(send(sim, sequence_request("acc", 9, 1, false, false)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace infergate::testing
