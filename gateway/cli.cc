#include "gateway/cli.h"

namespace infergate::gateway {

std::string usage() {
  return R"(usage: infergate [options]

A gRPC gateway in front of a fleet of NVIDIA Triton servers (KServe v2 protocol).

options:
  --check-config FILE   validate FILE, print every problem with file:line:column,
                        exit 0 if it is valid and 1 if not
  --version             print the version and exit
  --help                print this text and exit
)";
}

CliParse parse_cli(const std::vector<std::string>& args) {
  CliParse out;
  if (args.empty()) {
    out.error = "no options given";
    return out;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) {
        out.error = a + " needs a value";
        return false;
      }
      into = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      out.options.action = CliOptions::Action::kHelp;
      return out;
    } else if (a == "--version") {
      out.options.action = CliOptions::Action::kVersion;
      return out;
    } else if (a == "--check-config") {
      out.options.action = CliOptions::Action::kCheckConfig;
      if (!value(out.options.config_path)) return out;
    } else {
      out.error = "unknown option '" + a + "'";
      return out;
    }
  }
  return out;
}

}  // namespace infergate::gateway
