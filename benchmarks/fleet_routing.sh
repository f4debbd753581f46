#!/usr/bin/env bash
# fleet_routing.sh: the routing issue's benchmark, a heterogeneous fleet behind each
# balancer under the same load.
#
# Starts a fleet of infergate-sim backends that are not alike: by default two fast ones
# (identity model, 4 instances, 2 ms per execution: ~2000 infer/s each) and one slow one
# (2 instances, 10 ms: ~200 infer/s). In front of the same fleet it starts infergate once
# per routing policy (least_loaded, round_robin, random; 2 workers each), nginx
# (grpc_pass, least_conn) and HAProxy (h2, leastconn), from benchmarks/peers/*.in as
# compare_peers.sh does. For every concurrency and every target it runs the same
# closed-loop infergate-bench load (1kb preset) and records throughput, p50/p90/p99, the
# balancer's CPU time per request (/proc, around the run) and how the requests were
# spread over the sims: each sim's Triton-style nv_inference_request_success, read from
# its metrics port before and after the run, with the fleet idle at both reads.
#
# What the gateway is designed for: least_loaded sends less to the slow sim, so its p99
# is lower than round_robin's and nginx least_conn's at equal or higher throughput. The
# report says, per concurrency, whether this run showed that.
#
# Everything runs on 127.0.0.1 on this one machine: sims, balancer and bench share its
# cores, so absolute numbers are only comparable within one run of this script.
#
# Usage: benchmarks/fleet_routing.sh [--concurrency 32|8,32,64] [--targets LIST]
#        [--fast-model SPEC] [--slow-model SPEC] [--fast N] [--slow N] [--window 2s]
#        [--max-trials 5] [--warmup 1s] [--connections 2] [--json FILE] [--markdown] [--keep]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
GATEWAY=$BUILD_DIR/gateway/infergate
SIM=$BUILD_DIR/benchmarks/sim/infergate-sim
BENCH=$BUILD_DIR/benchmarks/bench/infergate-bench
PEERS_DIR=${INFERGATE_PEERS_DIR:-$ROOT/benchmarks/peers} # nginx.conf.in, haproxy.cfg.in

# infergate targets are its routing policies; nginx and HAProxy are least-connections.
ALL_TARGETS=(least_loaded round_robin random nginx haproxy)
WORKERS=2            # infergate workers, nginx worker_processes and HAProxy nbthread
READY_DEADLINE_S=20  # per process: listening, then actually forwarding
QUIET_DEADLINE_S=30  # the sims must empty their queues between runs

# Options (see usage).
TARGETS=least_loaded,round_robin,random,nginx,haproxy
CONCURRENCY=32
FAST_MODEL='identity:instances=4,latency=2ms'
SLOW_MODEL='identity:instances=2,latency=10ms'
NUM_FAST=2
NUM_SLOW=1
WINDOW=2s
MAX_TRIALS=5
WARMUP=1s
CONNECTIONS=2
JSON_OUT=
MARKDOWN=0
KEEP=0

# State, filled as the script goes.
WORK_DIR=
MODEL=                   # the model name both sim specs serve (bench -m)
STARTED_PIDS=()          # every process this script started, killed on exit
SIM_NAMES=()             # fast-1, fast-2, slow-1, ...
SIM_SPECS=()             # the --model spec of each sim
SIM_ADDRS=()             # gRPC address of each sim
SIM_METRICS=()           # metrics address of each sim
TARGET_LIST=()           # --targets as an array
declare -A PROXY_PID=()  # target -> root pid (nginx master, haproxy, infergate)
declare -A TARGET_URL=() # target -> value for bench -u
declare -A TARGET_LOG=() # target -> its log (infergate: health events during runs)
declare -A NOT_READY=()  # target -> why it never forwarded
BENCH_PID=               # the bench run in progress (its `timeout` wrapper)
BENCH_RC=0               # exit status of the last bench run
REPORTED=0               # report ran (its exit status 1 means failed runs, not a crash)
LOADAVG_AT_START=        # other load on the machine skews every number: it is reported
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[fleet_routing] %s\n' "$*" >&2; }
die() {
  printf 'fleet_routing: error: %s\n' "$*" >&2
  exit 1
}

# stop_process, free_port, tail_log, wait_for_log, wait_for_port, render, proxy_pids.
# shellcheck source=benchmarks/lib/procs.sh
source "$ROOT/benchmarks/lib/procs.sh"

