#include "routing/admission.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace infergate::routing {
namespace {

using namespace std::chrono_literals;
using AC = AdmissionController;
using TP = AC::TimePoint;

const TP t0 = TP{} + 1000s;

std::chrono::milliseconds ms(std::uint64_t n) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(n));
}

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

AC::Request group_req(std::uint64_t id, std::string job, std::string group,
                      std::uint64_t bytes = 100) {
  AC::Request r = req(id, std::move(job), bytes);
  r.group = std::move(group);
  return r;
}

TEST(Admission, AGroupsJobCapCountsOnlyItsOwnJobs) {
  AC ac({.groups = {{.name = "cms", .max_jobs = 2}}});
  EXPECT_EQ(ac.admit_job("cms/a", "cms", t0), Limit::kNone);
  EXPECT_EQ(ac.admit_job("cms/b", "cms", t0), Limit::kNone);
  EXPECT_EQ(ac.admit_job("cms/c", "cms", t0), Limit::kGroupJobs);
  EXPECT_EQ(ac.admit_job("cms/a", "cms", t0 + 1s), Limit::kNone) << "known jobs go on";
  EXPECT_EQ(ac.admit_job("atlas/a", "atlas", t0), Limit::kNone) << "another group";
  EXPECT_EQ(ac.admit_job("anyone", "", t0), Limit::kNone);
  // Idle jobs stop counting, as for max_jobs.
  EXPECT_EQ(ac.admit_job("cms/c", "cms", t0 + 61s), Limit::kNone);
}

// Job names are the clients' (a header of up to frontend.max_header_bytes): what the jobs
// being tracked hold is capped even with no max_jobs, and idle jobs give it back.
TEST(Admission, NewJobsPastTheJobTableCapAreRefusedUntilOthersAreForgotten) {
  const std::string name(1000, 'j');
  const std::uint64_t each = name.size() + 1 + AC::kJobOverhead;  // name + a digit
  AC ac({.per_job_max_inflight = 4, .max_job_table_bytes = 3 * each});
  for (char c : {'0', '1', '2'}) EXPECT_EQ(ac.admit_job(name + c, "", t0), Limit::kNone);
  EXPECT_EQ(ac.job_table_bytes(), 3 * each);
  EXPECT_EQ(ac.admit_job(name + '3', "", t0), Limit::kJobTable);
  // An inference request of a job nobody announced is held to the same cap.
  AC::Decision d = ac.admit(req(1, name + '4'), t0);
  EXPECT_EQ(d.verdict, AC::Verdict::kRejected);
  EXPECT_EQ(d.limit, Limit::kJobTable);
  // Known jobs go on.
  EXPECT_EQ(ac.admit_job(name + '0', "", t0 + 1s), Limit::kNone);
  EXPECT_EQ(ac.admit(req(2, name + '0'), t0 + 1s).verdict, AC::Verdict::kAdmitted);
  ac.release(req(2, name + '0'), t0 + 1s);
  EXPECT_EQ(ac.job_table_bytes(), 3 * each);
  // Idle past job_idle_timeout (60 s), they are forgotten and their bytes freed.
  EXPECT_EQ(ac.admit_job(name + '3', "", t0 + 62s), Limit::kNone);
  EXPECT_EQ(ac.job_table_bytes(), each);
}

TEST(Admission, AGroupAtItsInflightCapWaitsWhileOtherGroupsGo) {
  AC ac({.groups = {{.name = "cms", .max_inflight = 2}}});
  for (std::uint64_t id : {1, 2}) {
    EXPECT_EQ(ac.admit(group_req(id, "cms/a", "cms"), t0).verdict, AC::Verdict::kAdmitted);
  }
  AC::Decision d = ac.admit(group_req(3, "cms/b", "cms"), t0);
  EXPECT_EQ(d.verdict, AC::Verdict::kQueued);
  EXPECT_EQ(d.limit, Limit::kGroupInflight);
  // ATLAS's requests queue behind the waiter only until the queue is served.
  EXPECT_EQ(ac.admit(group_req(4, "atlas/a", "atlas"), t0).verdict, AC::Verdict::kQueued);
  EXPECT_EQ(ac.admit(group_req(5, "atlas/b", "atlas"), t0).verdict, AC::Verdict::kQueued);
  auto out = ac.poll(t0);
  std::set<std::uint64_t> admitted;
  for (const auto& o : out) admitted.insert(o.id);
  EXPECT_EQ(admitted, (std::set<std::uint64_t>{4, 5}));
  ac.release(group_req(1, "cms/a", "cms"), t0 + 1ms);
  out = ac.poll(t0 + 1ms);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_EQ(ac.inflight(), 4u);
}

