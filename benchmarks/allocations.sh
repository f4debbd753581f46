#!/usr/bin/env bash
# allocations.sh: heap allocations per request on the gateway's worker threads in steady
# state (issue 14's goal: none on the 1 KB path). The gateway (one worker) runs with the
# allocation counter preloaded (benchmarks/micro/malloc_counter.cc), in front of one
# infergate-sim; infergate-bench warms it up, then the count on the ig-worker threads is
# read before and after a measured run and divided by the requests that run completed.
#
# Needs a build with benchmarks (scripts/build.sh). Usage: benchmarks/allocations.sh
# [preset] [concurrency] [window] [bench args...]  (defaults 1kb, 16, 3s). With
# ALLOC_TRACE=1 every 64th allocation's call stack on the worker goes to
# $ALLOC_STACKS (default /tmp/infergate-alloc-stacks.txt). With ALLOC_MAX=N it fails
# (exit 1) when the count per request is above N: ctest runs it that way
# (allocations.steady_state), a count, not a timing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
PRESET=${1:-1kb}
CONCURRENCY=${2:-16}
WINDOW=${3:-3s}
shift $(($# < 3 ? $# : 3))
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

counter=$(find "$BUILD_DIR/benchmarks" -name 'libinfergate_malloc_counter.so' -print -quit)
[[ -n "$counter" ]] || { echo "allocations.sh: build infergate_malloc_counter first" >&2; exit 1; }

start_sims a
cat >"$WORK/gw.yaml" <<EOF
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 1
backends:
  - {name: a, address: "${SIMS[0]}"}
EOF
export INFERGATE_MALLOC_COUNTS=$WORK/counts
[[ -n "${ALLOC_TRACE:-}" ]] && export INFERGATE_MALLOC_TRACE=ig-worker
LD_PRELOAD=$counter start_gateway "$WORK/gw.yaml"
unset INFERGATE_MALLOC_COUNTS INFERGATE_MALLOC_TRACE
address=$(wait_line "$WORK/gw.log" "gateway listening" | grep -o '127.0.0.1:[0-9]*')
wait_line "$WORK/gw.log" "inventory backend=a" >/dev/null

worker_allocations() {
  sleep 0.3  # the counter writes its file every 100 ms
  awk '$1 ~ /^ig-worker/ {n += $3} END {print n + 0}' "$WORK/counts"
}
bench() {
  "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "$address" --preset "$PRESET" \
    --concurrency-range "$CONCURRENCY" --connections 2 --measurement-interval "$WINDOW" \
    --max-trials 1 --json "$WORK/run.json" --progress never "$@" >"$WORK/run.txt" 2>&1
  grep -o '"requests": *[0-9]*' "$WORK/run.json" | head -1 | grep -o '[0-9]*$'
}

bench "$@" >/dev/null  # warm-up: pools, connections, tables grow to their steady size
if ! grep -q '^ig-worker' "$WORK/counts" 2>/dev/null; then
  echo "allocations.sh: no ig-worker thread counted (a gateway that names its workers?)" >&2
  exit 1
fi
before=$(worker_allocations)
[[ -n "${ALLOC_TRACE:-}" ]] && : >"$WORK/counts.stacks"
requests=$(bench "$@")
after=$(worker_allocations)
echo "# $(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD): preset $PRESET," \
  "c=$CONCURRENCY on 2 connections, one worker"
per_request=$(awk -v a=$((after - before)) -v r="$requests" 'BEGIN {printf "%.3f", a / r}')
echo "requests=$requests worker_allocations=$((after - before)) per_request=$per_request"
if [[ -n "${ALLOC_MAX:-}" ]] && awk -v p="$per_request" -v m="$ALLOC_MAX" 'BEGIN {exit !(p > m)}'; then
  echo "allocations.sh: $per_request allocations per request, more than ALLOC_MAX=$ALLOC_MAX" >&2
  exit 1
fi
if [[ -n "${ALLOC_TRACE:-}" ]]; then
  cp "$WORK/counts.stacks" "${ALLOC_STACKS:-/tmp/infergate-alloc-stacks.txt}"
  echo "call stacks of every 64th: ${ALLOC_STACKS:-/tmp/infergate-alloc-stacks.txt}"
fi
