# Helpers for the benchmarks that measure one gateway's CPU per request in front of
# infergate-sim backends (stream_vs_unary.sh, tls_cost.sh). Sourced, not run; the caller
# sets BUILD_DIR. Everything runs on 127.0.0.1 with ports the OS picks.

WORK=$(mktemp -d)
STARTED=()
stop_all() {
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop_all EXIT

# wait_line FILE TEXT: waits (with a deadline) for a line containing TEXT; prints it.
wait_line() {
  for _ in $(seq 1 100); do
    if line=$(grep -m1 "$2" "$1" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "$(basename "$0"): no '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

# start_sims NAME...: one infergate-sim each (identity, 64 instances); their addresses
# go in SIMS.
SIMS=()
start_sims() {
  for name in "$@"; do
    "$BUILD_DIR/benchmarks/sim/infergate-sim" --name "$name" --listen 127.0.0.1:0 \
      --model identity:instances=64 >"$WORK/$name.log" 2>&1 &
    STARTED+=($!)
    SIMS+=("$(wait_line "$WORK/$name.log" "listening on" | grep -o '127.0.0.1:[0-9]*')")
  done
}

# two_sim_config FILE: a gateway config (2 workers, ports the OS picks) in front of the
# first two sims that start_sims started.
two_sim_config() {
  cat >"$1" <<EOF
listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 2
backends:
  - {name: a, address: "${SIMS[0]}"}
  - {name: b, address: "${SIMS[1]}"}
EOF
}

# start_gateway CONFIG [LOG]: runs infergate on CONFIG until the script ends, its output
# in LOG (default $WORK/gw.log); GATEWAY_PID. INFERGATE_BIN runs another infergate binary
# (an A/B against an older build).
start_gateway() {
  "${INFERGATE_BIN:-$BUILD_DIR/gateway/infergate}" --config "$1" >"${2:-$WORK/gw.log}" 2>&1 &
  GATEWAY_PID=$!
  STARTED+=("$GATEWAY_PID")
}

# measure TARGET CONCURRENCY WINDOW BENCH_ARGS...: one infergate-bench run at a fixed
# concurrency; sets REQUESTS, RATE and US_PER_REQUEST (the gateway's utime+stime over
# the requests completed).
measure() {
  local target=$1 concurrency=$2 window=$3 before after tick
  shift 3
  tick=$(getconf CLK_TCK)
  before=$(awk '{print $14 + $15}' "/proc/$GATEWAY_PID/stat")
  "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "$target" \
    --concurrency-range "$concurrency" --connections 2 --measurement-interval "$window" \
    --max-trials 3 --stability-percentage 100 "$@" --json "$WORK/run.json" \
    --progress never >"$WORK/run.txt" 2>&1
  after=$(awk '{print $14 + $15}' "/proc/$GATEWAY_PID/stat")
  REQUESTS=$(grep -o '"requests": *[0-9]*' "$WORK/run.json" | head -1 | grep -o '[0-9]*$')
  RATE=$(tail -1 "$WORK/run.txt" | awk '{print $2}')
  US_PER_REQUEST=$(echo "scale=1; ($after - $before) * 1000000 / $tick / $REQUESTS" | bc)
}
