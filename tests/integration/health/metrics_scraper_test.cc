// The metrics scraper against real HTTP endpoints on 127.0.0.1: a good Triton page, and
// every way one can go wrong (garbage, an error status, nothing listening, an answer too
// large, no answer at all, not HTTP). Real sockets and timers, so an integration test.
#include "health/metrics_scraper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <random>
#include <thread>

#include "tests/support/fake_http_server.h"
#include "tests/support/process.h"

namespace infergate::health {
namespace {

using namespace std::chrono_literals;
using testing::FakeHttpServer;
using ::testing::HasSubstr;
using testing::wait_until;

const char* kPage =
    "# HELP nv_inference_pending_request_count Instantaneous number of pending requests\n"
    "# TYPE nv_inference_pending_request_count gauge\n"
    "nv_inference_pending_request_count{model=\"identity\",version=\"1\"} 3\n"
    "nv_inference_queue_duration_us{model=\"identity\",version=\"1\"} 1500\n"
    "nv_inference_request_success{model=\"identity\",version=\"1\"} 10\n"
    "nv_gpu_utilization{gpu_uuid=\"GPU-0\"} 0.25\n"
    "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-0\"} 4294967296\n"
    "nv_gpu_memory_total_bytes{gpu_uuid=\"GPU-0\"} 85899345920\n";

// The health module's log lines, captured (registered before any scraper logs).
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> captured_log() {
  static std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = [] {
    auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000);
    auto logger = std::make_shared<spdlog::logger>("health", ring);
    logger->set_level(spdlog::level::info);
    spdlog::register_logger(logger);
    return ring;
  }();
  return sink;
}

int count_lines(const std::string& needle) {
  int n = 0;
  for (const std::string& line : captured_log()->last_formatted()) {
    n += line.find(needle) != std::string::npos;
  }
  return n;
}

// A scraper on its own control thread, scraping every 100 ms with an 80 ms timeout.
class ScraperTest : public ::testing::Test {
 protected:
  ScraperTest() : work_(boost::asio::make_work_guard(io_)) {
    captured_log();
    thread_ = std::thread([this] { io_.run(); });
    scraper_ = std::make_unique<MetricsScraper>(
        io_, ScrapeOptions{.interval = 100ms, .timeout = 80ms, .body_limit_bytes = 64 * 1024},
        [] { return std::chrono::steady_clock::now(); });
  }
  ~ScraperTest() override {
    on_control([this] { scraper_.reset(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs fn on the control thread and waits for it.
  void on_control(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  // A fleet of healthy backends with these names; ids 0, 1, ...
  std::shared_ptr<const routing::Fleet> fleet(const std::vector<std::string>& names) {
    std::vector<routing::BackendInfo> infos;
    for (size_t i = 0; i < names.size(); ++i) {
      routing::BackendInfo b;
      b.id = static_cast<std::uint32_t>(i);
      b.name = names[i];
      b.state = routing::BackendState::kHealthy;
      if (runtimes_.size() <= i) runtimes_.push_back(std::make_shared<routing::BackendRuntime>());
      b.runtime = runtimes_[i];
      infos.push_back(std::move(b));
    }
    return std::make_shared<const routing::Fleet>(std::move(infos));
  }

  static HttpEndpoint local(int port, std::string target = "/metrics") {
    return HttpEndpoint{
        .host = "127.0.0.1", .port = static_cast<std::uint16_t>(port), .target = std::move(target)};
  }

  void scrape(std::map<std::string, HttpEndpoint> endpoints) {
    std::vector<std::string> names;
    for (const auto& [name, e] : endpoints) names.push_back(name);
    auto f = fleet(names);
    on_control([&] {
      scraper_->set_endpoints(endpoints);
      scraper_->set_fleet(f);
      scraper_->start();
    });
  }

  std::optional<TritonStatus> status(const std::string& name) {
    for (TritonStatus& s : scraper_->snapshot()) {
      if (s.backend == name) return s;
    }
    return std::nullopt;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<MetricsScraper> scraper_;
  std::vector<std::shared_ptr<routing::BackendRuntime>> runtimes_;
};

TEST_F(ScraperTest, AGoodPageIsFreshAndFeedsRouting) {
  FakeHttpServer server(FakeHttpServer::ok(kPage));
  scrape({{"a", local(server.port())}});
  ASSERT_TRUE(wait_until([&] { return status("a") && status("a")->fresh; }, 5s));
  TritonStatus s = *status("a");
  EXPECT_EQ(s.url, "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");
  EXPECT_EQ(s.signals.pending_requests, 3);
  EXPECT_EQ(s.signals.gpu_utilization, 0.25);
  EXPECT_EQ(s.signals.gpu_memory_total_bytes, 85899345920.0);
  EXPECT_DOUBLE_EQ(*s.signals.queue_seconds, 0.0015);
  EXPECT_EQ(s.last_error, "");
  EXPECT_EQ(runtimes_[0]->triton_pending.load(), 3);
  EXPECT_THAT(server.last_request(), HasSubstr("GET /metrics HTTP/1.1\r\n"));
  EXPECT_THAT(server.last_request(), HasSubstr("\r\nHost: 127.0.0.1:"));
  // It keeps scraping on the interval.
  const int before = server.requests();
  EXPECT_TRUE(wait_until([&] { return server.requests() >= before + 3; }, 5s));
}

TEST_F(ScraperTest, EveryKindOfFailureIsStaleWithItsReason) {
  std::mt19937 rng(7);
  std::string binary(3000, '\0');
  for (char& c : binary) c = static_cast<char>(rng());
  FakeHttpServer garbage(FakeHttpServer::ok(binary));
  FakeHttpServer not_found("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
  FakeHttpServer huge(FakeHttpServer::ok(std::string(200 * 1024, '#')));
  FakeHttpServer huge_chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n" +
                              std::string(0x20000, 'x') + "\r\n0\r\n\r\n");
  FakeHttpServer huge_unsized("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
                              std::string(200 * 1024, 'x'));
  FakeHttpServer silent(FakeHttpServer::ok(kPage));
  silent.set_silent(true);
  FakeHttpServer not_http("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
  FakeHttpServer html(FakeHttpServer::ok("<html><body>Grafana</body></html>\n"));
  const int refused = testing::closed_port();
  scrape({{"garbage", local(garbage.port())},
          {"not_found", local(not_found.port())},
          {"huge", local(huge.port())},
          {"huge_chunked", local(huge_chunked.port())},
          {"huge_unsized", local(huge_unsized.port())},
          {"silent", local(silent.port())},
          {"not_http", local(not_http.port())},
          {"html", local(html.port())},
          {"refused", local(refused)}});
  const std::map<std::string, std::string> reasons = {
      {"garbage", "not Prometheus text"},
      {"not_found", "HTTP status 404"},
      {"huge", "over 65536 bytes"},
      {"huge_chunked", "over 65536 bytes"},
      {"huge_unsized", "over 65536 bytes"},
      {"silent", "timed out after 80ms"},
      {"not_http", "receive:"},
      {"html", "not Prometheus text"},
      {"refused", "connect:"},
  };
  for (const auto& [name, reason] : reasons) {
    ASSERT_TRUE(wait_until([&] { return status(name) && status(name)->failures >= 2; }, 5s))
        << name;
    TritonStatus s = *status(name);
    EXPECT_FALSE(s.fresh) << name;
    EXPECT_THAT(s.last_error, HasSubstr(reason)) << name;
    EXPECT_FALSE(s.signals.any()) << name;
    EXPECT_EQ(count_lines("metrics_scrape_failed backend=" + name + " "), 1) << name;
  }
  for (const auto& r : runtimes_) EXPECT_EQ(r->triton_pending.load(), -1);
  EXPECT_EQ(scraper_->snapshot().size(), reasons.size());
}

TEST_F(ScraperTest, GoesStaleWhenTheEndpointBreaksAndRecovers) {
  FakeHttpServer server(FakeHttpServer::ok(kPage));
  scrape({{"flaky", local(server.port())}});
  ASSERT_TRUE(wait_until([&] { return status("flaky") && status("flaky")->fresh; }, 5s));
  ASSERT_EQ(runtimes_[0]->triton_pending.load(), 3);
  server.set_answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return status("flaky")->failures >= 4; }, 5s));
  EXPECT_FALSE(status("flaky")->fresh);
  EXPECT_EQ(status("flaky")->signals.pending_requests, 3);  // kept, but stale
  EXPECT_EQ(runtimes_[0]->triton_pending.load(), -1);
  EXPECT_EQ(count_lines("metrics_scrape_failed backend=flaky "), 1);  // once, not per scrape
  server.set_answer(FakeHttpServer::ok(kPage));
  ASSERT_TRUE(wait_until([&] { return status("flaky")->fresh; }, 5s));
  EXPECT_EQ(runtimes_[0]->triton_pending.load(), 3);
  EXPECT_EQ(count_lines("metrics_scrape_recovered backend=flaky "), 1);
}

TEST_F(ScraperTest, FollowsTheFleetAndTheConfig) {
  FakeHttpServer a(FakeHttpServer::ok(kPage));
  FakeHttpServer b(FakeHttpServer::ok(kPage));
  scrape({{"a", local(a.port())}, {"b", local(b.port())}});
  ASSERT_TRUE(wait_until([&] { return status("a") && status("a")->fresh; }, 5s));
  ASSERT_TRUE(wait_until([&] { return status("b") && status("b")->fresh; }, 5s));
  // b starts draining: no longer scraped, and routing forgets its count.
  std::vector<routing::BackendInfo> infos = fleet({"a", "b"})->backends();
  infos[1].state = routing::BackendState::kDraining;
  auto draining = std::make_shared<const routing::Fleet>(std::move(infos));
  on_control([&] { scraper_->set_fleet(draining); });
  EXPECT_FALSE(status("b").has_value());
  EXPECT_EQ(runtimes_[1]->triton_pending.load(), -1);
  // a's metrics_url changes (a reload): the new one is scraped.
  FakeHttpServer moved(FakeHttpServer::ok(kPage));
  on_control([&] { scraper_->set_endpoints({{"a", local(moved.port(), "/other")}}); });
  ASSERT_TRUE(wait_until([&] { return moved.requests() > 0; }, 5s));
  EXPECT_THAT(moved.last_request(), HasSubstr("GET /other HTTP/1.1"));
  ASSERT_TRUE(wait_until([&] { return status("a") && status("a")->fresh; }, 5s));
  EXPECT_THAT(status("a")->url, HasSubstr(":" + std::to_string(moved.port()) + "/other"));
  // stop(): routing forgets every count.
  on_control([&] { scraper_->stop(); });
  EXPECT_EQ(runtimes_[0]->triton_pending.load(), -1);
}

}  // namespace
}  // namespace infergate::health
