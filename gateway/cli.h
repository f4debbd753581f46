// Command-line parsing for the `infergate` binary. Pure: no I/O, no exits.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace infergate::gateway {

struct CliOptions {
  enum class Action { kRun, kHelp, kVersion, kCheckConfig };
  Action action = Action::kRun;
  std::string config_path;
  int workers = 0;        // 0: from the config, else one per core
  std::string log_level;  // empty: from the config
};

struct CliParse {
  CliOptions options;
  std::string error;  // non-empty: print it with the usage and exit 2

  bool ok() const { return error.empty(); }
};

CliParse parse_cli(const std::vector<std::string>& args);

// The text printed for --help.
std::string usage();

// What --check-config prints after "ok": every byte cap and deadline in force, defaults
// included, one "key value" line each.
std::string describe_bounds(const config::Config& config);

}  // namespace infergate::gateway
