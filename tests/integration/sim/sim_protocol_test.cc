// infergate-sim answers every RPC of the KServe v2 protocol as Triton would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/sim/sim_harness.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kRpc = 5s;

TEST(SimProtocol, HealthRpcs) {
  Sim sim({"--name", "h", "--model", "m:versions=1|3", "--model", "off:ready=false"});
  ASSERT_TRUE(sim.ok());
  {
    inference::ServerLiveResponse live;
    ASSERT_TRUE(sim.stub().ServerLive(context_with_deadline(kRpc).get(), {}, &live).ok());
    EXPECT_TRUE(live.live());
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(sim.stub().ServerReady(context_with_deadline(kRpc).get(), {}, &ready).ok());
    EXPECT_TRUE(ready.ready());
  }
  auto model_ready = [&](const std::string& name, const std::string& version) {
    inference::ModelReadyRequest req;
    req.set_name(name);
    req.set_version(version);
    inference::ModelReadyResponse resp;
    EXPECT_TRUE(sim.stub().ModelReady(context_with_deadline(kRpc).get(), req, &resp).ok());
    return resp.ready();
  };
  EXPECT_TRUE(model_ready("m", ""));
  EXPECT_TRUE(model_ready("m", "3"));
  EXPECT_FALSE(model_ready("m", "2"));
  EXPECT_FALSE(model_ready("off", ""));
  EXPECT_FALSE(model_ready("nope", ""));

  auto health = grpc::health::v1::Health::NewStub(sim.channel());
  grpc::health::v1::HealthCheckResponse check;
  ASSERT_TRUE(health->Check(context_with_deadline(kRpc).get(), {}, &check).ok());
  EXPECT_EQ(check.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(SimProtocol, ServerAndModelMetadata) {
  Sim sim({"--model", "m:versions=1|2,max_batch=8", "--model", "acc:kind=accumulate"});
  ASSERT_TRUE(sim.ok());
  inference::ServerMetadataResponse server;
  ASSERT_TRUE(sim.stub().ServerMetadata(context_with_deadline(kRpc).get(), {}, &server).ok());
  EXPECT_EQ(server.name(), "triton");  // a stand-in for Triton: clients check the name
  EXPECT_THAT(server.version(), HasSubstr("."));
  EXPECT_THAT(server.extensions(), Contains("model_repository(unload_dependents)"));
  EXPECT_THAT(server.extensions(), Contains("statistics"));

  inference::ModelMetadataRequest req;
  req.set_name("m");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta).ok());
  EXPECT_EQ(meta.name(), "m");
  EXPECT_THAT(meta.versions(), ElementsAre("1", "2"));
  EXPECT_EQ(meta.platform(), "infergate_sim");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), "INPUT0");
  EXPECT_THAT(meta.inputs(0).shape(), ElementsAre(-1, -1));  // batch dimension first
  ASSERT_EQ(meta.outputs_size(), 1);
  EXPECT_EQ(meta.outputs(0).name(), "OUTPUT0");

  req.set_name("acc");
  ASSERT_TRUE(sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta).ok());
  EXPECT_EQ(meta.inputs(0).datatype(), "INT32");
  EXPECT_THAT(meta.inputs(0).shape(), ElementsAre(1));

  req.set_name("nope");
  grpc::Status s = sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_name("m");
  req.set_version("7");
  s = sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(SimProtocol, TritonsExampleModels) {
  Sim sim({"--model", "simple:kind=simple", "--model", "simple_string:kind=simple_string",
           "--model", "simple_sequence:kind=simple_sequence"});
  ASSERT_TRUE(sim.ok());
  inference::ModelMetadataRequest req;
  inference::ModelMetadataResponse meta;
  req.set_name("simple");
  ASSERT_TRUE(sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta).ok());
  ASSERT_EQ(meta.inputs_size(), 2);
  EXPECT_EQ(meta.inputs(1).name(), "INPUT1");
  EXPECT_EQ(meta.outputs(1).name(), "OUTPUT1");
  EXPECT_THAT(meta.inputs(0).shape(), ElementsAre(16));
  req.set_name("simple_string");
  ASSERT_TRUE(sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta).ok());
  EXPECT_EQ(meta.inputs(0).datatype(), "BYTES");
  req.set_name("simple_sequence");
  ASSERT_TRUE(sim.stub().ModelMetadata(context_with_deadline(kRpc).get(), req, &meta).ok());
  EXPECT_EQ(meta.inputs(0).name(), "INPUT");

  // simple: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.
  inference::ModelInferRequest infer;
  infer.set_model_name("simple");
  for (const char* name : {"INPUT0", "INPUT1"}) {
    auto* in = infer.add_inputs();
    in->set_name(name);
    in->set_datatype("INT32");
    in->add_shape(1);
    in->add_shape(16);
    for (int i = 0; i < 16; ++i) {
      in->mutable_contents()->add_int_contents(std::string(name) == "INPUT0" ? i : 1);
    }
  }
  inference::ModelInferResponse out;
  grpc::Status s = sim.stub().ModelInfer(context_with_deadline(kRpc).get(), infer, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.outputs(0).contents().int_contents(15), 16);
  EXPECT_EQ(out.outputs(1).contents().int_contents(0), -1);
}

