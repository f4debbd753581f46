#!/usr/bin/env bash
# jwt_cost.sh: what auth.mode jwt costs the gateway per request. Two infergate-sim
# backends (identity, 64 instances) and two gateways (2 workers each) in front of them on
# 127.0.0.1: one without auth, one with auth.mode jwt (an RS256 issuer whose key and JWKS
# the script makes; required_scope and audience checked). infergate-bench runs at a fixed
# concurrency against each, alternated for a number of rounds; the JWT runs send one valid
# token, as a job does (its first request is checked, the rest are a cache hit). The
# gateway's CPU (utime+stime from /proc) around each run is divided by the requests the
# run completed.
#
# Needs a build (scripts/build.sh) and python3-jwt. Usage: benchmarks/jwt_cost.sh [rounds]
# [concurrency] [window] [presets]   (defaults 3, 16, 3s, "1kb random"; random is 1 MiB)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
ROUNDS=${1:-3}
CONCURRENCY=${2:-16}
WINDOW=${3:-3s}
PRESETS=${4:-"1kb random"}
# shellcheck source=benchmarks/lib/one_gateway.sh
source "$ROOT/benchmarks/lib/one_gateway.sh"

# The issuer: an RSA key, its JWKS, and one token valid for an hour.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/issuer.key" 2>/dev/null
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
TOKEN=$("$PYTHON" - "$WORK/issuer.key" "$WORK/jwks.json" <<'PY'
import base64, json, sys, time
import jwt
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
pub = key.public_key().public_numbers()
def b64(i):
    return base64.urlsafe_b64encode(i.to_bytes((i.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
json.dump({"keys": [{"kty": "RSA", "kid": "bench-1", "alg": "RS256", "use": "sig",
                     "n": b64(pub.n), "e": b64(pub.e)}]}, open(sys.argv[2], "w"))
now = int(time.time())
claims = {"iss": "https://issuer.bench", "sub": "bench-job", "aud": "infergate",
          "scope": "compute.read", "iat": now, "nbf": now, "exp": now + 3600,
          "jti": "bench", "wlcg.ver": "1.0"}
print(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"}))
PY
)

start_sims a b
printf 'listen: "127.0.0.1:0"\nadmin_listen: "127.0.0.1:0"\nworkers: 2\nbackends:\n' \
  >"$WORK/none.yaml"
printf '  - {name: %s, address: "%s"}\n' a "${SIMS[0]}" b "${SIMS[1]}" >>"$WORK/none.yaml"
{
  cat "$WORK/none.yaml"
  printf 'auth:\n  mode: jwt\n  required_scope: compute.read\n  issuers:\n'
  printf '    - {issuer: "https://issuer.bench", jwks_file: "%s", audience: infergate}\n' \
    "$WORK/jwks.json"
} >"$WORK/jwt.yaml"
start_gateway "$WORK/none.yaml" "$WORK/none.log"
NONE_PID=$GATEWAY_PID
start_gateway "$WORK/jwt.yaml" "$WORK/jwt.log"
JWT_PID=$GATEWAY_PID
none_address=$(wait_line "$WORK/none.log" "gateway listening address" | grep -o '127.0.0.1:[0-9]*')
jwt_address=$(wait_line "$WORK/jwt.log" "gateway listening address" | grep -o '127.0.0.1:[0-9]*')
wait_line "$WORK/none.log" "inventory backend=b" >/dev/null
wait_line "$WORK/jwt.log" "inventory backend=b" >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "c=$CONCURRENCY, windows of $WINDOW"
printf '%-6s %-6s %-6s %10s %12s %18s\n' round preset auth requests req/s gateway_us/req
for round in $(seq 1 "$ROUNDS"); do
  for preset in $PRESETS; do
    for mode in none jwt; do
      if [[ $mode == none ]]; then
        GATEWAY_PID=$NONE_PID
        measure "$none_address" "$CONCURRENCY" "$WINDOW" --preset "$preset"
      else
        GATEWAY_PID=$JWT_PID
        measure "$jwt_address" "$CONCURRENCY" "$WINDOW" --preset "$preset" \
          -H "authorization=Bearer $TOKEN"
      fi
      if grep -q '"error_count": *[1-9]' "$WORK/run.json"; then
        echo "$(basename "$0"): the $mode run had errors:" >&2
        cat "$WORK/run.txt" >&2
        exit 1
      fi
      printf '%-6s %-6s %-6s %10s %12s %18s\n' "$round" "$preset" "$mode" "$REQUESTS" "$RATE" \
        "$US_PER_REQUEST"
    done
  done
done
