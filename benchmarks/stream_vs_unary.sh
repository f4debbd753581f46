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
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (with a deadline) for a line containing TEXT in FILE and prints it.
wait_line() {
  for _ in $(seq 1 100); do
    if line=$(grep -m1 "$2" "$1" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "stream_vs_unary: no '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

sims=()
for name in a b; do
  "$BUILD_DIR/benchmarks/sim/infergate-sim" --name "$name" --listen 127.0.0.1:0 \
    --model identity:instances=64 >"$work/$name.log" 2>&1 &
  pids+=($!)
  sims+=("$(wait_line "$work/$name.log" "listening on" | grep -o '127.0.0.1:[0-9]*')")
done
cat >"$work/gw.yaml" <<EOF
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 2
backends:
  - {name: a, address: "${sims[0]}"}
  - {name: b, address: "${sims[1]}"}
EOF
"$BUILD_DIR/gateway/infergate" --config "$work/gw.yaml" >"$work/gw.log" 2>&1 &
gateway=$!
pids+=("$gateway")
address=$(wait_line "$work/gw.log" "gateway listening" | grep -o '127.0.0.1:[0-9]*')
wait_line "$work/gw.log" "inventory backend=b" >/dev/null

tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gateway/stat"; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "c=$CONCURRENCY, 1 KB messages, windows of $WINDOW"
printf '%-6s %-10s %12s %12s %18s\n' round mode messages msg/s gateway_us/msg
for round in $(seq 1 "$ROUNDS"); do
  for mode in unary streaming; do
    extra=()
    [[ $mode == streaming ]] && extra=(--streaming)
    before=$(cpu_ticks)
    "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "$address" \
      --concurrency-range "$CONCURRENCY" --connections 2 --measurement-interval "$WINDOW" \
      --max-trials 3 --stability-percentage 100 "${extra[@]}" --json "$work/run.json" \
      --progress never >"$work/run.txt" 2>&1
    after=$(cpu_ticks)
    messages=$(grep -o '"requests": *[0-9]*' "$work/run.json" | head -1 | grep -o '[0-9]*$')
    rate=$(tail -1 "$work/run.txt" | awk '{print $2}')
    printf '%-6s %-10s %12s %12s %18s\n' "$round" "$mode" "$messages" "$rate" \
      "$(echo "scale=1; ($after - $before) * 1000000 / $tick / $messages" | bc)"
  done
done