TEST(SimProtocol, ModelConfig) {
  Sim sim({"--model", "m:instances=3,max_batch=4", "--model", "acc:kind=accumulate,seq_idle=2s"});
  ASSERT_TRUE(sim.ok());
  inference::ModelConfigRequest req;
  req.set_name("m");
  inference::ModelConfigResponse resp;
  ASSERT_TRUE(sim.stub().ModelConfig(context_with_deadline(kRpc).get(), req, &resp).ok());
  const inference::ModelConfig& c = resp.config();
  EXPECT_EQ(c.name(), "m");
  EXPECT_EQ(c.max_batch_size(), 4);
  EXPECT_EQ(c.backend(), "infergate_sim");
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_EQ(c.instance_group(0).count(), 3);
  EXPECT_EQ(c.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_FALSE(c.has_sequence_batching());

  req.set_name("acc");
  ASSERT_TRUE(sim.stub().ModelConfig(context_with_deadline(kRpc).get(), req, &resp).ok());
  ASSERT_TRUE(resp.config().has_sequence_batching());
  EXPECT_EQ(resp.config().sequence_batching().max_sequence_idle_microseconds(), 2'000'000u);

  req.set_name("nope");
  EXPECT_EQ(sim.stub().ModelConfig(context_with_deadline(kRpc).get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(SimProtocol, ModelStatistics) {
  Sim sim({"--model", "a:versions=1|2", "--model", "b", "--error-rate", "0"});
  ASSERT_TRUE(sim.ok());
  inference::ModelInferResponse out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("a", 4), &out).ok());
  }
  inference::ModelInferRequest bad = fp32_request("a", 4);
  bad.mutable_inputs(0)->set_datatype("FP64");  // 16 bytes cannot be 4 FP64 elements
  EXPECT_FALSE(sim.stub().ModelInfer(context_with_deadline(kRpc).get(), bad, &out).ok());

  inference::ModelStatisticsRequest req;
  inference::ModelStatisticsResponse all;
  ASSERT_TRUE(sim.stub().ModelStatistics(context_with_deadline(kRpc).get(), req, &all).ok());
  EXPECT_EQ(all.model_stats_size(), 3);  // a/1, a/2, b/1

  req.set_name("a");
  req.set_version("2");
  inference::ModelStatisticsResponse one;
  ASSERT_TRUE(sim.stub().ModelStatistics(context_with_deadline(kRpc).get(), req, &one).ok());
  ASSERT_EQ(one.model_stats_size(), 1);
  const inference::ModelStatistics& s = one.model_stats(0);
  EXPECT_EQ(s.name(), "a");
  EXPECT_EQ(s.version(), "2");
  EXPECT_EQ(s.inference_count(), 3u);
  EXPECT_EQ(s.execution_count(), 3u);
  EXPECT_EQ(s.inference_stats().success().count(), 3u);
  EXPECT_EQ(s.inference_stats().fail().count(), 1u);
  EXPECT_EQ(s.inference_stats().queue().count(), 3u);
  EXPECT_EQ(s.inference_stats().compute_infer().count(), 3u);
  EXPECT_GT(s.last_inference(), 1'600'000'000'000u);  // ms since the epoch

  req.set_name("nope");
  req.clear_version();
  EXPECT_EQ(sim.stub().ModelStatistics(context_with_deadline(kRpc).get(), req, &one).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(SimProtocol, RepositoryIndexLoadUnload) {
  Sim sim({"--model", "m:versions=1|2", "--model", "cold:ready=false"});
  ASSERT_TRUE(sim.ok());
  auto index = [&](bool ready_only) {
    inference::RepositoryIndexRequest req;
    req.set_ready(ready_only);
    inference::RepositoryIndexResponse resp;
    EXPECT_TRUE(sim.stub().RepositoryIndex(context_with_deadline(kRpc).get(), req, &resp).ok());
    std::vector<std::string> rows;
    for (const auto& m : resp.models()) {
      rows.push_back(m.name() + "/" + m.version() + "/" + m.state() + "/" + m.reason());
    }
    return rows;
  };
  auto ready = [&](const std::string& name) {
    inference::ModelReadyRequest req;
    req.set_name(name);
    inference::ModelReadyResponse resp;
    EXPECT_TRUE(sim.stub().ModelReady(context_with_deadline(kRpc).get(), req, &resp).ok());
    return resp.ready();
  };
  EXPECT_THAT(index(false), ElementsAre("m/1/READY/", "m/2/READY/", "cold/1/UNAVAILABLE/unloaded"));
  EXPECT_THAT(index(true), ElementsAre("m/1/READY/", "m/2/READY/"));

  inference::RepositoryModelLoadRequest load;
  load.set_model_name("cold");
  inference::RepositoryModelLoadResponse loaded;
  ASSERT_TRUE(
      sim.stub().RepositoryModelLoad(context_with_deadline(kRpc).get(), load, &loaded).ok());
  EXPECT_TRUE(ready("cold"));
  inference::ModelInferResponse out;
  EXPECT_TRUE(
      sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("cold", 2), &out).ok());

  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("m");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(
      sim.stub().RepositoryModelUnload(context_with_deadline(kRpc).get(), unload, &unloaded).ok());
  EXPECT_FALSE(ready("m"));
  EXPECT_THAT(index(true), ElementsAre("cold/1/READY/"));
  EXPECT_THAT(index(false), Contains("m/2/UNAVAILABLE/unloaded"));
  grpc::Status s =
      sim.stub().ModelInfer(context_with_deadline(kRpc).get(), fp32_request("m", 2), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);

  load.set_model_name("nope");
  s = sim.stub().RepositoryModelLoad(context_with_deadline(kRpc).get(), load, &loaded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("nope"));
}

TEST(SimProtocol, SharedMemoryRegistries) {
  Sim sim({});
  ASSERT_TRUE(sim.ok());
  inference::SystemSharedMemoryRegisterRequest reg;
  reg.set_name("r1");
  reg.set_key("/shm1");
  reg.set_byte_size(1024);
  inference::SystemSharedMemoryRegisterResponse reg_out;
  ASSERT_TRUE(
      sim.stub().SystemSharedMemoryRegister(context_with_deadline(kRpc).get(), reg, &reg_out).ok());
  EXPECT_EQ(sim.stub()
                .SystemSharedMemoryRegister(context_with_deadline(kRpc).get(), reg, &reg_out)
                .error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  inference::SystemSharedMemoryStatusRequest status_req;
  inference::SystemSharedMemoryStatusResponse status;
  ASSERT_TRUE(sim.stub()
                  .SystemSharedMemoryStatus(context_with_deadline(kRpc).get(), status_req, &status)
                  .ok());
  ASSERT_EQ(status.regions().count("r1"), 1u);
  EXPECT_EQ(status.regions().at("r1").key(), "/shm1");
  EXPECT_EQ(status.regions().at("r1").byte_size(), 1024u);
  inference::SystemSharedMemoryUnregisterRequest unreg;
  unreg.set_name("r1");
  inference::SystemSharedMemoryUnregisterResponse unreg_out;
  ASSERT_TRUE(
      sim.stub()
          .SystemSharedMemoryUnregister(context_with_deadline(kRpc).get(), unreg, &unreg_out)
          .ok());
  status_req.set_name("r1");
  EXPECT_EQ(sim.stub()
                .SystemSharedMemoryStatus(context_with_deadline(kRpc).get(), status_req, &status)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);

  inference::CudaSharedMemoryRegisterRequest creg;
  creg.set_name("g1");
  creg.set_device_id(2);
  creg.set_byte_size(4096);
  inference::CudaSharedMemoryRegisterResponse creg_out;
  ASSERT_TRUE(
      sim.stub().CudaSharedMemoryRegister(context_with_deadline(kRpc).get(), creg, &creg_out).ok());
  inference::CudaSharedMemoryStatusResponse cstatus;
  ASSERT_TRUE(
      sim.stub().CudaSharedMemoryStatus(context_with_deadline(kRpc).get(), {}, &cstatus).ok());
  ASSERT_EQ(cstatus.regions().count("g1"), 1u);
  EXPECT_EQ(cstatus.regions().at("g1").device_id(), 2u);
  inference::CudaSharedMemoryUnregisterResponse cunreg_out;
  ASSERT_TRUE(sim.stub()
                  .CudaSharedMemoryUnregister(context_with_deadline(kRpc).get(), {}, &cunreg_out)
                  .ok());
  ASSERT_TRUE(
      sim.stub().CudaSharedMemoryStatus(context_with_deadline(kRpc).get(), {}, &cstatus).ok());
  EXPECT_TRUE(cstatus.regions().empty());
}

TEST(SimProtocol, TraceAndLogSettings) {
  Sim sim({"--model", "m"});
  ASSERT_TRUE(sim.ok());
  inference::TraceSettingRequest trace;
  (*trace.mutable_settings())["trace_rate"].add_value("50");
  inference::TraceSettingResponse trace_out;
  ASSERT_TRUE(sim.stub().TraceSetting(context_with_deadline(kRpc).get(), trace, &trace_out).ok());
  EXPECT_THAT(trace_out.settings().at("trace_rate").value(), ElementsAre("50"));
  EXPECT_THAT(trace_out.settings().at("trace_level").value(), ElementsAre("OFF"));

  inference::TraceSettingRequest model_trace;
  model_trace.set_model_name("m");
  (*model_trace.mutable_settings())["trace_level"].add_value("TIMESTAMPS");
  ASSERT_TRUE(
      sim.stub().TraceSetting(context_with_deadline(kRpc).get(), model_trace, &trace_out).ok());
  EXPECT_THAT(trace_out.settings().at("trace_level").value(), ElementsAre("TIMESTAMPS"));
  EXPECT_THAT(trace_out.settings().at("trace_rate").value(), ElementsAre("50"));

  inference::TraceSettingRequest bad;
  (*bad.mutable_settings())["bogus"].add_value("1");
  EXPECT_EQ(
      sim.stub().TraceSetting(context_with_deadline(kRpc).get(), bad, &trace_out).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);

  inference::LogSettingsRequest log;
  (*log.mutable_settings())["log_verbose_level"].set_uint32_param(2);
  inference::LogSettingsResponse log_out;
  ASSERT_TRUE(sim.stub().LogSettings(context_with_deadline(kRpc).get(), log, &log_out).ok());
  EXPECT_EQ(log_out.settings().at("log_verbose_level").uint32_param(), 2u);
  EXPECT_TRUE(log_out.settings().at("log_info").bool_param());
  inference::LogSettingsRequest wrong_type;
  (*wrong_type.mutable_settings())["log_info"].set_string_param("yes");
  EXPECT_EQ(
      sim.stub().LogSettings(context_with_deadline(kRpc).get(), wrong_type, &log_out).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace infergate::testing
