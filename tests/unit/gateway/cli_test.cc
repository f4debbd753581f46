#include "gateway/cli.h"

#include <gtest/gtest.h>

namespace infergate::gateway {
namespace {

TEST(Cli, CheckConfigTakesAFile) {
  CliParse p = parse_cli({"--check-config", "gw.yaml"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.options.action, CliOptions::Action::kCheckConfig);
  EXPECT_EQ(p.options.config_path, "gw.yaml");
}

TEST(Cli, CheckConfigWithoutAFileIsAnError) {
  CliParse p = parse_cli({"--check-config"});
  EXPECT_EQ(p.error, "--check-config needs a value");
}

TEST(Cli, VersionAndHelp) {
  EXPECT_EQ(parse_cli({"--version"}).options.action, CliOptions::Action::kVersion);
  EXPECT_EQ(parse_cli({"--help"}).options.action, CliOptions::Action::kHelp);
  EXPECT_EQ(parse_cli({"-h"}).options.action, CliOptions::Action::kHelp);
}

TEST(Cli, UnknownOptionsAndNoOptionsAreErrors) {
  EXPECT_EQ(parse_cli({"--frobnicate"}).error, "unknown option '--frobnicate'");
  EXPECT_FALSE(parse_cli({}).ok());
}

TEST(Cli, RunNeedsAConfigAndTakesWorkersAndLogLevel) {
  CliParse p = parse_cli({"--config", "gw.yaml", "--workers", "4", "--log-level", "debug"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.options.action, CliOptions::Action::kRun);
  EXPECT_EQ(p.options.config_path, "gw.yaml");
  EXPECT_EQ(p.options.workers, 4);
  EXPECT_EQ(p.options.log_level, "debug");
  EXPECT_EQ(parse_cli({"--workers", "2"}).error, "--config FILE is required");
}

TEST(Cli, BadWorkerCountsAndLevelsAreRejected) {
  EXPECT_NE(parse_cli({"--config", "c", "--workers", "0"}).error, "");
  EXPECT_NE(parse_cli({"--config", "c", "--workers", "many"}).error, "");
  EXPECT_NE(parse_cli({"--config", "c", "--workers", "999"}).error, "");
  EXPECT_NE(parse_cli({"--config", "c", "--log-level", "loud"}).error, "");
}

}  // namespace
}  // namespace infergate::gateway