TEST(Admission, AGroupsLinkShareIsItsOwnBucket) {
  // 1000 B/s with a 1000 B burst; cms may use half: a 500 B burst refilled at 500 B/s.
  AC ac({.link_bytes_per_second = 1000,
         .link_burst_bytes = 1000,
         .groups = {{.name = "cms", .link_share = 0.5}}});
  EXPECT_EQ(ac.admit(group_req(1, "cms/a", "cms", 600), t0).verdict, AC::Verdict::kAdmitted);
  AC::Decision d = ac.admit(group_req(2, "cms/a", "cms", 100), t0);
  EXPECT_EQ(d.verdict, AC::Verdict::kQueued);
  EXPECT_EQ(d.limit, Limit::kGroupLink);
  // The link has 400 B left for the others.
  EXPECT_EQ(ac.admit(group_req(3, "atlas/a", "atlas", 300), t0).verdict, AC::Verdict::kQueued);
  auto out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
  // cms's debt of 100 B is paid after 0.2 s at 500 B/s: the wake-up says so.
  std::optional<TP> wake = ac.next_wake(t0);
  ASSERT_TRUE(wake.has_value());
  EXPECT_LE(*wake, t0 + 200ms + 1ms);
  EXPECT_TRUE(ac.poll(t0 + 100ms).empty());
  out = ac.poll(t0 + 201ms);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 2u);
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

// Releases `running` and returns the one request poll() admits in its place.
AC::Request next_admitted(AC& ac, const AC::Request& running, TP now,
                          const std::map<std::uint64_t, std::string>& job_of) {
  ac.release(running, now);
  auto out = ac.poll(now);
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1) return req(0, "none");
  EXPECT_TRUE(out[0].admitted);
  return req(out[0].id, job_of.at(out[0].id));
}

TEST(Admission, CancelOfAMiddleWaiterKeepsTheOthersInOrder) {
  AC ac({.max_inflight = 1});
  ASSERT_EQ(ac.admit(req(1, "a"), t0).verdict, AC::Verdict::kAdmitted);
  std::map<std::uint64_t, std::string> job_of;
  for (std::uint64_t id = 2; id <= 6; ++id) {
    job_of[id] = "a";
    ASSERT_EQ(ac.admit(req(id, "a"), t0).verdict, AC::Verdict::kQueued);
  }
  EXPECT_TRUE(ac.cancel(4));
  EXPECT_FALSE(ac.cancel(4));
  EXPECT_EQ(ac.queued(), 4u);
  std::vector<std::uint64_t> order;
  AC::Request running = req(1, "a");
  for (int i = 0; i < 4; ++i) {
    running = next_admitted(ac, running, t0, job_of);
    order.push_back(running.id);
  }
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 3, 5, 6}));
  EXPECT_EQ(ac.queued(), 0u);
  EXPECT_FALSE(ac.next_wake(t0));
}

TEST(Admission, CancelOfTheFirstAndLastWaiters) {
  AC ac({.max_inflight = 1});
  ac.admit(req(1, "a"), t0);
  std::map<std::uint64_t, std::string> job_of;
  for (std::uint64_t id = 2; id <= 5; ++id) {
    job_of[id] = "a";
    ac.admit(req(id, "a"), t0);
  }
  EXPECT_TRUE(ac.cancel(2));
  EXPECT_TRUE(ac.cancel(5));
  AC::Request running = next_admitted(ac, req(1, "a"), t0, job_of);
  EXPECT_EQ(running.id, 3u);
  // A request queued after the cancellations goes behind the survivors.
  job_of[6] = "a";
  ac.admit(req(6, "a"), t0);
  running = next_admitted(ac, running, t0, job_of);
  EXPECT_EQ(running.id, 4u);
  running = next_admitted(ac, running, t0, job_of);
  EXPECT_EQ(running.id, 6u);
}

