// The infergate binary.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "auth/key_cache.h"
#include "config/loader.h"
#include "gateway/cli.h"
#include "gateway/gateway.h"
#include "gateway/h2/tls.h"
#include "gateway/logging.h"
#include "gateway/version.h"

namespace {

using infergate::gateway::CliOptions;

// Prints every problem; returns the config or null.
std::shared_ptr<const infergate::config::Config> load(const std::string& path) {
  infergate::config::LoadResult result = infergate::config::load_config_file(path);
  for (const infergate::config::Problem& p : result.problems) {
    std::fprintf(stderr, "%s\n", p.to_string().c_str());
  }
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %zu problem%s\n", path.c_str(), result.problems.size(),
                 result.problems.size() == 1 ? "" : "s");
  }
  return result.config;
}

int check_config(const std::string& path) {
  auto config = load(path);
  if (!config) return 1;
  if (config->frontend.tls) {
    // The pair and the CAs, loaded as the gateway would: a key that does not match its
    // certificate is found now, not at the restart.
    std::string error;
    if (!infergate::gateway::TlsContext::load(infergate::gateway::tls_files(*config->frontend.tls),
                                              &error)) {
      std::fprintf(stderr, "%s: frontend.tls: %s\n", path.c_str(), error.c_str());
      return 1;
    }
  }
  if (config->admin.tls) {
    std::string error;
    if (!infergate::gateway::AdminServer::load_tls(config->admin.tls->cert, config->admin.tls->key,
                                                   error)) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
      return 1;
    }
  }
  std::printf("%s: ok (%zu backend%s)\n", path.c_str(), config->backends.size(),
              config->backends.size() == 1 ? "" : "s");
  std::printf("%s", infergate::gateway::describe_bounds(*config).c_str());
  return 0;
}

int run(const CliOptions& options) {
  auto config = load(options.config_path);
  if (!config) return 1;
  // scitokens-cpp's key cache is named through the environment: set it while this is the
  // only thread (a reload that turns JWTs on later sets it then; glibc keeps that safe).
  if (config->auth.mode == "jwt") infergate::auth::key_cache_dir();
  infergate::gateway::setup_logging(options.log_level.empty() ? config->log_level
                                                              : options.log_level);
  // A peer that closes its socket must not kill the process while we write to it.
  std::signal(SIGPIPE, SIG_IGN);
  infergate::gateway::Gateway gateway(config, options.workers);
  if (std::string error = gateway.start(); !error.empty()) {
    infergate::gateway::gateway_log().error("startup_failed error=\"{}\"", error);
    return 1;
  }
  return gateway.run();
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
    case CliOptions::Action::kRun:
      return run(parsed.options);
  }
  return 2;
}