usage() {
  cat <<'EOF'
usage: benchmarks/fleet_routing.sh [options]

Runs the same closed-loop infergate-bench load through infergate (one instance per
routing policy), nginx least_conn and HAProxy leastconn in front of one heterogeneous
fleet of infergate-sim backends, and prints one table per concurrency: throughput,
p50/p90/p99, the share of requests each sim served, balancer CPU per request, errors.

  --concurrency N[,N]  closed-loop concurrency; a list is a sweep (default 32)
  --targets LIST       any of least_loaded,round_robin,random (infergate's policies),
                       nginx, haproxy (default all)
  --fast-model SPEC    infergate-sim --model of the fast sims
                       (default identity:instances=4,latency=2ms)
  --slow-model SPEC    the same for the slow sims (default identity:instances=2,latency=10ms)
  --fast N, --slow N   how many of each (default 2 fast, 1 slow)
  --window DUR         bench measurement window (default 2s)
  --max-trials N       windows per run until the last 3 agree (default 5; at least 3)
  --warmup DUR         load discarded before measuring, same concurrency (default 1s)
  --connections N      client connections to the balancer (default 2)
  --json FILE          write every number (and host details) as JSON
  --markdown           print the report as markdown for benchmarks/RESULTS.md
  --keep               keep the work dir (configs, logs, bench JSON) and print its path
  -h, --help           this text

Shares: each sim's nv_inference_request_success (summed over its models) from its
--metrics-listen port, read with every sim idle before and after a run (warm-up
included). Balancer CPU: utime+stime of all its processes (/proc/PID/stat) over the
same span, divided by the requests the sims served in it.
Environment: INFERGATE_BUILD_DIR (default ./build); INFERGATE_PEERS_DIR (default
benchmarks/peers: nginx.conf.in and haproxy.cfg.in, both least-connections).
EOF
}

parse_args() {
  while (($#)); do
    case $1 in
      --concurrency) CONCURRENCY=${2:?--concurrency needs a value}; shift ;;
      --targets) TARGETS=${2:?--targets needs a value}; shift ;;
      --fast-model) FAST_MODEL=${2:?--fast-model needs a value}; shift ;;
      --slow-model) SLOW_MODEL=${2:?--slow-model needs a value}; shift ;;
      --fast) NUM_FAST=${2:?--fast needs a value}; shift ;;
      --slow) NUM_SLOW=${2:?--slow needs a value}; shift ;;
      --window) WINDOW=${2:?--window needs a value}; shift ;;
      --max-trials) MAX_TRIALS=${2:?--max-trials needs a value}; shift ;;
      --warmup) WARMUP=${2:?--warmup needs a value}; shift ;;
      --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
      --json) JSON_OUT=${2:?--json needs a file}; shift ;;
      --markdown) MARKDOWN=1 ;;
      --keep) KEEP=1 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  local t c
  for t in ${TARGETS//,/ }; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (known: ${ALL_TARGETS[*]})"
  done
  for c in ${CONCURRENCY//,/ }; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "--concurrency: positive integers, comma-separated"
  done
  [[ -n ${CONCURRENCY//,/} ]] || die "--concurrency needs a value"
  [[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer"
  [[ $NUM_FAST =~ ^[0-9]+$ && $NUM_SLOW =~ ^[0-9]+$ ]] || die "--fast/--slow: a count"
  ((NUM_FAST + NUM_SLOW >= 2)) || die "the fleet needs at least 2 sims"
  if ! [[ $MAX_TRIALS =~ ^[0-9]+$ ]] || ((MAX_TRIALS < 3)); then
    die "--max-trials: at least 3 (the bench reports the last 3 windows)"
  fi
  # Both kinds of sim must serve the model the bench asks for.
  [[ ${FAST_MODEL%%:*} == "${SLOW_MODEL%%:*}" ]] ||
    die "--fast-model and --slow-model must name the same model (${FAST_MODEL%%:*} vs ${SLOW_MODEL%%:*})"
  MODEL=${FAST_MODEL%%:*}
  # Fail now rather than after minutes of measuring.
  [[ -z $JSON_OUT || -d $(dirname -- "$JSON_OUT") ]] || die "--json: no directory for $JSON_OUT"
}

check_prereqs() {
  local bin template
  for bin in "$GATEWAY" "$SIM" "$BENCH"; do
    [[ -x $bin ]] || die "$bin not found or not executable; build first: bash scripts/build.sh (or set INFERGATE_BUILD_DIR)"
  done
  if [[ ,$TARGETS, == *,nginx,* ]]; then
    command -v nginx >/dev/null || die "nginx not found (Debian nginx-light); install it: bash scripts/install-deps.sh"
    template=nginx.conf.in
    [[ -r $PEERS_DIR/$template ]] || die "$PEERS_DIR/$template not found (INFERGATE_PEERS_DIR?)"
  fi
  if [[ ,$TARGETS, == *,haproxy,* ]]; then
    command -v haproxy >/dev/null || die "haproxy not found; install it: bash scripts/install-deps.sh"
    template=haproxy.cfg.in
    [[ -r $PEERS_DIR/$template ]] || die "$PEERS_DIR/$template not found (INFERGATE_PEERS_DIR?)"
  fi
  for bin in python3 pgrep timeout; do
    command -v "$bin" >/dev/null || die "$bin is required"
  done
  duration_s "$WINDOW" >/dev/null
  duration_s "$WARMUP" >/dev/null
}

# duration_s DUR: whole seconds (rounded up) of a bench duration like 2s, 500ms, 1m.
duration_s() {
  case $1 in
    *ms) echo $((((${1%ms}) + 999) / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *) die "bad duration '$1' (use e.g. 2s, 500ms)" ;;
  esac
}

# --- Processes -------------------------------------------------------------------------

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  ((rc == 0 || rc == 1 && REPORTED)) || log "stopping early (exit status $rc); stopping what it started"
  [[ -z $BENCH_PID ]] || stop_process "$BENCH_PID"
  for pid in "${STARTED_PIDS[@]}"; do stop_process "$pid"; done
  if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then
    if ((KEEP)); then log "work dir kept: $WORK_DIR"; else rm -rf -- "$WORK_DIR"; fi
  fi
  exit "$rc"
}

# start_sim NAME SPEC: one sim on an OS-picked gRPC port and metrics port (both logged).
start_sim() {
  local name=$1 spec=$2 logfile=$WORK_DIR/$1.log pid addr metrics
  "$SIM" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --name "$name" --model "$spec" \
    >"$logfile" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  addr=$(wait_for_log "$pid" "$logfile" 'listening on [0-9.]+:[0-9]+') || die "$name did not start"
  metrics=$(wait_for_log "$pid" "$logfile" 'metrics on [0-9.]+:[0-9]+') || die "$name: no metrics port"
  SIM_NAMES+=("$name")
  SIM_SPECS+=("$spec")
  SIM_ADDRS+=("${addr##* }")
  SIM_METRICS+=("${metrics##* }")
}

start_sims() {
  local i
  for ((i = 1; i <= NUM_FAST; i++)); do start_sim "fast-$i" "$FAST_MODEL"; done
  for ((i = 1; i <= NUM_SLOW; i++)); do start_sim "slow-$i" "$SLOW_MODEL"; done
  for i in "${!SIM_NAMES[@]}"; do
    log "${SIM_NAMES[i]}: ${SIM_ADDRS[i]} (metrics ${SIM_METRICS[i]}), model ${SIM_SPECS[i]}"
  done
}

# scrape_sims: "N1,N2,... INFLIGHT" - each sim's nv_inference_request_success summed over
# its models (in SIM_NAMES order), and the requests inside all sims now. '-' if a sim's
# metrics could not be read.
scrape_sims() {
  python3 - "${SIM_METRICS[@]}" <<'EOF'
import sys, urllib.request
counts, inflight = [], 0
try:
    for addr in sys.argv[1:]:
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
        n = 0
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name == "nv_inference_request_success":
                n += int(float(line.rsplit(" ", 1)[1]))
            elif name == "infergate_sim_inflight_requests":
                inflight += int(float(line.rsplit(" ", 1)[1]))
        counts.append(str(n))
    print(",".join(counts), inflight)
except Exception as e:
    print("-", "-")
    print(f"metrics scrape failed: {e}", file=sys.stderr)
EOF
}

# wait_quiet: poll the sims until none has a request inside (queues left by the last run
# drain before the next is counted). Prints the scrape; false after QUIET_DEADLINE_S.
wait_quiet() {
  local deadline=$((SECONDS + QUIET_DEADLINE_S)) scrape
  while :; do
    scrape=$(scrape_sims)
    if [[ ${scrape#* } == 0 ]]; then
      echo "${scrape% *}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "sims still busy after ${QUIET_DEADLINE_S}s (in flight: ${scrape#* })"
      echo "${scrape% *}"
      return 1
    fi
    sleep 0.05
  done
}

# start_nginx: least_conn over the sims (nginx.conf.in), with its small-message buffers
# (nginx's defaults, as compare_peers.sh uses for 1 KB).
start_nginx() {
  local port conf=$WORK_DIR/nginx.conf servers='' addr user_line=''
  port=$(free_port)
  for addr in "${SIM_ADDRS[@]}"; do servers+="    server $addr;"$'\n'; done
  # As root nginx drops its workers to 'nobody', who cannot write our 0700 work dir.
  ((EUID != 0)) || user_line="user $(id -un) $(id -gn);"
  render "$PEERS_DIR/nginx.conf.in" "$conf" "DIR=$WORK_DIR" "LISTEN=127.0.0.1:$port" \
    "UPSTREAM_SERVERS=${servers%$'\n'}" "USER_LINE=$user_line" "BODY_BUFFER=8k" \
    "PREREAD=64k" "GRPC_BUFFER=4k"
  grep -q 'least_conn;' "$conf" || log "warning: $conf has no least_conn (INFERGATE_PEERS_DIR?)"
  nginx -t -q -p "$WORK_DIR" -e "$WORK_DIR/nginx-error.log" -c "$conf" 2>"$WORK_DIR/nginx-t.log" ||
    { tail_log "$WORK_DIR/nginx-t.log"; die "nginx rejected $conf"; }
  nginx -p "$WORK_DIR" -e "$WORK_DIR/nginx-error.log" -c "$conf" >"$WORK_DIR/nginx.log" 2>&1 &
  register_proxy nginx $! "$port" "$WORK_DIR/nginx-error.log"
}

# start_haproxy: leastconn over the sims (haproxy.cfg.in), default 16 KiB buffers.
start_haproxy() {
  local port conf=$WORK_DIR/haproxy.cfg servers='' i
  port=$(free_port)
  for i in "${!SIM_ADDRS[@]}"; do servers+="  server ${SIM_NAMES[i]} ${SIM_ADDRS[i]} proto h2"$'\n'; done
  render "$PEERS_DIR/haproxy.cfg.in" "$conf" "LISTEN=127.0.0.1:$port" "SERVERS=${servers%$'\n'}" \
    "BUFSIZE=16384"
  grep -q 'balance leastconn' "$conf" || log "warning: $conf has no 'balance leastconn' (INFERGATE_PEERS_DIR?)"
  haproxy -c -q -f "$conf" >"$WORK_DIR/haproxy-c.log" 2>&1 ||
    { tail_log "$WORK_DIR/haproxy-c.log"; die "haproxy rejected $conf"; }
  haproxy -db -f "$conf" >"$WORK_DIR/haproxy.log" 2>&1 &
  register_proxy haproxy $! "$port" "$WORK_DIR/haproxy.log"
}

# start_infergate POLICY: one gateway with routing.policy POLICY, every other setting at
# its default; ready once it has listed the model on every sim.
start_infergate() {
  local policy=$1 conf=$WORK_DIR/infergate-$1.yaml logfile=$WORK_DIR/infergate-$1.log
  local i pid listen admin name
  {
    echo "# Generated by benchmarks/fleet_routing.sh"
    echo 'listen: "127.0.0.1:0"'
    echo 'admin_listen: "127.0.0.1:0"'
    echo "workers: $WORKERS"
    echo 'routing:'
    echo "  policy: $policy"
    echo 'backends:'
    for i in "${!SIM_ADDRS[@]}"; do
      echo "  - name: ${SIM_NAMES[i]}"
      echo "    address: \"${SIM_ADDRS[i]}\""
    done
  } >"$conf"
  "$GATEWAY" --config "$conf" >"$logfile" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  # Port 0: the gateway reports the ports it got.
  listen=$(wait_for_log "$pid" "$logfile" 'gateway listening address=[0-9.]+:[0-9]+') ||
    die "infergate ($policy) did not start"
  admin=$(wait_for_log "$pid" "$logfile" 'admin_listening address=[0-9.]+:[0-9]+') ||
    die "infergate ($policy): no admin port"
  for name in "${SIM_NAMES[@]}"; do
    wait_for_log "$pid" "$logfile" "inventory backend=$name models=[0-9]+ ready=[1-9]" >/dev/null ||
      die "infergate ($policy) never listed a ready model on $name"
  done
  register_proxy "$policy" "$pid" "${listen##*:}" "$logfile"
  log "$policy: admin http://${admin##*=}/metrics"
}

# register_proxy TARGET PID PORT LOG: remember a started balancer and wait for its port.
register_proxy() {
  local target=$1 pid=$2 port=$3 logfile=$4
  [[ " ${STARTED_PIDS[*]} " == *" $pid "* ]] || STARTED_PIDS+=("$pid")
  PROXY_PID[$target]=$pid
  TARGET_URL[$target]=127.0.0.1:$port
  TARGET_LOG[$target]=$logfile
  wait_for_port "$pid" "$port" "$logfile" || die "$target did not start listening"
  log "$target: pid $pid on 127.0.0.1:$port"
}

start_targets() {
  local target
  for target in "${TARGET_LIST[@]}"; do
    case $target in
      nginx) start_nginx ;;
      haproxy) start_haproxy ;;
      *) start_infergate "$target" ;;
    esac
  done
  for target in "${TARGET_LIST[@]}"; do wait_forwarding "$target" || true; done
}

# proxy_cpu_ticks TARGET: utime+stime (clock ticks) summed over the balancer's processes.
proxy_cpu_ticks() {
  local total=0 pid stat fields
  for pid in $(proxy_pids "$1"); do
    stat=$(<"/proc/$pid/stat") || continue
    # Fields after "(comm)": state is field 3, so utime (14) and stime (15) are [11], [12].
    read -r -a fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# --- Bench -----------------------------------------------------------------------------

# run_bench JSON LIMIT_S ARGS...: one bench run (bounded by LIMIT_S), in the background so
# that a signal to this script reaches the trap (which stops the bench) at once; sets
# BENCH_RC.
run_bench() {
  local json=$1 limit=$2
  shift 2
  timeout --kill-after=5 "$limit" "$BENCH" --progress never --json "$json" "$@" \
    >"${json%.json}.out" 2>&1 &
  BENCH_PID=$!
  BENCH_RC=0
  wait "$BENCH_PID" || BENCH_RC=$?
  BENCH_PID=
}

# bench_summary JSON: "REQUESTS ERRORS WHY" from a bench JSON (WHY: its first error).
bench_summary() {
  python3 - "$1" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["results"][0]
    why = r.get("first_error") or ("no request completed" if not r["requests"] else "-")
    print(r["requests"], r["error_count"], why)
except Exception:
    print(0, 0, "no bench output")
EOF
}

# wait_forwarding TARGET: quick concurrency-1 runs until one completes with no errors.
wait_forwarding() {
  local target=$1 deadline=$((SECONDS + READY_DEADLINE_S)) json summary
  json=$WORK_DIR/ready-$target.json
  while ((SECONDS < deadline)); do
    run_bench "$json" 15 -u "${TARGET_URL[$target]}" -m "$MODEL" --preset 1kb \
      --concurrency-range 1 --measurement-interval 200ms --max-trials 1 --timeout 2s
    summary=$(bench_summary "$json")
    if [[ $BENCH_RC == 0 && $summary == [1-9]*" 0 "* ]]; then
      log "$target: forwarding"
      return 0
    fi
    sleep 0.1
  done
  NOT_READY[$target]="not forwarding after ${READY_DEADLINE_S}s (bench exit $BENCH_RC: ${summary#* * })"
  log "$target: ${NOT_READY[$target]}"
  return 1
}

# record FIELDS...: one runs.tsv line (read by report).
record() {
  local IFS=$'\t'
  echo "$*" >>"$WORK_DIR/runs.tsv"
}

# gateway_events TARGET FROM_LINE: infergate's health transitions and warnings logged
# after line FROM_LINE of its log, joined with ' | ' ('-' for none, or for the peers).
gateway_events() {
  local target=$1 from=$2
  case $target in nginx | haproxy) echo -; return ;; esac
  local lines
  lines=$(tail -n +"$((from + 1))" -- "${TARGET_LOG[$target]}" |
    grep -E ' (warn|error|critical) |backend_state ' | sed -E 's/^[^ ]+ //') || true
  if [[ -z $lines ]]; then echo -; else paste -sd'|' - <<<"$lines" | sed 's/|/ | /g'; fi
}

# measure CONCURRENCY TARGET: with the fleet idle, read the sims' counters and the
# balancer's CPU; run the load (warm-up, then windows until stable or --max-trials); let
# the fleet go idle again and read both once more.
measure() {
  local conc=$1 target=$2 json counts_before counts_after cpu_before cpu_after loadavg
  local limit log_lines quiet=ok events
  json=$WORK_DIR/c$conc-$target.json
  if [[ -n ${NOT_READY[$target]:-} ]]; then
    record "$conc" "$target" failed - - - - - - - - "${NOT_READY[$target]}"
    return
  fi
  counts_before=$(wait_quiet) || quiet="sims busy before the run"
  loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
  cpu_before=$(proxy_cpu_ticks "$target")
  log_lines=$(wc -l <"${TARGET_LOG[$target]}")
  limit=$(($(duration_s "$WARMUP") + $(duration_s "$WINDOW") * MAX_TRIALS + 60))
  run_bench "$json" "$limit" -u "${TARGET_URL[$target]}" --connections "$CONNECTIONS" \
    -m "$MODEL" --preset 1kb --concurrency-range "$conc" --warmup "$WARMUP" \
    --measurement-interval "$WINDOW" --max-trials "$MAX_TRIALS"
  counts_after=$(wait_quiet) || quiet="sims still busy ${QUIET_DEADLINE_S}s after the run"
  cpu_after=$(proxy_cpu_ticks "$target")
  events=$(gateway_events "$target" "$log_lines")
  if ! kill -0 "${PROXY_PID[$target]}" 2>/dev/null; then
    log "$target (pid ${PROXY_PID[$target]}) exited during the run"
    NOT_READY[$target]="process exited during the run"
    quiet="process exited during the run"
  fi
  record "$conc" "$target" main "$json" "$BENCH_RC" "$counts_before" "$counts_after" \
    "$cpu_before" "$cpu_after" "$loadavg" "$events" "$quiet"
  log "c=$conc $target: $(summary_line "$json" "$BENCH_RC" "$counts_before" "$counts_after")"
}

# summary_line JSON RC BEFORE AFTER: one human line for progress output.
summary_line() {
  python3 - "$@" "${SIM_NAMES[*]}" <<'EOF'
import json, sys
path, rc, before, after, names = sys.argv[1:]
try:
    r = json.load(open(path))["results"][0]
    line = (f'{r["throughput"]:.0f} infer/s, p50 {r["latency_p50_us"]} us, '
            f'p99 {r["latency_p99_us"]} us, {r["error_count"]} errors')
except Exception:
    print(f"bench failed (exit {rc})")
    raise SystemExit
try:
    d = [int(b) - int(a) for a, b in zip(before.split(","), after.split(","))]
    line += "; served: " + ", ".join(f"{n} {x}" for n, x in zip(names.split(), d))
except ValueError:
    pass
print(line)
EOF
}

# --- Report ----------------------------------------------------------------------------

# host_info: KEY=VALUE lines about this machine and run, for the report.
host_info() {
  local dirty='' i
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || dirty=+dirty
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel=$(uname -r)"
  echo "os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
  echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')"
  echo "cores=$(nproc)"
  echo "memory_gib=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
  echo "loadavg_at_start=$LOADAVG_AT_START"
  echo "loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx=$(nginx -v 2>&1 | sed 's|^nginx version: nginx/||')"
  echo "haproxy=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')"
  echo "infergate=$("$GATEWAY" --version 2>/dev/null | awk '{print $NF}')"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$dirty"
  echo "clk_tck=$CLK_TCK"
  echo "workers=$WORKERS"
  echo "connections=$CONNECTIONS"
  echo "window=$WINDOW"
  echo "max_trials=$MAX_TRIALS"
  echo "warmup=$WARMUP"
  echo "model=$MODEL"
  for i in "${!SIM_NAMES[@]}"; do echo "sim.${SIM_NAMES[i]}=${SIM_SPECS[i]}"; done
}

# report: the tables (plain or markdown) on stdout and the JSON file. Returns 1 when a
# target had request errors, a failed bench or never forwarded.
report() {
  host_info >"$WORK_DIR/host.txt"
  local args=(--runs "$WORK_DIR/runs.tsv" --host "$WORK_DIR/host.txt" --targets "$TARGETS"
    --concurrency "$CONCURRENCY")
  [[ -z $JSON_OUT ]] || args+=(--json "$JSON_OUT")
  ((!MARKDOWN)) || args+=(--markdown)
  python3 - "${args[@]}" <<'PY'
import argparse, json, re

ap = argparse.ArgumentParser()
ap.add_argument("--runs"); ap.add_argument("--host"); ap.add_argument("--targets")
ap.add_argument("--concurrency"); ap.add_argument("--json")
ap.add_argument("--markdown", action="store_true")
a = ap.parse_args()
host = {}
for line in open(a.host):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        host[k] = v
sims = {k[4:]: v for k, v in host.items() if k.startswith("sim.")}  # name -> spec, in order
clk_tck = int(host["clk_tck"])
LABEL = {"least_loaded": "infergate least_loaded", "round_robin": "infergate round_robin",
         "random": "infergate random", "nginx": "nginx least_conn", "haproxy": "HAProxy leastconn"}
# "Equal throughput" allows for this much run-to-run noise on a shared 2-core machine.
TPUT_TOLERANCE = 0.05

def seconds(text):
    m = re.fullmatch(r"([0-9.]+)(ns|us|ms|s|m)?", text or "")
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, None: 1}[m.group(2)]

def capacity(spec):
    """Requests per second a sim can execute: instances / latency (None if unbounded)."""
    opts = dict(kv.split("=", 1) for kv in spec.split(":", 1)[1].split(",") if "=" in kv) if ":" in spec else {}
    latency = seconds(opts.get("latency", "0"))
    return int(opts.get("instances", "1")) / latency if latency else None

caps = {name: capacity(spec) for name, spec in sims.items()}
total_cap = sum(caps.values()) if all(caps.values()) else None

results, failed = {}, False
for line in open(a.runs):
    (conc, target, kind, path, rc, before, after, cpu0, cpu1, loadavg, events,
     quiet) = line.rstrip("\n").split("\t")
    row = results.setdefault(int(conc), {}).setdefault(target, {"label": LABEL[target]})
    if kind == "failed":
        row["error"] = quiet
        failed = True
        continue
    row["loadavg_before"] = loadavg
    if events != "-":
        row["gateway_events"] = events.split(" | ")
    if quiet != "ok":
        row["note"] = quiet
    try:
        bench = json.load(open(path))
        r = bench["results"][0]
    except Exception:
        r = None
    if not r or rc != "0":
        row["error"] = f"bench exit {rc}" + ("" if r else " (no results)")
        failed = True
        if not r:
            continue
    row.update(throughput=r["throughput"], p50_us=r["latency_p50_us"], p90_us=r["latency_p90_us"],
               p99_us=r["latency_p99_us"], max_us=r["latency_max_us"], requests=r["requests"],
               errors=r["error_count"], error_codes=r["errors"], first_error=r["first_error"],
               stable=r["stable"], windows=r["windows"], duration_s=r["duration_s"],
               bench_cpu_us_per_request=r.get("cpu_us_per_request"))
    if r["error_count"]:
        row.setdefault("error", f"{r['error_count']} errors, first: {r['first_error']}")
        failed = True
    try:
        served = [int(y) - int(x) for x, y in zip(before.split(","), after.split(","))]
    except ValueError:
        served = None
    if served is not None:
        total = sum(served)
        row["served"] = dict(zip(sims, served))
        row["share"] = {n: (s / total if total else None) for n, s in zip(sims, served)}
        cpu = (int(cpu1) - int(cpu0)) / clk_tck
        row["balancer_cpu_s"] = cpu
        row["balancer_cpu_us_per_request"] = cpu * 1e6 / total if total else None

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)

# The design claim, checked per concurrency: least_loaded's p99 below each comparison
# target's at equal (within TPUT_TOLERANCE) or higher throughput.
def verdicts(rows):
    ll = rows.get("least_loaded", {})
    out = []
    if "throughput" not in ll:
        return out
    for other in ("round_robin", "random", "nginx", "haproxy"):
        o = rows.get(other, {})
        if "throughput" not in o:
            continue
        p99_ratio = ll["p99_us"] / o["p99_us"] if o["p99_us"] else None
        tput_ratio = ll["throughput"] / o["throughput"] if o["throughput"] else None
        holds = (p99_ratio is not None and p99_ratio < 1 and
                 tput_ratio is not None and tput_ratio >= 1 - TPUT_TOLERANCE)
        out.append({"vs": other, "label": LABEL[other], "p99_ratio": p99_ratio,
                    "throughput_ratio": tput_ratio, "as_designed": holds})
    return out

concs = [int(c) for c in a.concurrency.split(",")]
targets = a.targets.split(",")
slow = [n for n in sims if n.startswith("slow")]
COLS = (["target", "infer/s", "p50 us", "p90 us", "p99 us"] + [f"{n} %" for n in sims] +
        ["CPU us/req", "errors", "notes"])

def table_rows(rows):
    out = []
    for target in targets:
        row = rows.get(target)
        if row is None:
            continue
        share = row.get("share", {})
        notes = []
        if "stable" in row and not row["stable"]:
            notes.append("windows not stable")
        if row.get("note"):
            notes.append(row["note"])
        if row.get("gateway_events"):
            notes.append(f"{len(row['gateway_events'])} health/warn log lines (see JSON)")
        out.append([row["label"], fmt(row.get("throughput"), ".0f"), fmt(row.get("p50_us"), "d"),
                    fmt(row.get("p90_us"), "d"), fmt(row.get("p99_us"), "d")] +
                   [fmt(share[n] * 100 if share.get(n) is not None else None, ".1f") for n in sims] +
                   [fmt(row.get("balancer_cpu_us_per_request"), ".1f"),
                    row.get("error", str(row.get("errors", "n/a"))), "; ".join(notes) or "-"])
    return out

def verdict_lines(rows):
    lines = []
    for v in verdicts(rows):
        lines.append(f"least_loaded vs {v['label']}: p99 {fmt(v['p99_ratio'], '.2f')}x, "
                     f"throughput {fmt(v['throughput_ratio'], '.2f')}x -> "
                     + ("as designed (lower p99, equal or higher throughput)" if v["as_designed"]
                        else "NOT as designed"))
    return lines

def fleet_line():
    parts = []
    for name, spec in sims.items():
        cap = caps[name]
        parts.append(f"{name} `{spec}`" + (f" (~{cap:.0f} infer/s)" if cap else ""))
    line = ", ".join(parts)
    if total_cap:
        shares = ", ".join(f"{n} {caps[n] / total_cap * 100:.1f}%" for n in slow)
        line += (f"; fleet capacity ~{total_cap:.0f} infer/s, a split by capacity gives "
                 f"{shares}" if slow else f"; fleet capacity ~{total_cap:.0f} infer/s")
    return line

def level_loads(rows):
    return ", ".join(f"{t} {rows[t]['loadavg_before'].split()[0]}" for t in targets
                     if t in rows and "loadavg_before" in rows[t])

if a.markdown:
    print("### Heterogeneous fleet: infergate's routing policies vs nginx and HAProxy\n")
    print(f"- date: {host['date']}, commit {host['commit']}, infergate {host['infergate'] or 'n/a'}, "
          f"nginx {host['nginx']} (worker_processes {host['workers']}, least_conn), HAProxy "
          f"{host['haproxy']} (nbthread {host['workers']}, leastconn), infergate workers: "
          f"{host['workers']}, other gateway settings at their defaults")
    print(f"- machine: {host['os']}, kernel {host['kernel']}, CPU {host['cpu']}, {host['cores']} "
          f"cores, {host['memory_gib']} GiB, shared by the sims, the balancer and the bench (all on "
          f"127.0.0.1); load average {host['loadavg_at_start']} before the run, "
          f"{host['loadavg_at_end']} after")
    print(f"- fleet: {fleet_line()}")
    print(f"- load: infergate-bench closed loop, preset 1kb, model {host['model']}, "
          f"{host['connections']} connections, warm-up {host['warmup']}, then {host['window']} "
          f"windows until the last 3 agree (at most {host['max_trials']}); shares = each sim's "
          f"nv_inference_request_success over the run; CPU = balancer utime+stime per request")
    for conc in concs:
        rows = results.get(conc)
        if not rows:
            continue
        print(f"\n#### concurrency {conc}\n")
        print("| " + " | ".join(COLS) + " |")
        print("|" + "|".join("---" if c in ("target", "errors", "notes") else "---:" for c in COLS) + "|")
        for r in table_rows(rows):
            print("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
        lines = verdict_lines(rows)
        if lines:
            print()
            for line in lines:
                print(f"- {line}")
        print(f"- 1-minute load average before each run: {level_loads(rows)}")
else:
    print(f"# {host['date']}  {host['cores']} cores ({host['cpu']}), kernel {host['kernel']}; "
          f"sims, balancer and bench share these cores; load average before: "
          f"{host['loadavg_at_start']}, after: {host['loadavg_at_end']}")
    print(f"# infergate {host['infergate'] or 'n/a'} ({host['workers']} workers), nginx "
          f"{host['nginx']} least_conn ({host['workers']} workers), HAProxy {host['haproxy']} "
          f"leastconn ({host['workers']} threads); commit {host['commit']}")
    print(f"# fleet: {fleet_line().replace('`', '')}")
    print(f"# load: closed loop, 1kb, {host['connections']} connections, warm-up {host['warmup']}, "
          f"{host['window']} windows x <= {host['max_trials']}; shares from each sim's metrics")
    for conc in concs:
        rows = results.get(conc)
        if not rows:
            continue
        table = table_rows(rows)
        widths = [max(len(c) for c in col) for col in zip(COLS, *table)]
        left = {0, len(COLS) - 2, len(COLS) - 1}
        print(f"\n== concurrency {conc}")
        for r in [COLS] + table:
            print("  ".join(c.ljust(w) if i in left else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        for line in verdict_lines(rows):
            print(f"   {line}")
        print(f"   load average (1 min) before each run: {level_loads(rows)}")

if a.json:
    doc = {"host": {k: v for k, v in host.items() if not k.startswith("sim.")},
           "fleet": [{"name": n, "model": s, "capacity_per_s": caps[n]} for n, s in sims.items()],
           "tput_tolerance": TPUT_TOLERANCE,
           "results": {str(c): results.get(c, {}) for c in concs},
           "verdicts": {str(c): verdicts(results.get(c, {})) for c in concs}}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
raise SystemExit(1 if failed else 0)
PY
}

main() {
  parse_args "$@"
  check_prereqs
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  LOADAVG_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fleet_routing.XXXXXX")
  : >"$WORK_DIR/runs.tsv"

  local concs conc target per_run n_runs
  IFS=, read -r -a concs <<<"$CONCURRENCY"
  IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
  per_run=$(($(duration_s "$WARMUP") + $(duration_s "$WINDOW") * MAX_TRIALS + 1))
  n_runs=$((${#concs[@]} * ${#TARGET_LIST[@]}))
  log "${#concs[@]} concurrency level(s) x ${#TARGET_LIST[@]} target(s): at most about" \
    "$((n_runs * per_run))s of load; $(nproc) cores shared by sims, balancers and bench"
  if awk -v cores="$(nproc)" '{ exit !($1 > cores / 4) }' /proc/loadavg; then
    log "warning: load average $LOADAVG_AT_START before starting: other work on this machine" \
      "(or a run that just ended) skews every number below"
  fi

  start_sims
  start_targets
  for conc in "${concs[@]}"; do
    for target in "${TARGET_LIST[@]}"; do measure "$conc" "$target"; done
  done
  REPORTED=1
  report
}

main "$@"