TEST(Admission, ManyWaitersTimeOutInTheOrderTheirTimeRunsOut) {
  // 1,000 waiters queued 1 ms apart; every third also has its own deadline, sooner than
  // the 10 s queue_timeout for some and later for others.
  AC ac({.max_inflight = 1, .queue_timeout = 10s});
  ASSERT_EQ(ac.admit(req(1000000, "busy"), t0).verdict, AC::Verdict::kAdmitted);
  std::vector<std::pair<TP, std::uint64_t>> expected;  // (when it runs out, id)
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const TP queued_at = t0 + ms(i);
    TP deadline = TP::max();
    if (i % 3 == 0) deadline = queued_at + ms(1 + (i * 7919) % 20000);  // up to 20 s
    ASSERT_EQ(ac.admit(req(i, "job" + std::to_string(i % 7), 100, deadline), queued_at).verdict,
              AC::Verdict::kQueued);
    expected.emplace_back(std::min(deadline, queued_at + 10s), i);
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::uint64_t> order;
  TP now = t0 + 1s;
  while (ac.queued() > 0) {
    auto wake = ac.next_wake(now);
    ASSERT_TRUE(wake);
    ASSERT_GE(*wake, now);
    // Nothing runs out before next_wake() says so.
    if (*wake > now) {
      EXPECT_TRUE(ac.poll(*wake - 1ns).empty());
    }
    now = *wake;
    for (const AC::Outcome& o : ac.poll(now)) {
      EXPECT_FALSE(o.admitted);
      order.push_back(o.id);
      const bool own_deadline = o.id % 3 == 0 && o.limit == Limit::kDeadline;
      EXPECT_TRUE(own_deadline || o.limit == Limit::kQueueTimeout) << o.id;
      if (o.limit == Limit::kQueueTimeout) {
        EXPECT_EQ(o.waited, 10s);
      }
    }
  }
  ASSERT_EQ(order.size(), expected.size());
  for (size_t i = 0; i < order.size(); ++i) {
    // Ties (the same instant) may come out in either order; the instants may not.
    const auto it = std::find_if(expected.begin(), expected.end(),
                                 [&](const auto& e) { return e.second == order[i]; });
    ASSERT_NE(it, expected.end());
    EXPECT_EQ(it->first, expected[i].first) << "position " << i;
  }
}

TEST(Admission, FairnessHoldsAfterCancel) {
  AC ac({.max_inflight = 1});
  ASSERT_EQ(ac.admit(req(100, "busy"), t0).verdict, AC::Verdict::kAdmitted);
  std::map<std::uint64_t, std::string> job_of;
  // Three jobs take turns: a1 b1 c1 a2 b2 c2 a3 b3 c3.
  for (std::uint64_t i = 1; i <= 3; ++i) {
    for (const char* j : {"a", "b", "c"}) {
      const std::uint64_t id = i * 10 + static_cast<std::uint64_t>(j[0] - 'a');
      job_of[id] = j;
      ac.admit(req(id, j), t0);
    }
  }
  // a1 goes; then b gives up its first request and c its last: b keeps its turn with b2.
  AC::Request running = next_admitted(ac, req(100, "busy"), t0, job_of);
  EXPECT_EQ(running.id, 10u);
  EXPECT_TRUE(ac.cancel(11));
  EXPECT_TRUE(ac.cancel(32));
  std::vector<std::uint64_t> order;
  while (ac.queued() > 0) {
    running = next_admitted(ac, running, t0, job_of);
    order.push_back(running.id);
  }
  EXPECT_EQ(order, (std::vector<std::uint64_t>{21, 12, 20, 31, 22, 30}));
}

