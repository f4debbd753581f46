#!/usr/bin/env bash
# The main job, for a newcomer on a fresh machine: installs what the build needs, builds,
# starts three simulated Triton servers and the gateway from deploy/demo/infergate.yaml,
# drives it with infergate-bench for a few seconds, prints what happened, and drains.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh --build-only
bash scripts/build.sh

sim="$root/build/benchmarks/sim/infergate-sim"
gateway="$root/build/gateway/infergate"
bench="$root/build/benchmarks/bench/infergate-bench"
config="$root/deploy/demo/infergate.yaml"
logs=$(mktemp -d /tmp/infergate-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 18001 18002 18101 18102 18103 18201 18202 18203; do
  port_free "$port" || { echo "demo: port $port is in use; stop whatever holds it" >&2; exit 1; }
done

# Waits (with a deadline) until FILE has a line containing TEXT.
wait_for() {
  local file=$1 text=$2
  for _ in $(seq 1 100); do
    grep -q "$text" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: timed out waiting for '$text' in $file" >&2
  cat "$file" >&2
  exit 1
}

echo "== three simulated Triton servers (sim-c is slower, with fewer model instances)"
start_sim() {
  local name=$1 port=$2 metrics=$3 spec=$4
  "$sim" --name "$name" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics" \
    --model "$spec" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  wait_for "$logs/$name.log" "listening on"
  echo "   $name on 127.0.0.1:$port, model $spec"
}
start_sim sim-a 18101 18201 "identity:instances=4,latency=2ms"
start_sim sim-b 18102 18202 "identity:instances=4,latency=2ms"
start_sim sim-c 18103 18203 "identity:instances=2,latency=8ms"

echo "== the gateway, from $config"
"$gateway" --config "$config" >"$logs/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for "$logs/gateway.log" "gateway listening"
for s in sim-a sim-b sim-c; do wait_for "$logs/gateway.log" "inventory backend=$s"; done
sed 's/^/   /' "$logs/gateway.log"

echo "== infergate-bench through the gateway: concurrency 1, 16 and 31, answers validated"
"$bench" -u 127.0.0.1:18001 --concurrency-range 1:31:15 --measurement-interval 1s \
  --max-trials 3 --validate

echo "== what the gateway counted (admin port 18002, /metrics)"
curl -s http://127.0.0.1:18002/metrics |
  grep -E '^infergate_(requests_total|active_streams|healthy_backends|retries_total|request_body_bytes_total)|state="healthy"' |
  sed 's/^/   /'

echo "== who served the requests (each sim's own Triton-style counters)"
for s in sim-a:18201 sim-b:18202 sim-c:18203; do
  n=$(curl -s "http://127.0.0.1:${s#*:}/metrics" | awk '/^nv_inference_request_success/ {sum += $2} END {print sum + 0}')
  echo "   ${s%%:*}: $n requests"
done
echo "   (least-loaded routing: the slower sim-c gets fewer requests)"

echo "== SIGTERM: the gateway drains and exits"
kill -TERM "$gateway_pid"
wait "$gateway_pid" && echo "   exit status 0"
grep -E "draining|drained|stopped" "$logs/gateway.log" | sed 's/^/   /'
echo "logs: $logs"
