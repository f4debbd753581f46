// The infergate binary's foundation flags, run as a process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CheckConfig, ValidFileExitsZero) {
  std::string path = write_temp("ok.yaml", "backends:\n  - {name: a, address: 'h:8001'}\n");
  Process p(INFERGATE_BIN_PATH, {"--check-config", path});
  EXPECT_EQ(p.wait_exit(10s), 0);
  EXPECT_TRUE(p.wait_for_line(": ok (1 backend)", 1s));
}

TEST(CheckConfig, EveryProblemIsPrintedAndExitIsOne) {
  std::string path = write_temp("bad.yaml",
                                "listen: nowhere\n"
                                "backends:\n"
                                "  - {name: a, address: 'h:8001'}\n"
                                "  - {name: a, address: 'h:x'}\n");
  Process p(INFERGATE_BIN_PATH, {"--check-config", path});
  EXPECT_EQ(p.wait_exit(10s), 1);
  EXPECT_TRUE(p.wait_for_line(path + ":1:9: listen: address 'nowhere' needs a port", 1s));
  EXPECT_TRUE(p.wait_for_line(path + ":4:5: backends[1]: duplicate backend name 'a'", 1s));
  EXPECT_TRUE(p.wait_for_line(path + ":4:24: backends[1].address:", 1s));
  EXPECT_TRUE(p.wait_for_line("3 problems", 1s));
}

TEST(CheckConfig, ShippedConfigsAreValid) {
  for (const char* rel : {"/deploy/demo/infergate.yaml"}) {
    std::string path = std::string(INFERGATE_SOURCE_DIR) + rel;
    ASSERT_TRUE(std::ifstream(path).good()) << path;
    Process p(INFERGATE_BIN_PATH, {"--check-config", path});
    EXPECT_EQ(p.wait_exit(10s), 0) << path;
  }
}

TEST(Cli, VersionHelpAndBadFlags) {
  Process version(INFERGATE_BIN_PATH, {"--version"});
  EXPECT_EQ(version.wait_exit(10s), 0);
  EXPECT_TRUE(version.wait_for_line("infergate 0.", 1s));

  Process help(INFERGATE_BIN_PATH, {"--help"});
  EXPECT_EQ(help.wait_exit(10s), 0);
  EXPECT_TRUE(help.wait_for_line("--check-config FILE", 1s));

  Process bad(INFERGATE_BIN_PATH, {"--bogus"});
  EXPECT_EQ(bad.wait_exit(10s), 2);
  EXPECT_TRUE(bad.wait_for_line("unknown option '--bogus'", 1s));
}

}  // namespace
}  // namespace infergate::testing