TEST(Admission, AJobWhoseWaitersAllLeaveLosesItsTurn) {
  AC ac({.max_inflight = 1});
  ac.admit(req(100, "busy"), t0);
  std::map<std::uint64_t, std::string> job_of{{1, "a"}, {2, "b"}, {3, "b"}, {4, "c"}};
  for (const auto& [id, job] : job_of) ac.admit(req(id, job), t0);
  // b's turn comes after a's; both of b's requests leave before it.
  AC::Request running = next_admitted(ac, req(100, "busy"), t0, job_of);
  EXPECT_EQ(running.id, 1u);
  EXPECT_TRUE(ac.cancel(2));
  EXPECT_TRUE(ac.cancel(3));
  running = next_admitted(ac, running, t0, job_of);
  EXPECT_EQ(running.id, 4u);
  // b comes back later: it queues behind nobody.
  job_of[5] = "b";
  job_of[6] = "a";
  ac.admit(req(6, "a"), t0);
  ac.admit(req(5, "b"), t0);
  running = next_admitted(ac, running, t0, job_of);
  EXPECT_EQ(running.id, 6u);
  running = next_admitted(ac, running, t0, job_of);
  EXPECT_EQ(running.id, 5u);
}

TEST(Admission, CancellingTheLargeRequestThatHoldsItsTurnLetsOthersGo) {
  AC ac({.max_bytes_in_flight = 1000});
  ASSERT_EQ(ac.admit(req(1, "small", 600), t0).verdict, AC::Verdict::kAdmitted);
  ac.admit(req(2, "large", 900), t0);
  ac.admit(req(3, "small", 300), t0);
  EXPECT_TRUE(ac.poll(t0).empty());
  EXPECT_TRUE(ac.cancel(2));
  auto out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
}

TEST(Admission, AJobAtItsCapRejoinsTheTurnsWhenOneOfItsRequestsEnds) {
  AC ac({.max_inflight = 2, .per_job_max_inflight = 1});
  ASSERT_EQ(ac.admit(req(1, "a"), t0).verdict, AC::Verdict::kAdmitted);
  ASSERT_EQ(ac.admit(req(2, "b"), t0).verdict, AC::Verdict::kAdmitted);
  ac.admit(req(3, "a"), t0);
  ac.admit(req(4, "a"), t0);
  ac.admit(req(5, "c"), t0);
  // Only the global cap and a's own cap hold anyone back; c cannot go (max_inflight).
  EXPECT_TRUE(ac.poll(t0).empty());
  ac.release(req(2, "b"), t0);  // a slot frees, but a is at its cap: c goes
  auto out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 5u);
  ac.release(req(1, "a"), t0);  // a is under its cap again: its oldest waiter goes
  out = ac.poll(t0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_EQ(ac.queued(), 1u);
}

TEST(Admission, ANewQueueTimeoutAppliesToQueuedRequests) {
  AC ac({.max_inflight = 1, .queue_timeout = 30s});
  ac.admit(req(1, "a"), t0);
  ac.admit(req(2, "a"), t0);
  ac.admit(req(3, "a"), t0 + 1s);
  EXPECT_EQ(*ac.next_wake(t0 + 1s), t0 + 30s);
  ac.set_limits({.max_inflight = 1, .queue_timeout = 5s});
  EXPECT_EQ(*ac.next_wake(t0 + 1s), t0 + 5s);
  auto out = ac.poll(t0 + 5s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 2u);
  EXPECT_EQ(out[0].limit, Limit::kQueueTimeout);
  EXPECT_EQ(*ac.next_wake(t0 + 5s), t0 + 6s);
}

TEST(Admission, ALoweredPerJobCapHoldsQueuedRequests) {
  AC ac({.max_inflight = 10});
  for (std::uint64_t id = 1; id <= 10; ++id) ac.admit(req(id, "a"), t0);
  ac.admit(req(11, "a"), t0);
  ac.admit(req(12, "b"), t0);
  ac.set_limits({.max_inflight = 10, .per_job_max_inflight = 2});
  ac.release(req(1, "a"), t0);
  auto out = ac.poll(t0);  // a still holds 9 > 2: only b goes
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 12u);
}

TEST(Admission, ASecondRequestWithAQueuedIdIsRefused) {
  AC ac({.max_inflight = 1});
  ac.admit(req(1, "a"), t0);
  ASSERT_EQ(ac.admit(req(2, "a"), t0).verdict, AC::Verdict::kQueued);
  EXPECT_EQ(ac.admit(req(2, "b"), t0).verdict, AC::Verdict::kRejected);
  EXPECT_EQ(ac.queued(), 1u);
}

