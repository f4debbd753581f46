#include "gateway/fleet/fleet_answers.h"

#include <gtest/gtest.h>

namespace infergate::gateway {
namespace {

inference::ModelStatistics stats(const std::string& name, const std::string& version,
                                 std::uint64_t success, std::uint64_t ns, std::uint64_t last) {
  inference::ModelStatistics s;
  s.set_name(name);
  s.set_version(version);
  s.set_last_inference(last);
  s.set_inference_count(success);
  s.set_execution_count(success);
  s.mutable_inference_stats()->mutable_success()->set_count(success);
  s.mutable_inference_stats()->mutable_success()->set_ns(ns);
  s.mutable_inference_stats()->mutable_queue()->set_count(success);
  s.mutable_inference_stats()->mutable_queue()->set_ns(ns / 2);
  auto* batch = s.add_batch_stats();
  batch->set_batch_size(1);
  batch->mutable_compute_infer()->set_count(success);
  return s;
}

TEST(MergeStatistics, SumsPerModelAndVersion) {
  inference::ModelStatisticsResponse a;
  *a.add_model_stats() = stats("resnet", "1", 10, 1000, 50);
  *a.add_model_stats() = stats("bert", "1", 1, 10, 5);
  inference::ModelStatisticsResponse b;
  *b.add_model_stats() = stats("resnet", "1", 5, 500, 70);
  *b.add_model_stats() = stats("resnet", "2", 3, 30, 60);
  inference::ModelStatisticsResponse merged = merge_statistics({a, b});
  ASSERT_EQ(merged.model_stats_size(), 3);
  const auto& resnet1 = merged.model_stats(0);
  EXPECT_EQ(resnet1.name(), "resnet");
  EXPECT_EQ(resnet1.version(), "1");
  EXPECT_EQ(resnet1.inference_count(), 15u);
  EXPECT_EQ(resnet1.execution_count(), 15u);
  EXPECT_EQ(resnet1.last_inference(), 70u);
  EXPECT_EQ(resnet1.inference_stats().success().count(), 15u);
  EXPECT_EQ(resnet1.inference_stats().success().ns(), 1500u);
  EXPECT_EQ(resnet1.inference_stats().queue().ns(), 750u);
  ASSERT_EQ(resnet1.batch_stats_size(), 1);
  EXPECT_EQ(resnet1.batch_stats(0).compute_infer().count(), 15u);
  EXPECT_EQ(merged.model_stats(2).version(), "2");
  EXPECT_EQ(merged.model_stats(2).inference_count(), 3u);
}

TEST(MergeStatistics, FieldsThisBuildDoesNotKnowSurvive) {
  inference::ModelStatistics s = stats("resnet", "1", 1, 1, 1);
  std::string wire = s.SerializeAsString();
  // Field 99, varint 7: something a newer Triton added.
  wire += std::string("\x98\x06\x07", 3);
  inference::ModelStatisticsResponse a;
  ASSERT_TRUE(a.add_model_stats()->ParseFromString(wire));
  inference::ModelStatisticsResponse b;
  *b.add_model_stats() = stats("resnet", "1", 2, 2, 2);
  inference::ModelStatisticsResponse merged = merge_statistics({a, b});
  const std::string out = merged.model_stats(0).SerializeAsString();
  EXPECT_NE(out.find(std::string("\x98\x06\x07", 3)), std::string::npos);
  EXPECT_EQ(merged.model_stats(0).inference_count(), 3u);
}

routing::Fleet two_backends() {
  std::vector<routing::BackendInfo> infos(2);
  for (int i = 0; i < 2; ++i) {
    infos[i].id = i;
    infos[i].name = "b" + std::to_string(i);
    infos[i].state = routing::BackendState::kHealthy;
    infos[i].runtime = std::make_shared<routing::BackendRuntime>();
  }
  infos[0].index = {{"resnet", "1", "READY", ""}, {"bert", "1", "UNAVAILABLE", "unloaded"}};
  infos[1].index = {{"resnet", "1", "READY", ""}, {"bert", "1", "READY", ""}};
  infos[0].models["resnet"].ready = {"1"};
  infos[1].models["resnet"].ready = {"1"};
  infos[1].models["bert"].ready = {"1"};
  infos[0].extensions = {"statistics", "sequence", "model_repository"};
  infos[1].extensions = {"sequence", "statistics"};
  return routing::Fleet(std::move(infos));
}

TEST(FleetAnswers, IndexIsAUnionWhereReadyWins) {
  inference::RepositoryIndexResponse r = fleet_repository_index(two_backends(), false);
  ASSERT_EQ(r.models_size(), 2);
  EXPECT_EQ(r.models(0).name(), "bert");
  EXPECT_EQ(r.models(0).state(), "READY");
  EXPECT_EQ(r.models(1).name(), "resnet");
}

TEST(FleetAnswers, MetadataExtensionsAreTheSharedOnes) {
  inference::ServerMetadataResponse m = fleet_server_metadata(two_backends());
  EXPECT_EQ(m.name(), "triton") << "no backend said otherwise";
  EXPECT_EQ(m.version(), "");
  ASSERT_EQ(m.extensions_size(), 2);
  EXPECT_EQ(m.extensions(0), "sequence");
  EXPECT_EQ(m.extensions(1), "statistics");
}

TEST(FleetAnswers, MetadataIsTheBackendsNameAndTheirOldestVersion) {
  std::vector<routing::BackendInfo> infos(3);
  const char* versions[] = {"2.41.0", "2.9.1", "2.40.0"};
  for (int i = 0; i < 3; ++i) {
    infos[i].id = i;
    infos[i].name = "b" + std::to_string(i);
    infos[i].state = routing::BackendState::kHealthy;
    infos[i].runtime = std::make_shared<routing::BackendRuntime>();
    infos[i].server_name = "triton";
    infos[i].server_version = versions[i];
  }
  infos[2].state = routing::BackendState::kUnhealthy;
  infos[2].server_version = "1.0.0";  // not healthy: not counted
  inference::ServerMetadataResponse m = fleet_server_metadata(routing::Fleet(std::move(infos)));
  EXPECT_EQ(m.name(), "triton");
  EXPECT_EQ(m.version(), "2.9.1") << "2.9.1 is older than 2.41.0";
}

TEST(FleetAnswers, ReadinessFollowsHealthyBackends) {
  routing::Fleet fleet = two_backends();
  EXPECT_TRUE(fleet_server_ready(fleet).ready());
  inference::ModelReadyRequest q;
  q.set_name("bert");
  EXPECT_TRUE(fleet_model_ready(fleet, q).ready());
  q.set_version("2");
  EXPECT_FALSE(fleet_model_ready(fleet, q).ready());
  EXPECT_FALSE(fleet_server_ready(routing::Fleet({})).ready());
}

}  // namespace
}  // namespace infergate::gateway
