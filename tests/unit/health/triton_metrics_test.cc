#include "health/triton_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace infergate::health {
namespace {

using ::testing::HasSubstr;

// A page as Triton 2.x serves it on :8002/metrics: two models on two GPUs, with the
// failure reasons of recent versions and metrics infergate does not read.
const char* kTritonPage =
    R"(# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="resnet50",version="1"} 1250
nv_inference_request_success{model="bert",version="1"} 30
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="resnet50",reason="REJECTED",version="1"} 0
nv_inference_request_failure{model="resnet50",reason="CANCELED",version="1"} 2
nv_inference_request_failure{model="resnet50",reason="BACKEND",version="1"} 1
nv_inference_request_failure{model="bert",reason="OTHER",version="1"} 0
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{model="resnet50",version="1"} 5000
nv_inference_count{model="bert",version="1"} 30
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds (includes cached requests)
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="resnet50",version="1"} 250000
nv_inference_queue_duration_us{model="bert",version="1"} 50000
# HELP nv_inference_compute_infer_duration_us Cumulative compute inference duration in microseconds (does not include cached requests)
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="resnet50",version="1"} 1500000
nv_inference_compute_infer_duration_us{model="bert",version="1"} 500000
# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="resnet50",version="1"} 3
nv_inference_pending_request_count{model="bert",version="1"} 4
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-5d3a2d1c-7b3e-0000"} 0.5
nv_gpu_utilization{gpu_uuid="GPU-5d3a2d1c-7b3e-0001"} 0.25
# HELP nv_gpu_memory_total_bytes GPU total memory, in bytes
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{gpu_uuid="GPU-5d3a2d1c-7b3e-0000"} 85899345920
nv_gpu_memory_total_bytes{gpu_uuid="GPU-5d3a2d1c-7b3e-0001"} 85899345920
# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-5d3a2d1c-7b3e-0000"} 4294967296
nv_gpu_memory_used_bytes{gpu_uuid="GPU-5d3a2d1c-7b3e-0001"} 2147483648
# HELP nv_gpu_power_usage GPU power usage in watts
# TYPE nv_gpu_power_usage gauge
nv_gpu_power_usage{gpu_uuid="GPU-5d3a2d1c-7b3e-0000"} 70.5
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.125
)";

TEST(TritonMetrics, ARealPageSumsOverModelsAndGpus) {
  TritonParseResult r = parse_triton_metrics(kTritonPage);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.bad_lines, 0u);
  EXPECT_EQ(r.ignored, 0u);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.samples, 22u);
  const TritonSignals& s = r.signals;
  EXPECT_EQ(s.pending_requests, 7);
  EXPECT_DOUBLE_EQ(*s.queue_seconds, 0.3);    // microseconds -> seconds
  EXPECT_DOUBLE_EQ(*s.compute_seconds, 2.0);  // likewise
  EXPECT_EQ(s.success_requests, 1280);
  EXPECT_EQ(s.failure_requests, 3);             // every reason
  EXPECT_DOUBLE_EQ(*s.gpu_utilization, 0.375);  // the mean over GPUs, not the sum
  EXPECT_EQ(s.gpu_memory_used_bytes, 6442450944.0);
  EXPECT_EQ(s.gpu_memory_total_bytes, 171798691840.0);
}

TEST(TritonMetrics, PerModelQueueTimePerRequestAndPending) {
  const TritonSignals s = parse_triton_metrics(kTritonPage).signals;
  ASSERT_EQ(s.models.size(), 2u);
  const TritonModelSignals& resnet = s.models.at("resnet50");
  EXPECT_DOUBLE_EQ(resnet.queue_seconds, 0.25);
  EXPECT_EQ(resnet.requests, 1253);  // success and failure: requests, not inferences (5000)
  EXPECT_EQ(resnet.pending_requests, 3);
  EXPECT_DOUBLE_EQ(s.models.at("bert").queue_seconds, 0.05);
}

TEST(TritonMetrics, PerModelSeriesAreBoundedByModelCount) {
  std::string page;
  for (size_t i = 0; i < TritonSignals::kMaxModels + 50; ++i) {
    page += "nv_inference_pending_request_count{model=\"m" + std::to_string(i) + "\"} 1\n";
  }
  const TritonSignals s = parse_triton_metrics(page).signals;
  EXPECT_EQ(s.models.size(), TritonSignals::kMaxModels);
  EXPECT_EQ(s.pending_requests, static_cast<double>(TritonSignals::kMaxModels + 50));  // all summed
}

