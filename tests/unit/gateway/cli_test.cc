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

TEST(Cli, CheckConfigDescribesEveryBound) {
  config::Config c;
  c.limits.max_routing_fields_bytes = 16 * 1024;
  c.frontend.stream_idle_timeout = std::chrono::seconds(45);
  const std::string text = describe_bounds(c);
  EXPECT_NE(text.find("limits.max_routing_fields_bytes 16KiB\n"), std::string::npos) << text;
  EXPECT_NE(text.find("frontend.stream_idle_timeout 45s\n"), std::string::npos) << text;
  for (const char* key : {"limits.max_buffered_bytes",
                          "limits.max_reorder_bytes",
                          "limits.max_control_message_bytes",
                          "limits.max_sequence_table_bytes",
                          "limits.max_job_table_bytes",
                          "limits.max_stream_messages_in_flight",
                          "limits.backend_wait_timeout",
                          "frontend.handshake_timeout",
                          "frontend.idle_timeout",
                          "frontend.max_connections",
                          "frontend.max_header_bytes",
                          "frontend.max_stream_window",
                          "upstream.stream_idle_timeout",
                          "upstream.keepalive_interval",
                          "upstream.keepalive_timeout",
                          "upstream.max_streams_per_connection",
                          "auth.max_cached_tokens",
                          "auth.jwks_timeout",
                          "discovery.timeout",
                          "discovery.max_members",
                          "admin.timeout"}) {
    EXPECT_NE(text.find(std::string("  ") + key + " "), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace infergate::gateway
