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
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$WORK/san.ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 1 -extfile "$WORK/san.ext" -out "$WORK/tls.crt" 2>/dev/null

start_sims a b
cat >"$WORK/gw.yaml" <<EOF
listen: "127.0.0.1:0"
listen_plaintext: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
workers: 2
frontend:
  tls: {cert: "$WORK/tls.crt", key: "$WORK/tls.key"}
backends:
  - {name: a, address: "${SIMS[0]}"}
  - {name: b, address: "${SIMS[1]}"}
EOF
start_gateway "$WORK/gw.yaml"
tls_address=$(wait_line "$WORK/gw.log" "gateway listening address" | grep -o '127.0.0.1:[0-9]*')
plain_address=$(wait_line "$WORK/gw.log" "listening_plaintext" | grep -o '127.0.0.1:[0-9]*')
wait_line "$WORK/gw.log" "inventory backend=b" >/dev/null

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
        extra=(--tls-ca "$WORK/ca.crt" --tls-name localhost)
      fi
      measure "$target" "$CONCURRENCY" "$WINDOW" --preset "$preset" "${extra[@]}"
      printf '%-6s %-6s %-10s %10s %12s %18s\n' "$round" "$preset" "$mode" "$REQUESTS" "$RATE" \
        "$US_PER_REQUEST"
    done
  done
done
