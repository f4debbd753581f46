// /status and /status.json from a running gateway, the page loaded by a real browser
// (headless Chromium from Debian): every backend is listed, and a screenshot is kept
// with the test run's artifacts.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/support/cluster.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

// Runs a shell command; returns its stdout, *rc its exit status.
std::string run(const std::string& command, int* rc) {
  std::string output;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return "";
  }
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

std::string chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    int rc = 0;
    run(std::string("command -v ") + name + " >/dev/null 2>&1", &rc);
    if (rc == 0) return name;
  }
  return "";
}

TEST(Status, ThePageListsEveryBackendInAHeadlessBrowser) {
  Sim a("gpu-a");
  Sim b("gpu-b", {"--model", "identity", "--model", "resnet50:instances=2"});
  Sim c("gpu-c");
  const std::string metrics_url =
      "metrics_url: \"http://127.0.0.1:" + std::to_string(a.metrics_port()) + "/metrics\"";
  Gateway gw(Gateway::WithKeys{},
             {{"gpu-a", a.address(), {metrics_url}},
              {"gpu-b", b.address(), {}},
              {"gpu-c", c.address(), {}}},
             "limits:\n  max_inflight: 256\n  max_jobs: 600\nhealth:\n  metrics_interval: 200ms\n"
             "  metrics_timeout: 150ms\n");
  auto stub = make_stub(gw.port());
  for (int i = 0; i < 30; ++i) {
    grpc::ClientContext ctx;
    inference::ModelInferResponse r;
    ASSERT_TRUE(
        stub->ModelInfer(&ctx, identity_request(512, static_cast<std::uint32_t>(i)), &r).ok());
  }
  // gpu-a's own metrics are scraped: its GPU shows once a scrape has come in.
  EXPECT_TRUE(wait_until(
      [&] {
        return http_get(gw.admin_port(), "/status.json").find("\"gpu\": {\"fresh\": true") !=
               std::string::npos;
      },
      5s));
  // The machine view.
  int status = 0;
  const std::string json = http_get(gw.admin_port(), "/status.json", &status);
  ASSERT_EQ(status, 200);
  for (const char* name : {"gpu-a", "gpu-b", "gpu-c"}) {
    EXPECT_NE(json.find(std::string("\"name\": \"") + name + "\""), std::string::npos) << json;
  }
  EXPECT_NE(json.find("\"healthy_backends\": 3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"resnet50 (v1)\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"max_jobs\": 600"), std::string::npos) << json;

  // The page, as a browser renders it.
  const std::string browser = chromium();
  ASSERT_FALSE(browser.empty()) << "no Chromium: install Debian's chromium "
                                   "(scripts/install-deps.sh does)";
  const std::string url = "http://127.0.0.1:" + std::to_string(gw.admin_port()) + "/status";
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars"
      " --user-data-dir=" +
      ::testing::TempDir() + "/chromium-profile-" + std::to_string(::getpid());
  int rc = 0;
  const std::string dom =
      run("timeout 60 " + browser + flags + " --dump-dom " + url + " 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0) << "chromium --dump-dom failed";
  for (const char* name : {"gpu-a", "gpu-b", "gpu-c"}) {
    EXPECT_NE(dom.find(std::string("data-backend=\"") + name + "\""), std::string::npos) << dom;
  }
  EXPECT_NE(dom.find("3</b> of 3 backends healthy"), std::string::npos) << dom;

  const std::filesystem::path dir = INFERGATE_ARTIFACT_DIR;
  std::filesystem::create_directories(dir);
  const std::filesystem::path png = dir / "status-page.png";
  std::filesystem::remove(png);
  run("timeout 60 " + browser + flags + " --window-size=1280,800 --screenshot=" + png.string() +
          " " + url + " >/dev/null 2>&1",
      &rc);
  ASSERT_EQ(rc, 0) << "chromium --screenshot failed";
  ASSERT_TRUE(std::filesystem::exists(png));
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_GT(std::filesystem::file_size(png), 10000u);  // a rendered page, not a blank one
  std::printf("status page screenshot: %s\n", png.c_str());
}

TEST(Status, AnUnhealthyBackendShowsAsSuch) {
  Sim a("gpu-a");
  auto b = std::make_unique<Sim>("gpu-b");
  // A stopped backend refuses every probe at once; the live one would need two probes in a
  // row to be late (on a loaded runner) before the page could show it unhealthy too.
  Gateway gw({{"gpu-a", a.address()}, {"gpu-b", b->address()}},
             "health:\n  interval: 200ms\n  timeout: 200ms\n  unhealthy_threshold: 2\n");
  b.reset();  // gpu-b goes away
  EXPECT_TRUE(wait_until(
      [&] {
        return http_get(gw.admin_port(), "/status.json").find("\"state\": \"unhealthy\"") !=
               std::string::npos;
      },
      5s));
  const std::string html = http_get(gw.admin_port(), "/status");
  EXPECT_NE(html.find("1</b> of 2 backends healthy"), std::string::npos) << html;
  EXPECT_NE(html.find("class=\"state unhealthy\""), std::string::npos) << html;
}

}  // namespace
}  // namespace infergate::testing
