#!/usr/bin/env bash
# saturation.sh: the ProtoDUNE saturation, reproduced on one machine.
#
# Two network namespaces joined by a veth pair: the clients (infergate-bench) and the
# gateway on one side, the sims on the other. The client side's egress (the request
# direction, as in ProtoDUNE: images in, small answers out) is limited with
# `tc qdisc ... tbf` to --link-rate with a small queue, like a saturated switch port.
# Many clients send large requests in a closed loop. The same load runs three ways:
#   direct     every client connection straight to the sims (what the jobs did)
#   nolimit    through infergate with no admission limit
#   limited    through infergate with limits.link_bandwidth just under the link rate
# and the report gives throughput and p50/p90/p99/max latency for each.
#
# Needs root (namespaces, tc), iproute2, and a build (scripts/build.sh). Everything it
# creates is named ig-sat-<pid>-* and removed on exit, also on Ctrl-C.
#
# Usage: benchmarks/saturation.sh [--link-rate 400mbit] [--limit-percent 90]
#        [--concurrency 48] [--bytes 1MiB] [--sims 2] [--window 3s] [--warmup 2s]
#        [--connections 16] [--markdown]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
GATEWAY=$BUILD_DIR/gateway/infergate
SIM=$BUILD_DIR/benchmarks/sim/infergate-sim
BENCH=$BUILD_DIR/benchmarks/bench/infergate-bench

LINK_RATE=400mbit   # tc rate of the request direction
LIMIT_PERCENT=90    # link_bandwidth = this share of the link rate
CONCURRENCY=48
BYTES=1MiB
SIMS=2
WINDOW=3s
WARMUP=2s
CONNECTIONS=16
MARKDOWN=0

TAG="ig-sat-$$"
CLI_NS="$TAG-c"
SRV_NS="$TAG-s"
WORK_DIR=
PIDS=()

log() { printf '[saturation] %s\n' "$*" >&2; }
die() {
  printf 'saturation: error: %s\n' "$*" >&2
  exit 1
}

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

parse_args() {
  while (($#)); do
    case $1 in
      --link-rate) LINK_RATE=${2:?}; shift ;;
      --limit-percent) LIMIT_PERCENT=${2:?}; shift ;;
      --concurrency) CONCURRENCY=${2:?}; shift ;;
      --bytes) BYTES=${2:?}; shift ;;
      --sims) SIMS=${2:?}; shift ;;
      --window) WINDOW=${2:?}; shift ;;
      --warmup) WARMUP=${2:?}; shift ;;
      --connections) CONNECTIONS=${2:?}; shift ;;
      --markdown) MARKDOWN=1 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  [[ $LINK_RATE =~ ^([0-9]+)(kbit|mbit|gbit)$ ]] || die "--link-rate: e.g. 400mbit, 1gbit"
  [[ $LIMIT_PERCENT =~ ^[0-9]+$ ]] && ((LIMIT_PERCENT > 0 && LIMIT_PERCENT <= 100)) ||
    die "--limit-percent: 1-100"
  [[ $CONCURRENCY =~ ^[1-9][0-9]*$ && $SIMS =~ ^[1-9][0-9]*$ && $CONNECTIONS =~ ^[1-9][0-9]*$ ]] ||
    die "--concurrency, --sims and --connections are positive integers"
}

# The link rate in bytes per second, and link_bandwidth's value for the gateway.
link_bytes_per_second() {
  [[ $LINK_RATE =~ ^([0-9]+)(kbit|mbit|gbit)$ ]]
  local n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  case $unit in
    kbit) echo $((n * 1000 / 8)) ;;
    mbit) echo $((n * 1000000 / 8)) ;;
    gbit) echo $((n * 1000000000 / 8)) ;;
  esac
}

check_prereqs() {
  ((EUID == 0)) || die "needs root (network namespaces and tc)"
  for bin in ip tc python3 timeout; do command -v "$bin" >/dev/null || die "$bin is required (iproute2)"; done
  for bin in "$GATEWAY" "$SIM" "$BENCH"; do
    [[ -x $bin ]] || die "$bin not found; build first: bash scripts/build.sh"
  done
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$CLI_NS" 2>/dev/null || true
  ip netns del "$SRV_NS" 2>/dev/null || true
  [[ -z $WORK_DIR ]] || rm -rf -- "$WORK_DIR"
  exit "$rc"
}

setup_network() {
  ip netns add "$CLI_NS"
  ip netns add "$SRV_NS"
  ip link add "${TAG}a" type veth peer name "${TAG}b"
  ip link set "${TAG}a" netns "$CLI_NS"
  ip link set "${TAG}b" netns "$SRV_NS"
  ip -n "$CLI_NS" addr add 10.201.0.1/24 dev "${TAG}a"
  ip -n "$SRV_NS" addr add 10.201.0.2/24 dev "${TAG}b"
  for ns in "$CLI_NS" "$SRV_NS"; do ip -n "$ns" link set lo up; done
  ip -n "$CLI_NS" link set "${TAG}a" up
  ip -n "$SRV_NS" link set "${TAG}b" up
  # The request direction: a rate-limited port with a short queue (drops when full).
  tc -n "$CLI_NS" qdisc add dev "${TAG}a" root tbf rate "$LINK_RATE" burst 64kb latency 20ms
  log "link: ${TAG}a -> ${TAG}b, tbf rate $LINK_RATE, burst 64kb, queue 20ms"
}

