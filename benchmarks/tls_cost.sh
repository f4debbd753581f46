#!/usr/bin/env bash
# tls_cost.sh: what TLS on the frontend costs the gateway. Two infergate-sim backends
# (identity, 64 instances) and one gateway (2 workers) with frontend.tls and a plaintext
# listener beside it (listen_plaintext), all on 127.0.0.1 with ports the OS picks; the
# certificate (P-256) is made by the script with openssl. infergate-bench runs at a fixed
# concurrency against the plaintext port, then the TLS port, for each payload preset,
# alternated for a number of rounds; the gateway's CPU (utime+stime from /proc) around
# each run is divided by the requests the run completed. The bench's own TLS costs it,
# not the gateway, so only the gateway's CPU is compared.
#
# Needs a build (scripts/build.sh). Usage: benchmarks/tls_cost.sh [rounds] [concurrency]
# [window] [presets]   (defaults 3, 16, 3s, "1kb random"; random is 1 MiB)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
CONCURRENCY=${2:-16}
WINDOW=${3:-3s}
PRESETS=${4:-"1kb random"}
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
  echo "tls_cost: no '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=bench-ca -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$work/san.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/tls.crt" 2>/dev/null

sims=()
for name in a b; do
  "$BUILD_DIR/benchmarks/sim/infergate-sim" --name "$name" --listen 127.0.0.1:0 \
    --model identity:instances=64 >"$work/$name.log" 2>&1 &
  pids+=($!)
  sims+=("$(wait_line "$work/$name.log" "listening on" | grep -o '127.0.0.1:[0-9]*')")
done
cat >"$work/gw.yaml" <<EOF
listen: "127.0.0.1:0"
listen_plaintext: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 2
frontend:
  tls: {cert: "$work/tls.crt", key: "$work/tls.key"}
backends:
  - {name: a, address: "${sims[0]}"}
  - {name: b, address: "${sims[1]}"}
EOF
"$BUILD_DIR/gateway/infergate" --config "$work/gw.yaml" >"$work/gw.log" 2>&1 &
gateway=$!
pids+=("$gateway")
tls_address=$(wait_line "$work/gw.log" "gateway listening address" | grep -o '127.0.0.1:[0-9]*')
plain_address=$(wait_line "$work/gw.log" "listening_plaintext" | grep -o '127.0.0.1:[0-9]*')
wait_line "$work/gw.log" "inventory backend=b" >/dev/null

tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gateway/stat"; }
ktls=$(grep -qw '^tls' /proc/modules 2>/dev/null && echo loaded || echo "not loaded")
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "c=$CONCURRENCY, windows of $WINDOW, kernel tls module $ktls"
printf '%-6s %-6s %-10s %10s %12s %18s\n' round preset mode requests req/s gateway_us/req
for round in $(seq 1 "$ROUNDS"); do
  for preset in $PRESETS; do
    for mode in plaintext tls; do
      target=$plain_address
      extra=()
      if [[ $mode == tls ]]; then
        target=$tls_address
        extra=(--tls-ca "$work/ca.crt" --tls-name localhost)
      fi
      before=$(cpu_ticks)
      "$BUILD_DIR/benchmarks/bench/infergate-bench" -u "$target" --preset "$preset" \
        --concurrency-range "$CONCURRENCY" --connections 2 --measurement-interval "$WINDOW" \
        --max-trials 3 --stability-percentage 100 "${extra[@]}" --json "$work/run.json" \
        --progress never >"$work/run.txt" 2>&1
      after=$(cpu_ticks)
      requests=$(grep -o '"requests": *[0-9]*' "$work/run.json" | head -1 | grep -o '[0-9]*$')
      rate=$(tail -1 "$work/run.txt" | awk '{print $2}')
      printf '%-6s %-6s %-10s %10s %12s %18s\n' "$round" "$preset" "$mode" "$requests" "$rate" \
        "$(echo "scale=1; ($after - $before) * 1000000 / $tick / $requests" | bc)"
    done
  done
done
