#!/usr/bin/env bash
# The integration suite under AddressSanitizer and UndefinedBehaviorSanitizer (gcc's),
# in its own build dir, build-asan/: the gateway, infergate-sim and the integration test
# binaries are built with -fsanitize=address,undefined (-DINFERGATE_SANITIZE=ON), and
# the tests start the sanitized binaries (checked below, before anything runs).
# scripts/test.sh runs this after the normal tests; CI with it.
#   scripts/sanitize.sh [--all] [extra ctest arguments, e.g. -R Lifecycle]
# By default, every integration test that runs the gateway or the health module (the
# gateway's, health's, the CLI's and the hostile-peer suite); --all adds the tests of
# infergate-sim and infergate-bench themselves (benchmark tools; about 13% more build).
#
# A report fails the run wherever it comes from: in a test binary, ASan and UBSan abort
# it (halt_on_error); in a gateway, sim or load generator that a test started, the test
# support's Process fails that test when it sees the report in the child's output.
# Leak checking is on for every process; a process killed with SIGKILL (how most tests
# end their children) is not checked, one that exits (drain, --check-config) is.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=build-asan
start=$(date +%s)

# -O1 -g1 (line tables only): what sanitizers recommend, with file:line in every report,
# at about half the compile time of -O2 -g. No -DNDEBUG: assertions are checked too.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DINFERGATE_SANITIZE=ON \
  -DINFERGATE_WERROR=ON -DINFERGATE_BUILD_TESTS=ON -DINFERGATE_BUILD_BENCHMARKS=ON >/dev/null
# Only what those tests need, and the gateway's unit tests (the exchange's lifetime,
# driven by fake legs, is where a use after free would hide): not the other unit tests,
# the micro-benchmarks or the fuzz replay. (Test binaries not built here have no tests
# listed, so -L integration below selects the built ones, and the hostile suite, which
# runs the sanitized binaries.)
tests=(gateway_integration_tests health_integration_tests cli_integration_tests
  gateway_unit_tests)
tools=(infergate infergate-sim)
if [[ "${1:-}" == "--all" ]]; then
  shift
  tests+=(sim_integration_tests bench_integration_tests)
  tools+=(infergate-bench)
fi
cmake --build "$dir" -j2 --target "${tools[@]}" "${tests[@]}"
built=$(date +%s)

# The tests must start the sanitized binaries of this build dir, not build/'s: the paths
# compiled into each test binary name build-asan's, and each of those is sanitized.
for t in "${tests[@]}"; do
  bin=$(find "$dir/tests" -type f -name "$t" -print -quit)
  [[ -x "$bin" ]] || { echo "sanitize.sh: $t was not built" >&2; exit 1; }
  mapfile -t started < <(strings -a "$bin" | grep -E '/(infergate|infergate-sim|infergate-bench)$' |
    sort -u)
  for p in "${started[@]}"; do
    if [[ "$p" != "$root/$dir/"* ]] || [[ "$(ldd "$p")" != *libasan* ]]; then
      echo "sanitize.sh: $t starts $p, which is not a sanitized binary of $dir" >&2
      exit 1
    fi
  done
  [[ "$(ldd "$bin")" == *libasan* ]] || { echo "sanitize.sh: $bin is not sanitized" >&2; exit 1; }
done

# halt_on_error: the first report ends the process. detect_leaks: at exit.
# check_initialization_order, strict_init_order: static initializers that read another
# file's statics before they are made. quarantine_size_mb=32 (default 256): the
# hostile-peer suite holds the gateway's RSS to its buffer budget + 48 MiB, which ASan's
# default quarantine of freed memory alone would exceed; a use after free is still
# caught while the block is among the last 32 MiB freed. print_stacktrace: UBSan's
# reports say where.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:quarantine_size_mb=32:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
# One at a time, as in test.sh: each test starts real processes that share the cores.
# deploy_manifests checks files with other tools; it has no code for sanitizers to watch.
ctest --test-dir "$dir" --output-on-failure -L unit -j2 "$@"
ctest --test-dir "$dir" --output-on-failure -L integration -E '^deploy_manifests$' -j1 "$@"
end=$(date +%s)
echo "sanitize.sh: gateway unit and integration tests passed under ASan+UBSan (build $((built - start))s," \
  "tests $((end - built))s)"
