#include "routing/admission.h"

#include <gtest/gtest.h>

namespace infergate::routing {
namespace {

using namespace std::chrono_literals;
using AC = AdmissionController;
using TP = AC::TimePoint;

const TP t0 = TP{} + 1000s;

AC::Request req(std::uint64_t id, std::string job, std::uint64_t bytes = 100,
                TP deadline = TP::max()) {
  return AC::Request{.id = id, .job = std::move(job), .bytes = bytes, .deadline = deadline};
}

TEST(Admission, MaxInflightAdmitsUpToTheCapThenQueues) {
  AC ac({.max_inflight = 2});
  EXPECT_EQ(ac.admit(req(1, "a"), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(2, "a"), t0).verdict, AC::Verdict::kAdmitted);
  AC::Decision d = ac.admit(req(3, "a"), t0);
  EXPECT_EQ(d.verdict, AC::Verdict::kQueued);
  EXPECT_EQ(d.limit, Limit::kMaxInflight);
  EXPECT_EQ(ac.queued(), 1u);
  EXPECT_TRUE(ac.poll(t0).empty());
  ac.release(req(1, "a"), t0);
  auto out = ac.poll(t0 + 5ms);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_TRUE(out[0].admitted);
  EXPECT_EQ(out[0].waited, 5ms);
  EXPECT_EQ(ac.inflight(), 2u);
}

TEST(Admission, PerJobCapLeavesOtherJobsAlone) {
  AC ac({.per_job_max_inflight = 1});
  EXPECT_EQ(ac.admit(req(1, "a"), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(2, "a"), t0).limit, Limit::kPerJobInflight);
  // Job b is not held back by a's cap once the queue has been served.
  EXPECT_EQ(ac.admit(req(3, "b"), t0).verdict, AC::Verdict::kQueued);
  auto out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
}

TEST(Admission, BytesInFlightCountsRequestSizes) {
  AC ac({.max_bytes_in_flight = 1000});
  EXPECT_EQ(ac.admit(req(1, "a", 600), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(2, "a", 400), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(3, "a", 1), t0).limit, Limit::kBytesInFlight);
  ac.release(req(1, "a", 600), t0);
  EXPECT_EQ(ac.poll(t0).size(), 1u);
  EXPECT_EQ(ac.bytes_in_flight(), 401u);
}

TEST(Admission, ARequestLargerThanTheBudgetGoesAlone) {
  AC ac({.max_bytes_in_flight = 1000});
  EXPECT_EQ(ac.admit(req(1, "a", 5000), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(2, "a", 10), t0).verdict, AC::Verdict::kQueued);
}

TEST(Admission, TokenBucketArithmeticAtTheByteLevel) {
  // 1000 bytes/s with a 500-byte bucket.
  AC ac({.link_bytes_per_second = 1000, .link_burst_bytes = 500});
  EXPECT_EQ(ac.admit(req(1, "a", 300), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_DOUBLE_EQ(ac.tokens(t0), 200);
  EXPECT_EQ(ac.admit(req(2, "a", 700), t0).verdict, AC::Verdict::kAdmitted);  // into debt
  EXPECT_DOUBLE_EQ(ac.tokens(t0), -500);
  AC::Decision d = ac.admit(req(3, "a", 1), t0);
  EXPECT_EQ(d.limit, Limit::kLinkBandwidth);
  // The debt is paid after 0.5 s: that is when to poll.
  ASSERT_TRUE(ac.next_wake(t0));
  EXPECT_EQ(*ac.next_wake(t0), t0 + 500ms);
  EXPECT_TRUE(ac.poll(t0 + 499ms).empty());
  EXPECT_EQ(ac.poll(t0 + 500ms).size(), 1u);
  // Refill never exceeds the bucket.
  EXPECT_DOUBLE_EQ(ac.tokens(t0 + 100s), 500);
}

TEST(Admission, FairOrderAcrossJobs) {
  AC ac({.max_inflight = 1});
  ASSERT_EQ(ac.admit(req(100, "busy"), t0).verdict, AC::Verdict::kAdmitted);
  for (std::uint64_t i = 1; i <= 6; ++i) ac.admit(req(i, "burst"), t0);  // a burst first
  ac.admit(req(11, "quiet"), t0);
  ac.admit(req(12, "quiet"), t0);
  std::vector<std::string> order;
  AC::Request running = req(100, "busy");
  for (int i = 0; i < 8; ++i) {
    ac.release(running, t0);
    auto out = ac.poll(t0);
    ASSERT_EQ(out.size(), 1u);
    running = req(out[0].id, out[0].id > 10 ? "quiet" : "burst");
    order.push_back(running.job);
  }
  EXPECT_EQ(ac.queued(), 0u);
  // The quiet job's two requests are not stuck behind the burst's six.
  EXPECT_EQ(order, (std::vector<std::string>{"burst", "quiet", "burst", "quiet", "burst", "burst",
                                             "burst", "burst"}));
}

TEST(Admission, ALargeRequestKeepsItsTurnAgainstSmallerOnes) {
  AC ac({.max_bytes_in_flight = 1000});
  ASSERT_EQ(ac.admit(req(1, "small", 600), t0).verdict, AC::Verdict::kAdmitted);
  EXPECT_EQ(ac.admit(req(2, "large", 900), t0).limit, Limit::kBytesInFlight);
  ac.admit(req(3, "small", 300), t0);  // would fit, but the large one was first
  EXPECT_TRUE(ac.poll(t0).empty());
  ac.release(req(1, "small", 600), t0);
  auto out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 2u);
  ac.release(req(2, "large", 900), t0);
  out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
}

TEST(Admission, QueueTimeoutAndDeadlineExpire) {
  AC ac({.max_inflight = 1, .queue_timeout = 2s});
  ac.admit(req(1, "a"), t0);
  ac.admit(req(2, "a", 100, t0 + 1s), t0);  // its own deadline comes first
  ac.admit(req(3, "a"), t0);
  EXPECT_EQ(*ac.next_wake(t0), t0 + 1s);
  auto out = ac.poll(t0 + 1s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 2u);
  EXPECT_FALSE(out[0].admitted);
  EXPECT_EQ(out[0].limit, Limit::kDeadline);
  out = ac.poll(t0 + 2s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].limit, Limit::kQueueTimeout);
  EXPECT_GT(out[0].pushback.count(), 0);
  EXPECT_EQ(ac.queued(), 0u);
}

TEST(Admission, QueueFullRejectsWithPushback) {
  AC ac({.max_inflight = 1, .max_queue = 1});
  ac.admit(req(1, "a"), t0);
  EXPECT_EQ(ac.admit(req(2, "a"), t0).verdict, AC::Verdict::kQueued);
  AC::Decision d = ac.admit(req(3, "a"), t0);
  EXPECT_EQ(d.verdict, AC::Verdict::kRejected);
  EXPECT_EQ(d.limit, Limit::kQueueFull);
  EXPECT_GT(d.pushback.count(), 0);
}

TEST(Admission, CancelLeavesTheQueueAndReleaseFreesEverything) {
  AC ac({.max_inflight = 1, .max_bytes_in_flight = 10000});
  ac.admit(req(1, "a"), t0);
  ac.admit(req(2, "a"), t0);
  EXPECT_TRUE(ac.cancel(2));
  EXPECT_FALSE(ac.cancel(2));
  EXPECT_EQ(ac.queued(), 0u);
  ac.release(req(1, "a"), t0);
  EXPECT_EQ(ac.inflight(), 0u);
  EXPECT_EQ(ac.bytes_in_flight(), 0u);
  EXPECT_TRUE(ac.poll(t0).empty());
}

TEST(Admission, JobCapRefusesNewJobsUntilOneGoesIdle) {
  AC ac({.max_jobs = 2, .job_idle_timeout = 60s});
  EXPECT_TRUE(ac.touch_job("a", t0));
  EXPECT_TRUE(ac.touch_job("b", t0));
  EXPECT_FALSE(ac.touch_job("c", t0 + 1s));
  EXPECT_TRUE(ac.touch_job("a", t0 + 30s));  // admitted jobs keep service
  // b made its last request at t0; after 60 s idle it no longer counts.
  EXPECT_TRUE(ac.touch_job("c", t0 + 61s));
  EXPECT_EQ(ac.active_jobs(t0 + 61s), 2u);
  EXPECT_FALSE(ac.touch_job("b", t0 + 62s));
}

TEST(Admission, AJobWithRequestsInFlightStaysActive) {
  AC ac({.max_jobs = 1, .job_idle_timeout = 1s});
  ASSERT_TRUE(ac.touch_job("a", t0));
  ac.admit(req(1, "a"), t0);
  EXPECT_FALSE(ac.touch_job("b", t0 + 10s));  // a's request is still running
  ac.release(req(1, "a"), t0 + 10s);
  EXPECT_TRUE(ac.touch_job("b", t0 + 12s));
}

}  // namespace
}  // namespace infergate::routing
