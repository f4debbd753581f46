#!/usr/bin/env bash
# stream_vs_unary.sh: what a ModelStreamInfer message costs the gateway against a unary
# ModelInfer. Two infergate-sim backends (identity, 64 instances) and the gateway
# (2 workers), all on 127.0.0.1 with ports the OS picks; infergate-bench at a fixed
# concurrency, unary then --streaming (one stream per concurrency slot), alternated for
# a number of rounds. The gateway's CPU (utime+stime from /proc) around each run is
# divided by the messages the run completed.
#
# Needs a build (scripts/build.sh). Usage: benchmarks/stream_vs_unary.sh [rounds]
# [concurrency] [window]   (defaults 3, 16, 3s)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
CONCURRENCY=${2:-16}
WINDOW=${3:-3s}
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

start_sims a b
two_sim_config "$WORK/gw.yaml"
start_gateway "$WORK/gw.yaml"
address=$(wait_line "$WORK/gw.log" "gateway listening" | grep -o '127.0.0.1:[0-9]*')
wait_line "$WORK/gw.log" "inventory backend=b" >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "c=$CONCURRENCY, 1 KB messages, windows of $WINDOW"
printf '%-6s %-10s %12s %12s %18s\n' round mode messages msg/s gateway_us/msg
for round in $(seq 1 "$ROUNDS"); do
  for mode in unary streaming; do
    extra=()
    [[ $mode == streaming ]] && extra=(--streaming)
    measure "$address" "$CONCURRENCY" "$WINDOW" "${extra[@]}"
    printf '%-6s %-10s %12s %12s %18s\n' "$round" "$mode" "$REQUESTS" "$RATE" "$US_PER_REQUEST"
  done
done