TEST(Admission, ALongestQueueTimeoutDoesNotWrap) {
  AC ac({.max_inflight = 1, .queue_timeout = AC::Duration::max()});
  ac.admit(req(1, "a"), t0);
  ac.admit(req(2, "a"), t0);
  EXPECT_EQ(*ac.next_wake(t0), TP::max());
  EXPECT_TRUE(ac.poll(t0 + std::chrono::hours(24 * 365)).empty());
}

// Random admits, releases, cancels and time steps against a model of what must hold:
// every queued request leaves exactly once (admitted, timed out or cancelled), never
// before its time runs out, never after poll() at that time; the caps are never exceeded,
// and poll() leaves no request waiting that the caps would let in.
TEST(Admission, RandomEventsKeepEveryInvariant) {
  std::mt19937_64 rng(20261130);
  const AdmissionLimits limits{
      .max_inflight = 8, .per_job_max_inflight = 3, .max_queue = 500, .queue_timeout = 2s};
  AC ac(limits);
  struct Queued {
    std::string job;
    TP since;
    TP deadline;
  };
  std::map<std::uint64_t, Queued> queued;
  std::map<std::uint64_t, std::string> running;
  std::map<std::string, std::uint32_t> per_job;
  TP now = t0;
  std::uint64_t next_id = 1;
  auto check_outcomes = [&](const std::vector<AC::Outcome>& out) {
    for (const AC::Outcome& o : out) {
      auto it = queued.find(o.id);
      ASSERT_NE(it, queued.end()) << o.id;
      if (o.admitted) {
        running[o.id] = it->second.job;
        ++per_job[it->second.job];
      } else {
        const bool ran_out = it->second.deadline <= now || now - it->second.since >= 2s;
        EXPECT_TRUE(ran_out) << o.id;
      }
      queued.erase(it);
    }
    EXPECT_LE(running.size(), 8u);
    for (const auto& [job, n] : per_job) EXPECT_LE(n, 3u) << job;
    EXPECT_EQ(ac.queued(), queued.size());
    EXPECT_EQ(ac.inflight(), running.size());
    for (const auto& [id, q] : queued) {
      // Nothing past its time is left, and a job under its cap does not wait while
      // the gateway has room.
      EXPECT_FALSE(q.deadline <= now || now - q.since >= 2s) << id;
      EXPECT_FALSE(running.size() < 8 && per_job[q.job] < 3) << id;
    }
  };
  for (int step = 0; step < 20000; ++step) {
    const int what = static_cast<int>(rng() % 10);
    if (what < 4) {
      const std::uint64_t id = next_id++;
      const std::string job = "j" + std::to_string(rng() % 12);
      const TP deadline = rng() % 4 == 0 ? now + ms(1 + rng() % 3000) : TP::max();
      const AC::Decision d = ac.admit(req(id, job, 100, deadline), now);
      if (d.verdict == AC::Verdict::kAdmitted) {
        EXPECT_TRUE(queued.empty());
        running[id] = job;
        ++per_job[job];
      } else if (d.verdict == AC::Verdict::kQueued) {
        queued[id] = {job, now, deadline};
        check_outcomes(ac.poll(now));
      } else {
        EXPECT_EQ(queued.size(), 500u);
      }
    } else if (what < 7 && !running.empty()) {
      auto it = std::next(running.begin(), static_cast<long>(rng() % running.size()));
      const AC::Request r = req(it->first, it->second);
      --per_job[it->second];
      running.erase(it);
      ac.release(r, now);
      check_outcomes(ac.poll(now));
    } else if (what < 8 && !queued.empty()) {
      auto it = std::next(queued.begin(), static_cast<long>(rng() % queued.size()));
      EXPECT_TRUE(ac.cancel(it->first));
      queued.erase(it);
      check_outcomes(ac.poll(now));
    } else {
      now += ms(rng() % 200);
      check_outcomes(ac.poll(now));
    }
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace infergate::routing
