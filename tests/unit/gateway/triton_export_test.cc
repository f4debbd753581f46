#include "gateway/admin/triton_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>

namespace infergate::gateway {
namespace {

using prometheus::MetricType;
using ::testing::HasSubstr;
using ::testing::Not;

health::TritonStatus full(std::string name, double pending, double utilization) {
  health::TritonStatus s;
  s.backend = std::move(name);
  s.url = "http://10.0.0.5:8002/metrics";
  s.fresh = true;
  s.signals.pending_requests = pending;
  s.signals.queue_seconds = 0.3;
  s.signals.compute_seconds = 2.0;
  s.signals.success_requests = 1280;
  s.signals.failure_requests = 3;
  s.signals.gpu_utilization = utilization;
  s.signals.gpu_memory_used_bytes = 4e9;
  s.signals.gpu_memory_total_bytes = 80e9;
  s.queue_seconds_per_request = 0.01;
  return s;
}

// name -> family, for lookups.
std::map<std::string, prometheus::MetricFamily> by_name(
    const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, prometheus::MetricFamily> out;
  for (const auto& f : families) {
    EXPECT_TRUE(out.emplace(f.name, f).second) << "family twice: " << f.name;
  }
  return out;
}

TEST(TritonExport, NoScrapedBackendsNoFamilies) { EXPECT_TRUE(triton_families({}).empty()); }

TEST(TritonExport, PerBackendSignalsInBaseUnitsAndFleetSums) {
  health::TritonStatus stale = full("b", 100, 0.9);
  stale.fresh = false;  // its last values are known but must not show
  stale.last_error = "connect: Connection refused";
  health::TritonStatus gpu_only;
  gpu_only.backend = "c";
  gpu_only.fresh = true;
  gpu_only.signals.gpu_utilization = 0.25;
  gpu_only.signals.gpu_memory_used_bytes = 1e9;
  gpu_only.signals.gpu_memory_total_bytes = 40e9;
  auto families = by_name(triton_families({full("a", 7, 0.75), stale, gpu_only}));

  const std::map<std::string, MetricType> expected = {
      {"infergate_backend_pending_requests", MetricType::Gauge},
      {"infergate_backend_queue_duration_seconds_total", MetricType::Counter},
      {"infergate_backend_compute_duration_seconds_total", MetricType::Counter},
      {"infergate_backend_inference_success_total", MetricType::Counter},
      {"infergate_backend_inference_failure_total", MetricType::Counter},
      {"infergate_backend_gpu_utilization", MetricType::Gauge},
      {"infergate_backend_gpu_memory_used_bytes", MetricType::Gauge},
      {"infergate_backend_gpu_memory_total_bytes", MetricType::Gauge},
      {"infergate_backend_queue_seconds_per_request", MetricType::Gauge},
      {"infergate_backend_metrics_fresh", MetricType::Gauge},
      {"infergate_fleet_pending_requests", MetricType::Gauge},
      {"infergate_fleet_gpu_memory_used_bytes", MetricType::Gauge},
      {"infergate_fleet_gpu_memory_total_bytes", MetricType::Gauge},
      {"infergate_fleet_gpu_utilization", MetricType::Gauge},
  };
  EXPECT_EQ(families.size(), expected.size());
  for (const auto& [name, type] : expected) {
    ASSERT_TRUE(families.count(name)) << name;
    EXPECT_EQ(families[name].type, type) << name;
    EXPECT_FALSE(families[name].help.empty()) << name;
  }

  // Only fresh backends with the signal appear; the stale one only says it is stale.
  const auto& pending = families["infergate_backend_pending_requests"].metric;
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].label.at(0).name, "backend");
  EXPECT_EQ(pending[0].label.at(0).value, "a");
  EXPECT_EQ(pending[0].gauge.value, 7);
  EXPECT_EQ(families["infergate_backend_queue_duration_seconds_total"].metric.at(0).counter.value,
            0.3);
  EXPECT_EQ(families["infergate_backend_inference_failure_total"].metric.at(0).counter.value, 3);
  EXPECT_EQ(families["infergate_backend_gpu_utilization"].metric.size(), 2u);  // a and c
  const auto& fresh = families["infergate_backend_metrics_fresh"].metric;
  ASSERT_EQ(fresh.size(), 3u);
  EXPECT_EQ(fresh[0].gauge.value, 1);
  EXPECT_EQ(fresh[1].label.at(0).value, "b");
  EXPECT_EQ(fresh[1].gauge.value, 0);
  EXPECT_EQ(fresh[2].gauge.value, 1);

  // Fleet: sums and the mean over fresh backends only (b's 100 pending do not count).
  EXPECT_EQ(families["infergate_fleet_pending_requests"].metric.at(0).gauge.value, 7);
  EXPECT_EQ(families["infergate_fleet_gpu_memory_used_bytes"].metric.at(0).gauge.value, 5e9);
  EXPECT_EQ(families["infergate_fleet_gpu_memory_total_bytes"].metric.at(0).gauge.value, 120e9);
  EXPECT_DOUBLE_EQ(families["infergate_fleet_gpu_utilization"].metric.at(0).gauge.value, 0.5);
  EXPECT_TRUE(families["infergate_fleet_gpu_utilization"].metric.at(0).label.empty());
}

TEST(TritonExport, AllStaleShowsOnlyFreshness) {
  health::TritonStatus a = full("a", 1, 0.5);
  a.fresh = false;
  const std::string text = prometheus::TextSerializer().Serialize(triton_families({a}));
  EXPECT_THAT(text, HasSubstr("infergate_backend_metrics_fresh{backend=\"a\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("infergate_backend_pending_requests")));
  EXPECT_THAT(text, Not(HasSubstr("infergate_fleet_")));
}

TEST(TritonExport, PerModelQueueTimeSummedOverFreshBackends) {
  health::TritonStatus a = full("a", 1, 0.5);
  a.signals.models["particlenet"] = {.pending_requests = 2, .queue_seconds = 1.5, .requests = 10};
  health::TritonStatus b = full("b", 1, 0.5);
  b.signals.models["particlenet"] = {.pending_requests = 1, .queue_seconds = 0.5, .requests = 30};
  health::TritonStatus stale = full("c", 1, 0.5);
  stale.fresh = false;
  stale.signals.models["particlenet"] = {.pending_requests = 50, .queue_seconds = 9, .requests = 9};
  const std::string text = prometheus::TextSerializer().Serialize(triton_families({a, b, stale}));
  EXPECT_THAT(text,
              HasSubstr("infergate_model_backend_pending_requests{model=\"particlenet\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("infergate_model_backend_queue_seconds_total{model=\"particlenet\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("infergate_model_backend_requests_total{model=\"particlenet\"} 40\n"));
}

TEST(TritonExport, SerializesAsPrometheusText) {
  const std::string text =
      prometheus::TextSerializer().Serialize(triton_families({full("gpu-a", 2, 0.5)}));
  EXPECT_THAT(text, HasSubstr("# TYPE infergate_backend_inference_success_total counter\n"));
  EXPECT_THAT(text,
              HasSubstr("infergate_backend_inference_success_total{backend=\"gpu-a\"} 1280\n"));
  EXPECT_THAT(text, HasSubstr("infergate_backend_gpu_utilization{backend=\"gpu-a\"} 0.5\n"));
  EXPECT_THAT(text, HasSubstr("infergate_fleet_pending_requests 2\n"));
  EXPECT_THAT(text, HasSubstr("infergate_backend_metrics_fresh{backend=\"gpu-a\"} 1\n"));
}

}  // namespace
}  // namespace infergate::gateway
