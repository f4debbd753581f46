#!/usr/bin/env bash
# large_c1.sh: what the gateway adds to one large ModelInfer at a time (issue 14). One
# infergate-sim (identity, 4 instances) and the gateway (one worker) in front of it, on
# 127.0.0.1 with ports the OS picks; infergate-bench at concurrency 1 with a dense random
# tensor of each size, direct to the sim and through the gateway, alternated for a number
# of rounds (this machine's noise is larger than a single run's difference). For each
# run: p50 latency, and for the gateway runs its CPU (utime+stime) per request.
#
# Needs a build (scripts/build.sh). Usage: benchmarks/large_c1.sh [rounds] [sizes]
# [window]   (defaults 3, "1MiB 16MiB", 3s). Extra gateway config lines can be given
# in LARGE_C1_CONFIG (e.g. "frontend: {max_stream_window: 1MiB}").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
SIZES=${2:-1MiB 16MiB}
WINDOW=${3:-3s}
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

"$BUILD_DIR/benchmarks/sim/infergate-sim" --name a --listen 127.0.0.1:0 \
  --model identity:instances=4 >"$WORK/a.log" 2>&1 &
STARTED+=($!)
sim=$(wait_line "$WORK/a.log" "listening on" | grep -o '127.0.0.1:[0-9]*')
cat >"$WORK/gw.yaml" <<EOF
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 1
backends:
  - {name: a, address: "$sim"}
${LARGE_C1_CONFIG:-}
EOF
start_gateway "$WORK/gw.yaml"
gateway=$(wait_line "$WORK/gw.log" "gateway listening" | grep -o '127.0.0.1:[0-9]*')
wait_line "$WORK/gw.log" "inventory backend=a" >/dev/null

# run TARGET SIZE: one concurrency-1 run; sets P50 and REQUESTS.
run() {
  "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "$1" --preset random --bytes "$2" \
    --concurrency-range 1 --measurement-interval "$WINDOW" --max-trials 3 \
    --stability-percentage 100 --json "$WORK/run.json" --progress never >"$WORK/run.txt" 2>&1
  P50=$(grep -o '"latency_p50_us": *[0-9]*' "$WORK/run.json" | grep -o '[0-9]*$')
  REQUESTS=$(grep -o '"requests": *[0-9]*' "$WORK/run.json" | head -1 | grep -o '[0-9]*$')
}

echo "# $(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD) $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); c=1, windows of $WINDOW"
printf '%-6s %-7s %12s %12s %10s %8s %16s\n' round size direct_p50 gateway_p50 added_us added gateway_us/req
tick=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for size in $SIZES; do
    run "$sim" "$size"
    direct=$P50
    before=$(awk '{print $14 + $15}' "/proc/$GATEWAY_PID/stat")
    run "$gateway" "$size"
    after=$(awk '{print $14 + $15}' "/proc/$GATEWAY_PID/stat")
    cpu=$(echo "scale=1; ($after - $before) * 1000000 / $tick / $REQUESTS" | bc)
    printf '%-6s %-7s %12s %12s %10s %7s%% %16s\n' "$round" "$size" "$direct" "$P50" \
      "$((P50 - direct))" "$(echo "scale=1; ($P50 - $direct) * 100 / $direct" | bc)" "$cpu"
  done
done