TEST(TritonMetrics, TheSimulatorsPageReadsLikeTritons) {
  // What infergate-sim --metrics-listen serves (benchmarks/sim/metrics_text.cc).
  TritonParseResult r = parse_triton_metrics(
      R"(# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="identity",version="1"} 0
nv_inference_pending_request_count{model="slow",version="1"} 2
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-infergate-sim-a"} 0.5
# HELP nv_gpu_memory_total_bytes GPU total memory, in bytes
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{gpu_uuid="GPU-infergate-sim-a"} 85899345920
# HELP infergate_sim_inflight_requests Inference requests currently inside this simulator
# TYPE infergate_sim_inflight_requests gauge
infergate_sim_inflight_requests 3
)");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.signals.pending_requests, 2);
  EXPECT_EQ(r.signals.gpu_utilization, 0.5);
  EXPECT_EQ(r.signals.gpu_memory_total_bytes, 85899345920.0);
  // What the page did not carry stays absent rather than zero.
  EXPECT_FALSE(r.signals.queue_seconds.has_value());
  EXPECT_FALSE(r.signals.success_requests.has_value());
  EXPECT_FALSE(r.signals.gpu_memory_used_bytes.has_value());
}

TEST(TritonMetrics, EscapedLabelValuesAndEveryValidSpelling) {
  TritonParseResult r = parse_triton_metrics(
      "nv_inference_pending_request_count{model=\"a \\\"quoted\\\" name\",version=\"1\"} 1\n"
      "nv_inference_pending_request_count{model=\"back\\\\slash, and } brace\",version=\"1\"} 2\n"
      "nv_inference_pending_request_count{model=\"two\\nlines\",version=\"1\",} 3\r\n"
      "nv_inference_pending_request_count { model = \"spaced\" , version=\"1\" } 4\n"
      "nv_inference_pending_request_count{model=\"\",version=\"1\"}\t+5 1712345678901\n"
      "  nv_inference_pending_request_count{model=\"x\",version=\"2\"} 6e0   \n"
      "nv_inference_pending_request_count{} 7\n"
      "nv_gpu_utilization 1.5e-1\n"
      "\n"
      "# a comment that is neither HELP nor TYPE\n"
      "#\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.bad_lines, 0u) << (r.problems.empty() ? "" : r.problems.front());
  EXPECT_EQ(r.signals.pending_requests, 28);
  EXPECT_DOUBLE_EQ(*r.signals.gpu_utilization, 0.15);
}

TEST(TritonMetrics, NanAndInfinityAreNotSummed) {
  TritonParseResult r = parse_triton_metrics(
      "nv_gpu_utilization{gpu_uuid=\"GPU-0\"} NaN\n"
      "nv_gpu_utilization{gpu_uuid=\"GPU-1\"} 0.5\n"
      "nv_inference_pending_request_count{model=\"m\",version=\"1\"} +Inf\n"
      "nv_inference_queue_duration_us{model=\"m\",version=\"1\"} -Inf\n"
      "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-0\"} -1\n"
      "process_start_time_seconds +Inf\n");  // not ours: a sample, nothing more
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.bad_lines, 0u);
  EXPECT_EQ(r.samples, 6u);
  EXPECT_EQ(r.ignored, 4u);
  EXPECT_EQ(r.signals.gpu_utilization, 0.5);  // the NaN GPU is left out of the mean
  EXPECT_FALSE(r.signals.pending_requests.has_value());
  EXPECT_FALSE(r.signals.queue_seconds.has_value());
  EXPECT_FALSE(r.signals.gpu_memory_used_bytes.has_value());
  ASSERT_FALSE(r.problems.empty());
  EXPECT_THAT(r.problems.front(), HasSubstr("line 1"));
  EXPECT_THAT(r.problems.front(), HasSubstr("NaN"));
}

TEST(TritonMetrics, OnlyUnusableSignalsIsAnError) {
  TritonParseResult r = parse_triton_metrics("nv_gpu_utilization{gpu_uuid=\"GPU-0\"} nan\n");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.signals.any());
  EXPECT_THAT(r.error, HasSubstr("unusable"));
}

TEST(TritonMetrics, UtilizationIsClampedAndRepeatedSeriesCountOnce) {
  TritonParseResult r = parse_triton_metrics(
      "nv_gpu_utilization{gpu_uuid=\"GPU-0\"} 3\n"
      "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-0\"} 100\n"
      "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-0\"} 100\n"  // the same series again
      "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-1\"} 50\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.signals.gpu_utilization, 1.0);
  EXPECT_EQ(r.signals.gpu_memory_used_bytes, 150);
  EXPECT_EQ(r.ignored, 1u);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0], HasSubstr("line 3"));
  EXPECT_THAT(r.problems[0], HasSubstr("repeats"));
}

