#include "benchmarks/bench/bench_app.h"

#include <sstream>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "benchmarks/bench/call_setup.h"
#include "benchmarks/bench/channel_pool.h"
#include "benchmarks/bench/closed_loop_driver.h"
#include "benchmarks/bench/core/level_runner.h"
#include "benchmarks/bench/core/report.h"
#include "benchmarks/bench/open_loop_driver.h"
#include "benchmarks/bench/system_clock.h"

namespace infergate::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::nanoseconds kConnectTimeout = 10s;
constexpr std::chrono::nanoseconds kLevelDrain = 5s;
constexpr std::uint64_t kOpenLoopBufferBytes = 1ull << 30;

void fail(const std::string& message) {
  std::fprintf(stderr, "infergate-bench: %s\n", message.c_str());
}

// Creates (truncates) each output file now, so that a bad path fails before the run.
bool check_outputs(const BenchOptions& o) {
  for (const std::string& path : {o.csv_path, o.json_path}) {
    if (path.empty()) continue;
    if (!std::ofstream(path)) {
      fail("cannot write '" + path + "': " + std::strerror(errno));
      return false;
    }
  }
  return true;
}

bool write_file(const std::string& path, const std::string& text) {
  if (path.empty()) return true;
  std::ofstream out(path);
  out << text;
  out.flush();
  if (out) return true;
  fail("cannot write '" + path + "': " + std::strerror(errno));
  return false;
}

bool progress_on(const BenchOptions& o) {
  if (o.progress != Progress::kAuto) return o.progress == Progress::kAlways;
  auto shortest =
      (o.warmup + o.measurement_interval * kStableWindows) * static_cast<long>(o.levels.size());
  return shortest > 5s;
}

std::unique_ptr<LoadDriver> make_driver(const BenchOptions& o, const CallSetup& setup,
                                        const ChannelPool& pool, Recorder& recorder) {
  if (o.mode == LoadMode::kConcurrency) {
    return std::make_unique<ClosedLoopDriver>(setup, pool, recorder, o.streaming);
  }
  std::uint64_t per_call = std::max<std::uint64_t>(setup.request_payload_bytes(), 1);
  size_t max_outstanding = std::clamp<std::uint64_t>(kOpenLoopBufferBytes / per_call, 64, 16384);
  return std::make_unique<OpenLoopDriver>(setup, pool, recorder, o.distribution, kDefaultSeed,
                                          max_outstanding);
}

std::string targets_text(const BenchOptions& o) {
  std::string out;
  for (const config::HostPort& t : o.targets) out += (out.empty() ? "" : ",") + t.to_string();
  return out;
}

}  // namespace

int run_bench(const BenchOptions& o, const std::atomic<bool>& interrupted) {
  if (!check_outputs(o)) return kExitUsage;
  Payload payload = make_payload(o.preset, o.random_bytes);
  RequestInfo info{.payload_bytes = payload.bytes.size(), .shape = payload.shape};
  const CallSetup setup(build_request(o, std::move(payload)), o);

  std::string tls_ca_pem;
  if (!o.tls_ca.empty()) {
    std::ifstream in(o.tls_ca);
    std::stringstream text;
    text << in.rdbuf();
    tls_ca_pem = text.str();
    if (tls_ca_pem.empty()) {
      fail("--tls-ca " + o.tls_ca + ": cannot read it");
      return kExitFailed;
    }
  }
  ChannelPool pool(o.targets, o.connections, tls_ca_pem, o.tls_name);
  if (std::string error = pool.connect(std::min(o.timeout, kConnectTimeout)); !error.empty()) {
    fail(error);
    return kExitFailed;
  }
  Recorder recorder;
  SystemRunClock clock;
  bool progress = progress_on(o);
  LevelRunner runner(
      RunnerOptions{.measurement_interval = o.measurement_interval,
                    .warmup = o.warmup,
                    .max_trials = o.max_trials,
                    .stability_percentage = o.stability_percentage,
                    .request_payload_bytes = setup.request_payload_bytes()},
      clock, recorder,
      [&](const WindowReport& w) {
        if (progress) std::fprintf(stderr, "%s\n", format_progress(w, o.mode).c_str());
      },
      &interrupted);
  std::unique_ptr<LoadDriver> driver = make_driver(o, setup, pool, recorder);

  std::vector<LevelResult> results;
  bool was_interrupted = false;
  for (size_t i = 0; i < o.levels.size() && !was_interrupted; ++i) {
    bool last = i + 1 == o.levels.size();
    LevelOutcome outcome = runner.run(*driver, o.levels[i], /*check_reachable=*/i == 0,
                                      last ? 0ns : std::min(o.timeout, kLevelDrain));
    if (outcome.unreachable) {
      fail("cannot reach " + targets_text(o) + ": every request of the first window failed (" +
           outcome.result.first_error + ")");
      return kExitFailed;
    }
    was_interrupted = outcome.interrupted;
    if (outcome.result.windows > 0) results.push_back(std::move(outcome.result));
  }
  driver.reset();  // every callback has run: nothing outstanding refers to setup or pool

  std::fputs(format_table(o, info, results).c_str(), stdout);
  std::fflush(stdout);
  bool written = write_file(o.csv_path, format_csv(o, results)) &&
                 write_file(o.json_path, format_json(o, info, results));
  if (was_interrupted) return kExitInterrupted;
  return written ? kExitOk : kExitFailed;
}

}  // namespace infergate::bench
