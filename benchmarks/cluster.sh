#!/usr/bin/env bash
# cluster.sh: three gateway replicas sharing their limits through one redis-server
# (cluster.redis), all on 127.0.0.1 in front of two infergate-sim backends.
#
# 1. Shared link_bandwidth: each replica is loaded by its own infergate-bench at once; the
#    request bytes the three forward together per second (infergate_request_body_bytes_total
#    summed, over the window) against the one limit. Goal: within 10%.
# 2. What the cluster costs: the same three replicas with `cluster:` on and off (each with
#    limits.max_inflight, shared when on), alternated for a number of rounds; the three
#    gateways' CPU (utime+stime) over the requests they completed. Goal: on within 5% of off.
#
# Needs a build (scripts/build.sh) and redis-server. Usage: benchmarks/cluster.sh [rounds]
# [window] [link_bandwidth]   (defaults 3, 4s, 40Mbps)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
WINDOW=${2:-4s}
LINK=${3:-40Mbps}
CONCURRENCY=8
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() {  # metric ADMIN_ADDRESS SERIES: its value (summed over label sets)
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(sys.argv[2])))
PY
}
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  >"$WORK/redis.log" 2>&1 &
STARTED+=($!)
wait_line "$WORK/redis.log" "Ready to accept connections" >/dev/null
start_sims a b

# start_replicas MODE LIMITS [NAME]: three gateways (1 worker each), sharing their limits
# under cluster.name NAME when MODE is on; sets PIDS, GRPC, ADMIN. Waits until each
# replica has its backends and (on) Redis has answered it.
start_replicas() {
  local mode=$1 limits=$2 name=${3:-bench} i
  PIDS=() GRPC=() ADMIN=()
  for i in 0 1 2; do
    {
      printf 'listen: "127.0.0.1:0"\nadmin_listen: "127.0.0.1:0"\nworkers: 1\nbackends:\n'
      printf '  - {name: %s, address: "%s"}\n' a "${SIMS[0]}" b "${SIMS[1]}"
      printf 'limits:\n%b' "$limits"
      if [[ $mode == on ]]; then
        printf 'cluster:\n  redis: "redis://127.0.0.1:%s"\n  name: %s\n  lease: 100ms\n' \
          "$REDIS_PORT" "$name"
      fi
    } >"$WORK/$mode-$i.yaml"
    start_gateway "$WORK/$mode-$i.yaml" "$WORK/$mode-$i.log"
    PIDS+=("$GATEWAY_PID")
    GRPC+=("$(wait_line "$WORK/$mode-$i.log" "gateway listening address" | grep -o '127.0.0.1:[0-9]*')")
    ADMIN+=("$(wait_line "$WORK/$mode-$i.log" "admin_listening address" | grep -o '127.0.0.1:[0-9]*')")
    wait_line "$WORK/$mode-$i.log" "inventory backend=b" >/dev/null
  done
  if [[ $mode == on ]]; then
    for i in 0 1 2; do
      for _ in $(seq 1 50); do
        [[ $(metric "${ADMIN[$i]}" infergate_cluster_connected) == 1.0 ]] && break
        sleep 0.1
      done
    done
  fi
}
stop_replicas() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }

# load_all PRESET: one infergate-bench per replica, at once; sets REQUESTS (summed).
load_all() {
  local preset=$1 i pids=()
  for i in 0 1 2; do
    "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "${GRPC[$i]}" \
      --concurrency-range "$CONCURRENCY" --connections 2 --measurement-interval "$WINDOW" \
      --max-trials 1 --stability-percentage 100 --preset "$preset" --json "$WORK/run-$i.json" \
      --progress never >"$WORK/run-$i.txt" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  REQUESTS=0
  for i in 0 1 2; do
    if grep -q '"error_count": *[1-9]' "$WORK/run-$i.json"; then
      echo "$(basename "$0"): replica $i's run had errors:" >&2
      cat "$WORK/run-$i.txt" >&2
      exit 1
    fi
    REQUESTS=$((REQUESTS + $(grep -o '"requests": *[0-9]*' "$WORK/run-$i.json" | head -1 | grep -o '[0-9]*$')))
  done
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); windows of $WINDOW"

# 1. The shared link.
limit_bytes=$("$PYTHON" - "$LINK" <<'PY'
import re, sys
m = re.fullmatch(r"([0-9.]+)(Kbps|Mbps|Gbps)", sys.argv[1])
print(int(float(m.group(1)) * {"Kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9}[m.group(2)] / 8))
PY
)
start_replicas on "  link_bandwidth: $LINK\n  queue_timeout: 60s\n" link
before=0; for i in 0 1 2; do before=$("$PYTHON" -c "print($before + $(metric "${ADMIN[$i]}" infergate_request_body_bytes_total))"); done
t0=$(date +%s.%N)
load_all 1kb
t1=$(date +%s.%N)
after=0; for i in 0 1 2; do after=$("$PYTHON" -c "print($after + $(metric "${ADMIN[$i]}" infergate_request_body_bytes_total))"); done
"$PYTHON" - "$before" "$after" "$t0" "$t1" "$limit_bytes" "$REQUESTS" <<'PY'
import sys
before, after, t0, t1, limit, requests = map(float, sys.argv[1:])
rate = (after - before) / (t1 - t0)
print(f"shared link_bandwidth: {limit:.0f} B/s; the three replicas forwarded {rate:.0f} B/s "
      f"together ({rate / limit:.3f}x the limit; goal 0.9-1.1x), {requests / (t1 - t0):.0f} req/s "
      "over the whole run (warm-up included)")
PY
stop_replicas

# 2. The cost.
printf '%-6s %-8s %10s %18s\n' round cluster requests gateways_us/req
tick=$(getconf CLK_TCK)
declare -A total_ticks=([on]=0 [off]=0) total_requests=([on]=0 [off]=0)
for round in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    start_replicas "$mode" "  max_inflight: 96\n" "cost-$round"
    t_before=$(cpu_ticks "${PIDS[@]}")
    load_all 1kb
    t_after=$(cpu_ticks "${PIDS[@]}")
    us=$(echo "scale=1; ($t_after - $t_before) * 1000000 / $tick / $REQUESTS" | bc)
    printf '%-6s %-8s %10s %18s\n' "$round" "$mode" "$REQUESTS" "$us"
    total_ticks[$mode]=$((total_ticks[$mode] + t_after - t_before))
    total_requests[$mode]=$((total_requests[$mode] + REQUESTS))
    stop_replicas
  done
done
"$PYTHON" - "${total_ticks[on]}" "${total_requests[on]}" "${total_ticks[off]}" \
  "${total_requests[off]}" <<'PY'
import sys
on_t, on_r, off_t, off_r = map(float, sys.argv[1:])
ratio = (on_t / on_r) / (off_t / off_r)
print(f"CPU per request, cluster on / off over all rounds: {ratio:.3f}x (goal: at most 1.05x)")
PY
