#!/usr/bin/env bash
# ab_connections.sh: two infergate builds side by side, ModelInfer (1 KB unless AB_BYTES
# says another size) at a fixed concurrency spread over a number of client connections
# (issue 14's connections axis).
# Two infergate-sim backends and both gateways (2 workers each) run on 127.0.0.1 with ports
# the OS picks; each round measures A then B for every connection count, so that this
# machine's drift falls on both alike. Prints each run's rate and the gateway's CPU
# (utime+stime) per request.
#
# Needs a build (scripts/build.sh). Usage:
#   AB_A=/path/to/old/infergate benchmarks/ab_connections.sh [rounds] [connections] [concurrency] [window]
# (defaults 3, "4 1000", 1000, 2s). A is AB_A (default: this build), B is AB_B (default:
# this build), so one of them names the other build. AB_SYSCALLS=1 also counts the
# gateway's syscalls per request during each run (perf's syscall tracepoints; requests
# counted by the gateway's infergate_requests_total): all, epoll_ctl, read and writev;
# the tracing then adds to the CPU column, so compare such runs only with each other.
# AB_BYTES=1MiB (any size infergate-bench's --bytes takes) sends a dense random tensor of
# that size instead of the 1 KB preset.
# The bench opens at most 1,000 connections per target.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
CONNECTIONS=${2:-4 1000}
CONCURRENCY=${3:-1000}
WINDOW=${4:-2s}
A=${AB_A:-$BUILD_DIR/gateway/infergate}
B=${AB_B:-$BUILD_DIR/gateway/infergate}
PAYLOAD=(--preset 1kb)
[[ -n ${AB_BYTES:-} ]] && PAYLOAD=(--preset random --bytes "$AB_BYTES")
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

start_sims a b
declare -A PID URL ADMIN
for side in A B; do
  two_sim_config "$WORK/$side.yaml"
  bin=$A
  [[ $side == B ]] && bin=$B
  INFERGATE_BIN=$bin start_gateway "$WORK/$side.yaml" "$WORK/$side.log"
  PID[$side]=$GATEWAY_PID
  URL[$side]=$(wait_line "$WORK/$side.log" "gateway listening" | grep -o '127.0.0.1:[0-9]*')
  ADMIN[$side]=$(wait_line "$WORK/$side.log" "admin_listening" | grep -o '127.0.0.1:[0-9]*')
  wait_line "$WORK/$side.log" "inventory backend=b" >/dev/null
done

echo "# $(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD) $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); A=$A B=$B; ${AB_BYTES:-1 KB}, c=$CONCURRENCY, windows of $WINDOW"
# requests SIDE: the requests that gateway has answered so far.
requests() {
  curl -s "http://${ADMIN[$1]}/metrics" |
    awk '/^infergate_requests_total/ {s += $2} END {printf "%d", s}'
}
EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_read,syscalls:sys_enter_writev
if [[ ${AB_SYSCALLS:-0} == 1 ]] && ! perf stat -e "$EVENTS" true >/dev/null 2>&1; then
  echo "$(basename "$0"): AB_SYSCALLS=1 needs perf and the syscall tracepoints (root)" >&2
  exit 1
fi
printf '%-6s %-12s %-5s %12s %16s' round connections side infer/s gateway_us/req
[[ ${AB_SYSCALLS:-0} == 1 ]] && printf ' %16s' syscalls/req epoll_ctl/req read/req writev/req
echo
for round in $(seq 1 "$ROUNDS"); do
  for conns in $CONNECTIONS; do
    for side in A B; do
      GATEWAY_PID=${PID[$side]}
      if [[ ${AB_SYSCALLS:-0} == 1 ]]; then
        before=$(requests "$side")
        perf stat -x, -e "$EVENTS" -p "$GATEWAY_PID" -o "$WORK/perf.txt" &
        perf_pid=$!
        sleep 0.2  # attached before the run starts
      fi
      measure "${URL[$side]}" "$CONCURRENCY" "$WINDOW" "${PAYLOAD[@]}" \
        --connections "$conns"
      printf '%-6s %-12s %-5s %12s %16s' "$round" "$conns" "$side" "$RATE" "$US_PER_REQUEST"
      if [[ ${AB_SYSCALLS:-0} == 1 ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" || true
        answered=$(($(requests "$side") - before))
        # One column per event, in order; n/a where perf did not count it.
        awk -F, -v n="$answered" '/^#/ || NF < 3 {next}
          {printf " %16s", ($1 ~ /^[0-9]+$/ && n > 0) ? sprintf("%.2f", $1 / n) : "n/a"}' \
          "$WORK/perf.txt"
      fi
      echo
    done
  done
done
