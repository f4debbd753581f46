// infergate-bench: a perf_analyzer-style load generator for KServe v2 gRPC servers.
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/bench/bench_app.h"
#include "benchmarks/bench/core/bench_options.h"

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) { g_interrupted.store(true); }

// SIGINT/SIGTERM end the run after the current poll, with the results so far; a second
// signal kills as usual (SA_RESETHAND).
void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// Large messages (a 15.6 MB tensor each way per request) would otherwise be served by a
// fresh mmap each time and page-faulted in, which doubled the bench's CPU per request:
// keep big blocks in one heap and reuse them. Before any thread or big allocation.
void tune_malloc() {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace infergate::bench;
  tune_malloc();
  static_assert(std::atomic<bool>::is_always_lock_free);
  std::vector<std::string> args(argv + 1, argv + argc);
  BenchParse parse = parse_args(args);
  if (parse.help) {
    std::fputs(usage().c_str(), stdout);
    return kExitOk;
  }
  if (!parse.ok()) {
    std::fprintf(stderr, "infergate-bench: %s\n\n%s", parse.error.c_str(), usage().c_str());
    return kExitUsage;
  }
  install_signal_handlers();
  return run_bench(parse.options, g_interrupted);
}