TEST(TritonMetrics, BadLinesAreReportedWithTheirPlaceAndTheRestStillCounts) {
  TritonParseResult r = parse_triton_metrics(
      "nv_gpu_utilization{gpu_uuid=\"GPU-0\"} 0.5\n"
      "nv_gpu_utilization{gpu_uuid=\"GPU-1 0.5\n"      // unterminated value
      "nv_gpu_utilization{gpu_uuid=\"GPU-2\"} lots\n"  // not a number
      "nv_gpu_utilization{gpu_uuid=\"GPU-3\"} 0.5 12 13\n"
      "nv_gpu_utilization{gpu_uuid=\"GPU-4\\t\"} 0.5\n"  // \t is no escape
      "nv_gpu_utilization{gpu_uuid=\"a\",gpu_uuid=\"b\"} 0.5\n"
      "nv_gpu_utilization{gpu_uuid=GPU-6} 0.5\n"
      "nv_gpu_utilization{9gpu=\"x\"} 0.5\n"
      "nv_gpu_utilization\n"
      "nv_gpu_utilization0.5\n"
      "nv_gpu_utilization{gpu_uuid=\"GPU-7\"} 1e999\n"  // out of range
      "{gpu_uuid=\"GPU-8\"} 0.5\n"
      "nv_gpu_utilization{gpu_uuid=\"GPU-9\"} 0.5 soon\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.samples, 1u);
  EXPECT_EQ(r.bad_lines, 12u);
  EXPECT_EQ(r.signals.gpu_utilization, 0.5);
  ASSERT_EQ(r.problems.size(), 5u);  // the first few only
  EXPECT_EQ(r.problems[0], "line 2 column 39: unterminated label value");
  EXPECT_EQ(r.problems[1], "line 3 column 38: the value is not a number");
  EXPECT_THAT(r.problems[2], HasSubstr("line 4"));
  EXPECT_THAT(r.problems[2], HasSubstr("unexpected text after the value"));
  EXPECT_THAT(r.problems[3], HasSubstr("invalid escape"));
  EXPECT_THAT(r.problems[4], HasSubstr("a label appears twice"));
}

TEST(TritonMetrics, MissingSignalsAndForeignPages) {
  TritonParseResult empty = parse_triton_metrics("");
  EXPECT_FALSE(empty.ok());
  EXPECT_THAT(empty.error, HasSubstr("empty"));
  EXPECT_FALSE(parse_triton_metrics("\n\n  \r\n").ok());
  TritonParseResult comments = parse_triton_metrics("# HELP nv_gpu_utilization GPU use\n#\n");
  EXPECT_FALSE(comments.ok());
  EXPECT_THAT(comments.error, HasSubstr("comments only"));

  TritonParseResult other =
      parse_triton_metrics("# TYPE go_goroutines gauge\ngo_goroutines 12\nprocess_open_fds 9\n");
  EXPECT_FALSE(other.ok());
  EXPECT_EQ(other.samples, 2u);
  EXPECT_THAT(other.error, HasSubstr("no Triton signals"));

  TritonParseResult html = parse_triton_metrics(
      "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>\n");
  EXPECT_FALSE(html.ok());
  EXPECT_EQ(html.bad_lines, 4u);
  EXPECT_THAT(html.error, HasSubstr("not Prometheus text: 4 of 4 lines unreadable"));
  EXPECT_THAT(html.error, HasSubstr("line 1 column 1"));
}

TEST(TritonMetrics, EveryTruncationOfARealPageIsSafe) {
  const std::string page = kTritonPage;
  const TritonSignals whole = parse_triton_metrics(page).signals;
  for (size_t n = 0; n <= page.size(); ++n) {
    TritonParseResult r = parse_triton_metrics(std::string_view(page).substr(0, n));
    EXPECT_LE(r.bad_lines, 1u) << n;  // only the cut line can be broken
    EXPECT_EQ(r.ok(), r.signals.any()) << n;
    if (r.signals.pending_requests) {
      EXPECT_LE(*r.signals.pending_requests, *whole.pending_requests);
    }
    if (r.signals.success_requests) {
      EXPECT_LE(*r.signals.success_requests, *whole.success_requests);
    }
  }
  // Cut inside the last GPU line's label: that line is reported, the rest counts.
  const size_t cut = page.find("nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-5d3a2d1c-7b3e-0001");
  TritonParseResult r = parse_triton_metrics(std::string_view(page).substr(0, cut + 40));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.bad_lines, 1u);
  EXPECT_EQ(r.signals.gpu_memory_used_bytes, 4294967296.0);
  EXPECT_EQ(r.signals.pending_requests, 7);
}

TEST(TritonMetrics, BinaryGarbageIsAnErrorNotACrash) {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::string bytes(1 + rng() % 70000, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    TritonParseResult r = parse_triton_metrics(bytes);
    EXPECT_FALSE(r.ok()) << round;
    EXPECT_FALSE(r.error.empty());
    EXPECT_LE(r.problems.size(), 5u);
    for (const std::string& p : r.problems) {
      for (char c : p) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "problems never quote the input";
    }
  }
  // Garbage with a NUL inside an otherwise good line, and a gzip header.
  EXPECT_FALSE(parse_triton_metrics(std::string("nv_gpu_utilization\0 0.5\n", 24)).ok());
  EXPECT_FALSE(parse_triton_metrics(std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8)).ok());
}

}  // namespace
}  // namespace infergate::health