# wait_for_log FILE REGEX: prints the first match, or fails after 20 s.
wait_for_log() {
  local file=$1 regex=$2 deadline=$((SECONDS + 20)) match
  while ((SECONDS < deadline)); do
    if match=$(grep -Eo -m1 -- "$regex" "$file" 2>/dev/null); then
      echo "$match"
      return 0
    fi
    sleep 0.05
  done
  tail -n 20 "$file" >&2
  return 1
}

SIM_ADDRS=()
start_sims() {
  local i logfile addr
  for ((i = 1; i <= SIMS; i++)); do
    logfile=$WORK_DIR/sim-$i.log
    # A GPU-like model: 4 instances, 2 ms per request plus 1 ms per MiB.
    ip netns exec "$SRV_NS" "$SIM" --listen 10.201.0.2:0 --name "sim-$i" \
      --model "identity:instances=4,latency=2ms,per_mb=1ms" >"$logfile" 2>&1 &
    PIDS+=($!)
    addr=$(wait_for_log "$logfile" 'listening on [0-9.]+:[0-9]+') || die "sim-$i did not start"
    SIM_ADDRS+=("${addr##* }")
  done
  log "sims: ${SIM_ADDRS[*]}"
}

GATEWAY_PID=
GATEWAY_ADDR=
start_gateway() {
  local name=$1 limits=$2 conf=$WORK_DIR/$1.yaml logfile=$WORK_DIR/$1.log i addr
  {
    echo 'listen: "127.0.0.1:0"'
    echo 'admin_listen: "127.0.0.1:0"'
    echo 'workers: 2'
    echo 'backends:'
    for i in "${!SIM_ADDRS[@]}"; do
      echo "  - name: sim-$((i + 1))"
      echo "    address: \"${SIM_ADDRS[i]}\""
    done
    echo "$limits"
  } >"$conf"
  ip netns exec "$CLI_NS" "$GATEWAY" --config "$conf" >"$logfile" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  addr=$(wait_for_log "$logfile" 'gateway listening address=[0-9.]+:[0-9]+') || die "gateway did not start"
  GATEWAY_ADDR=${addr##*=}
  wait_for_log "$logfile" "to=healthy" >/dev/null || die "gateway: no healthy backend"
}

stop_gateway() {
  kill -TERM "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
}

# run_bench NAME URLS: one closed-loop run; JSON in $WORK_DIR/NAME.json.
run_bench() {
  local name=$1 urls=$2
  log "$name: concurrency $CONCURRENCY, $BYTES requests, $CONNECTIONS connections -> $urls"
  ip netns exec "$CLI_NS" timeout 300 "$BENCH" -u "$urls" --preset random --bytes "$BYTES" \
    --concurrency-range "$CONCURRENCY" --connections "$CONNECTIONS" --warmup "$WARMUP" \
    --measurement-interval "$WINDOW" --max-trials 3 --timeout 120s --progress never \
    --json "$WORK_DIR/$name.json" >"$WORK_DIR/$name.out" 2>&1 || log "$name: bench exit $?"
  tail -n 1 "$WORK_DIR/$name.out" >&2
}

report() {
  python3 - "$WORK_DIR" "$LINK_RATE" "$(link_bytes_per_second)" "$LIMIT_PERCENT" \
    "$CONCURRENCY" "$BYTES" "$SIMS" "$MARKDOWN" <<'EOF'
import json, os, sys
work, rate, link_bps, pct, conc, size, sims, md = sys.argv[1:]
rows = []
for name, label in (("direct", "direct (clients to sims)"), ("nolimit", "infergate, no limit"),
                    ("limited", f"infergate, link_bandwidth {pct}% of link")):
    try:
        r = json.load(open(os.path.join(work, name + ".json")))["results"][0]
    except Exception as e:
        rows.append([label, "failed", "", "", "", "", "", ""])
        continue
    rows.append([label, f'{r["throughput"]:.1f}', f'{r["latency_p50_us"] / 1000:.0f}',
                 f'{r["latency_p90_us"] / 1000:.0f}', f'{r["latency_p99_us"] / 1000:.0f}',
                 f'{r["latency_max_us"] / 1000:.0f}',
                 f'{r["latency_p99_us"] / max(r["latency_p50_us"], 1):.2f}',
                 str(r["error_count"])])
cols = ["run", "infer/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "p99/p50", "errors"]
print(f"# link {rate} ({int(link_bps) / 1e6:.1f} MB/s) request direction, tbf queue 20 ms; "
      f"{sims} sims; closed loop, concurrency {conc}, {size} dense requests")
if md == "1":
    print("| " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * (len(cols) - 1))
    for r in rows:
        print("| " + " | ".join(r) + " |")
else:
    widths = [max(len(c) for c in col) for col in zip(cols, *rows)]
    for r in [cols] + rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
EOF
}

main() {
  parse_args "$@"
  check_prereqs
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$TAG.XXXXXX")
  setup_network
  start_sims
  local urls limit_bytes
  urls=$(IFS=,; echo "${SIM_ADDRS[*]}")
  run_bench direct "$urls"
  start_gateway nolimit ""
  run_bench nolimit "$GATEWAY_ADDR"
  stop_gateway
  limit_bytes=$(($(link_bytes_per_second) * LIMIT_PERCENT / 100))
  start_gateway limited "limits:
  link_bandwidth: ${limit_bytes}B/s
  link_burst: 1MiB"
  run_bench limited "$GATEWAY_ADDR"
  stop_gateway
  report
}

main "$@"
