#include "benchmarks/bench/core/bench_options.h"

namespace infergate::bench {

std::string usage() {
  return R"(usage: infergate-bench -u HOST:PORT[,HOST:PORT...] [options]

A perf_analyzer-style load generator for KServe v2 / Triton gRPC servers and infergate.
For each load level it measures windows until the last 3 agree within
--stability-percentage (throughput and p99), and reports those 3 windows.

  -u, --url LIST               targets; connections are spread round-robin over them
  -m, --model NAME             model to infer (default identity)
      --model-version V        model version (default: the server's choice)
      --preset NAME            request tensor, INPUT0 FP32 (default 1kb):
                                 1kb        [1,256] random values (1 KiB)
                                 deepmet    [1,4500,8], 800 particles, zero-padded (~144 KB)
                                 protodune  [1693,48,48], a few % non-zero (~15.6 MB)
                                 random     [1,N] dense random, N*4 = --bytes
      --bytes SIZE             payload size for random (1MiB, 16MB, 4096; default 1MiB)
      --concurrency-range START[:END[:STEP]]
                               closed loop: that many requests always outstanding (default 1)
      --request-rate-range START[:END[:STEP]]
                               open loop: requests per second, sent on schedule
      --request-distribution constant|poisson   send times in open loop (default constant)
      --measurement-interval DURATION           one window (default 2s)
      --stability-percentage P                  (default 10)
      --max-trials N           windows per level before giving up on stability (default 10)
      --warmup DURATION        load discarded before measuring each level (default 0)
      --connections N          distinct gRPC channels per target (default 1)
      --streaming              use ModelStreamInfer, one stream per concurrency slot
      --compression none|gzip|deflate           request message compression
      --timeout DURATION       per-request deadline (default 30s)
  -H, --header KEY=VALUE       request metadata, repeatable (e.g. infergate-job=job-7)
      --tls-ca FILE            connect over TLS, trusting the PEM CAs in FILE
      --tls-name NAME          the name the target's certificate carries (default: its host)
      --validate               check that each answer echoes the input bytes (identity
                               models); a mismatch counts as a VALIDATION error
      --csv FILE               write the results as CSV
      --json FILE              write the configuration and results as JSON
      --progress auto|always|never
                               one line per window on stderr (auto: runs longer than ~5s)
  -h, --help                   print this text and exit

Latencies are in microseconds, from just before a call starts to its completion, over
successful requests. Errors are counted by gRPC code name.
Exit status: 0 the run completed (request errors are in the results), 1 the target could
not be reached or an output file could not be written, 2 bad options, 130 interrupted.
)";
}

}  // namespace infergate::bench
