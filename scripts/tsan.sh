#!/usr/bin/env bash
# The gateway's integration tests (and the health module's) under ThreadSanitizer, in
# their own build dir, build-tsan/ (-DINFERGATE_TSAN=ON: every target of ours, generated
# protobuf code included, is built with -fsanitize=thread). Not part of CI (TSan makes
# the tests several times slower); run it after touching threads, callbacks that cross
# them, or shutdown. Passes when no process of ours reports a race.
#   scripts/tsan.sh [extra ctest arguments, e.g. -R Lifecycle]
#
# gRPC, protobuf and Abseil come from Debian, built without TSan, and gRPC hands our
# objects between its threads under locks and atomics that TSan cannot see. Two things
# make the run meaningful anyway:
#  - tests/support/tsan_absl_sync.cc, built here and preloaded into every process,
#    tells TSan what absl::Mutex and absl::CondVar do (gRPC's hand-offs go through them);
#  - scripts/tsan.supp suppresses what remains inside gRPC, protobuf and Abseil, by
#    their modules, namespaces and headers, each entry with its reason; never a frame
#    of our own code. A report whose racing access is in our code is a real race.
# Not run here: the hostile-peer suite (its RSS bounds do not hold under TSan's shadow
# memory) and Admission.LinkBandwidthHoldsTheRequestByteRate (a throughput TSan's
# slowdown cannot reach). infergate-sim, the tests' gRPC server, runs with TSan's reports
# off: its reactors hop gRPC's threads through hand-offs that stay invisible even so
# (see tests/support/cluster.cc); the gateway serves HTTP/2 itself and has none.
#
# A report fails the run: in a test binary, through TSan's exit code; in a gateway that
# a test started, the test support's Process fails that test when it sees the report in
# the gateway's output (a child killed with SIGKILL never reaches its exit code).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=build-tsan
start=$(date +%s)

# -O1 -g1 (line tables only): what sanitizers recommend, with file:line in every report,
# at about half the compile time of -O2 -g. No -DNDEBUG: assertions are checked too.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DINFERGATE_TSAN=ON \
  -DINFERGATE_WERROR=ON -DINFERGATE_BUILD_TESTS=ON -DINFERGATE_BUILD_BENCHMARKS=ON >/dev/null
tests=(gateway_integration_tests health_integration_tests)
cmake --build "$dir" -j2 --target infergate infergate-sim "${tests[@]}"
shim="$dir/tsan_absl_sync.so"
if [[ ! "$shim" -nt tests/support/tsan_absl_sync.cc ]]; then
  g++ -std=c++17 -O1 -g -fPIC -shared -Wall -Wextra -Werror -o "$shim" \
    tests/support/tsan_absl_sync.cc -ldl
fi
built=$(date +%s)

# The tests must start this build dir's (instrumented) binaries.
for t in "${tests[@]}"; do
  bin=$(find "$dir/tests" -type f -name "$t" -print -quit)
  [[ -x "$bin" ]] || { echo "tsan.sh: $t was not built" >&2; exit 1; }
  mapfile -t started < <(strings -a "$bin" | grep -E '/(infergate|infergate-sim)$' | sort -u)
  for p in "${started[@]}"; do
    if [[ "$p" != "$root/$dir/"* ]] || [[ "$(ldd "$p")" != *libtsan* ]]; then
      echo "tsan.sh: $t starts $p, which is not a TSan binary of $dir" >&2
      exit 1
    fi
  done
done

# history_size=7 (the most): older accesses kept, so that a report shows both sides
# stacks (suppressions match on them).
# second_deadlock_stack: both stacks of a lock-order report.
export TSAN_OPTIONS="suppressions=$root/scripts/tsan.supp:history_size=7:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
export INFERGATE_TEST_SIM_TSAN_OPTIONS="report_bugs=0"
export LD_PRELOAD="$root/$shim${LD_PRELOAD:+:$LD_PRELOAD}"
# Only the two test binaries above are built here, so -L integration selects their tests
# (and the hostile suite's, left out as said above).
ctest --test-dir "$dir" --output-on-failure -L integration -j1 \
  -E '^(deploy_manifests|hostile\..*|Admission\.LinkBandwidthHoldsTheRequestByteRate)$' "$@"
end=$(date +%s)
echo "tsan.sh: the gateway's integration tests passed under ThreadSanitizer" \
  "(build $((built - start))s, tests $((end - built))s)"
