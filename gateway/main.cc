// The infergate binary.
#include <cstdio>
#include <string>
#include <vector>

#include "config/loader.h"
#include "gateway/cli.h"
#include "gateway/version.h"

namespace {

using infergate::gateway::CliOptions;

int check_config(const std::string& path) {
  infergate::config::LoadResult result = infergate::config::load_config_file(path);
  for (const infergate::config::Problem& p : result.problems) {
    std::fprintf(stderr, "%s\n", p.to_string().c_str());
  }
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %zu problem%s\n", path.c_str(), result.problems.size(),
                 result.problems.size() == 1 ? "" : "s");
    return 1;
  }
  std::printf("%s: ok (%zu backend%s)\n", path.c_str(), result.config->backends.size(),
              result.config->backends.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  infergate::gateway::CliParse parsed = infergate::gateway::parse_cli(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "infergate: %s\n\n%s", parsed.error.c_str(),
                 infergate::gateway::usage().c_str());
    return 2;
  }
  switch (parsed.options.action) {
    case CliOptions::Action::kHelp:
      std::printf("%s", infergate::gateway::usage().c_str());
      return 0;
    case CliOptions::Action::kVersion:
      std::printf("%s %s\n", infergate::kName, infergate::kVersion);
      return 0;
    case CliOptions::Action::kCheckConfig:
      return check_config(parsed.options.config_path);
  }
  return 2;
}
