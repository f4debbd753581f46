#!/usr/bin/env bash
# compare_peers.sh: infergate against the proxies it competes with, in one run.
#
# Starts two infergate-sim backends (identity model, 64 instances, zero latency) and, in
# front of the same two sims, nginx (grpc_pass, least_conn), HAProxy (h2, leastconn),
# nghttpx (nghttp2's own proxy, h2 backends), Caddy (reverse_proxy, h2c backends) and
# infergate, each with the same number of workers/threads (--threads, default 2), and
# optionally "l4": HAProxy as a plain TCP relay, the floor of any proxy that moves the
# bytes through user space (a yardstick, not a peer; see peers/haproxy-tcp.cfg.in); --pin
# keeps the proxy on cores of its own and the sims and the bench on the rest.
# With --tls every proxy terminates TLS on its client side the same way (one P-256
# certificate made for the run, TLS 1.2/1.3, ALPN h2, OpenSSL 3 for all four) and the
# bench speaks TLS to it; the backends stay plaintext, and so does "direct". For every payload size and every target it runs
# infergate-bench at a fixed concurrency and records throughput, p50/p99 latency, the
# proxy's CPU time per request (utime+stime of all its processes, from /proc, around the
# run) and, in a second concurrency-1 run, the latency the proxy adds over going direct.
#
# nginx and HAProxy are configured from benchmarks/peers/*.in for long-lived gRPC and large
# messages, and each payload size gets freshly started proxies whose buffers suit it (the
# buffers that make 1 MiB cheap make 1 KB dearer), so no peer loses for a one-size config.
#
# Everything runs on 127.0.0.1 on this one machine: sims, proxy and bench share its cores,
# so absolute numbers are only comparable within one run of this script.
#
# Usage: benchmarks/compare_peers.sh [--sizes 1kb,1mb] [--targets direct,nginx,...]
#        [--concurrency N|N,N,...] [--window 3s] [--c1-window 1s] [--no-c1]
#        [--connections 2] [--threads 2] [--pin] [--tls] [--json FILE] [--markdown] [--keep]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${INFERGATE_BUILD_DIR:-$ROOT/build}
GATEWAY=$BUILD_DIR/gateway/infergate
SIM=$BUILD_DIR/benchmarks/sim/infergate-sim
BENCH=$BUILD_DIR/benchmarks/bench/infergate-bench
PEERS_DIR=${INFERGATE_PEERS_DIR:-$ROOT/benchmarks/peers} # nginx.conf.in, haproxy.cfg.in

ALL_TARGETS=(direct nginx haproxy nghttpx caddy infergate l4)
NUM_SIMS=2
SIM_MODEL='identity:instances=64,latency=0s'
READY_DEADLINE_S=20   # per process: listening, then actually forwarding
BALANCE_ATTEMPTS=10   # bench starts tried until both nginx workers get connections

# Options (see usage).
SIZES=1kb,1mb
TARGETS=direct,nginx,haproxy,nghttpx,caddy,infergate
TLS=0
CONCURRENCY=
WINDOW=3s
C1_WINDOW=1s
C1=1
MAX_TRIALS=3
CONNECTIONS_LIST=2  # --connections: one value, or a list (an axis: a table per value)
CONNECTIONS=2       # the value being measured
THREADS=2           # --threads: workers/threads of every proxy
PIN=0               # --pin: proxy on the last THREADS cores, sims and bench on the others
LOAD_PIN=()         # the command prefix that pins sims and bench (taskset), or nothing
PROXY_PIN=()        # the same for the proxies
LOAD_CPUS=          # with --pin: the cores of the sims and the bench (taskset -c list)
PROXY_CPUS=         # and of the proxy
JSON_OUT=
MARKDOWN=0
KEEP=0

# State, filled as the script goes.
WORK_DIR=
STARTED_PIDS=()          # every process this script started, killed on exit
SIM_ADDRS=()
TARGET_LIST=()           # --targets as an array
LABELS=                  # the tables: SIZE, or SIZE/Nconn on a --connections axis
declare -A PROXY_PID=()  # target -> root pid of the proxy (nginx master, haproxy, infergate)
declare -A TARGET_URL=() # target -> value for bench -u
declare -A NOT_READY=()  # target -> why it never forwarded
BENCH_PID=               # the bench run in progress (its `timeout` wrapper)
BENCH_RC=0               # exit status of the last bench run
LOADAVG_AT_START=        # other load on the machine skews every number: it is reported
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[compare_peers] %s\n' "$*" >&2; }
die() {
  printf 'compare_peers: error: %s\n' "$*" >&2
  exit 1
}

# stop_process, free_port, tail_log, wait_for_log, wait_for_port, render, proxy_pids.
# shellcheck source=benchmarks/lib/procs.sh
source "$ROOT/benchmarks/lib/procs.sh"

usage() {
  cat <<'EOF'
usage: benchmarks/compare_peers.sh [options]

Runs the same sims and the same infergate-bench load against direct, nginx, HAProxy,
nghttpx, Caddy and infergate, and prints one table per payload size.

  --sizes LIST         payload sizes (default 1kb,1mb): 1kb = preset 1kb; NNkb / NNmb =
                       preset random with --bytes NNKiB / NNMiB (e.g. 1mb, 16mb)
  --targets LIST       any of direct,nginx,haproxy,nghttpx,caddy,infergate (default all
                       of these) and l4: HAProxy in mode tcp, a TCP relay that parses
                       nothing; each proxy's CPU per request is also given against it
  --concurrency N[,N]  closed-loop concurrency, one value for all sizes or one per size
                       (default 16 up to 64 KB, 4 up to 4 MB, 2 above)
  --window DUR         bench measurement window (default 3s); --max-trials 3
  --c1-window DUR      window of the concurrency-1 latency run (default 1s)
  --no-c1              skip the concurrency-1 latency runs
  --connections N[,N]  client connections per proxy target (default 2, one per proxy
                       worker); direct spreads N over the sims (at least 1 each). A list
                       (e.g. 4,100,1000) is an axis: every size is measured at each
                       count, on the same proxies, one table per size and count
  --threads N          workers (or threads) of every proxy: nginx worker_processes, HAProxy
                       nbthread, nghttpx --workers, Caddy GOMAXPROCS, infergate workers
                       (default 2)
  --pin                pin the proxy to the last N cores (taskset) and the sims and the bench
                       to the others, so that the proxy's CPU and the load's do not mix;
                       needs more cores than --threads (on 2 cores: --threads 1)
  --tls                every proxy terminates TLS (a P-256 certificate made for the run;
                       TLS 1.2/1.3, ALPN h2); the bench speaks TLS to the proxies
  --json FILE          write every number (and host details) as JSON
  --markdown           print the tables as markdown for benchmarks/RESULTS.md
  --keep               keep the work dir (configs, logs, bench JSON) and print its path
  -h, --help           this text

Proxy CPU is utime+stime of all the proxy's processes (/proc/PID/stat fields 14+15)
before and after the measured run, divided by the requests the bench completed.
Environment: INFERGATE_BUILD_DIR (default ./build); INFERGATE_PEERS_DIR (default
benchmarks/peers: the nginx.conf.in and haproxy.cfg.in templates, to try other settings).
EOF
}

parse_args() {
  while (($#)); do
    case $1 in
      --sizes) SIZES=${2:?--sizes needs a value}; shift ;;
      --targets) TARGETS=${2:?--targets needs a value}; shift ;;
      --concurrency) CONCURRENCY=${2:?--concurrency needs a value}; shift ;;
      --window) WINDOW=${2:?--window needs a value}; shift ;;
      --c1-window) C1_WINDOW=${2:?--c1-window needs a value}; shift ;;
      --c1) C1=1 ;;
      --no-c1) C1=0 ;;
      --connections) CONNECTIONS_LIST=${2:?--connections needs a value}; shift ;;
      --json) JSON_OUT=${2:?--json needs a file}; shift ;;
      --tls) TLS=1 ;;
      --threads) THREADS=${2:?--threads needs a value}; shift ;;
      --pin) PIN=1 ;;
      --markdown) MARKDOWN=1 ;;
      --keep) KEEP=1 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  local t
  for t in ${TARGETS//,/ }; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (known: ${ALL_TARGETS[*]})"
  done
  ((!TLS)) || [[ ,$TARGETS, != *,l4,* ]] ||
    die "the l4 target relays bytes unchanged and cannot terminate TLS: leave it out with --tls"
  [[ $CONNECTIONS_LIST =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
    die "--connections must be a positive integer or a comma-separated list of them"
  [[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
  if ((PIN)); then
    local cores
    cores=$(nproc)
    ((cores > THREADS)) || die "--pin needs more cores ($cores) than --threads ($THREADS)"
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    LOAD_CPUS=$(cpu_range 0 $((cores - THREADS - 1)))
    PROXY_CPUS=$(cpu_range $((cores - THREADS)) $((cores - 1)))
    LOAD_PIN=(taskset -c "$LOAD_CPUS")
    PROXY_PIN=(taskset -c "$PROXY_CPUS")
  fi
  # Fail now rather than after minutes of measuring.
  [[ -z $JSON_OUT || -d $(dirname -- "$JSON_OUT") ]] || die "--json: no directory for $JSON_OUT"
}

# cpu_range FIRST LAST: a taskset -c list ("1" or "0-2").
cpu_range() { if (($1 == $2)); then echo "$1"; else echo "$1-$2"; fi; }

# --- Sizes -----------------------------------------------------------------------------

# size_bench_args SIZE: the bench options that produce this payload (1kb, NNkb, NNmb).
size_bench_args() {
  local size=${1,,}
  [[ $size =~ ^([1-9][0-9]*)(kb|mb)$ ]] || die "bad size '$1' (expected e.g. 1kb, 64kb, 1mb, 16mb)"
  case $size in
    1kb) echo "--preset 1kb" ;;
    *kb) echo "--preset random --bytes ${BASH_REMATCH[1]}KiB" ;;
    *mb) echo "--preset random --bytes ${BASH_REMATCH[1]}MiB" ;;
  esac
}

# size_bytes SIZE: the payload in bytes.
size_bytes() {
  local size=${1,,}
  case $size in
    *kb) echo $((${size%kb} * 1024)) ;;
    *mb) echo $((${size%mb} * 1024 * 1024)) ;;
  esac
}

# size_concurrency INDEX SIZE: --concurrency (one value or one per size) or the default.
size_concurrency() {
  local index=$1 size=$2 list
  if [[ -n $CONCURRENCY ]]; then
    IFS=, read -r -a list <<<"$CONCURRENCY"
    if ((${#list[@]} == 1)); then echo "${list[0]}"; else echo "${list[index]:-}"; fi
    return
  fi
  local bytes
  bytes=$(size_bytes "$size")
  if ((bytes <= 64 * 1024)); then echo 16; elif ((bytes <= 4 * 1024 * 1024)); then echo 4; else echo 2; fi
}

# --- Prerequisites ---------------------------------------------------------------------

check_prereqs() {
  local bin
  for bin in "$GATEWAY" "$SIM" "$BENCH"; do
    [[ -x $bin ]] || die "$bin not found or not executable; build first: bash scripts/build.sh (or set INFERGATE_BUILD_DIR)"
  done
  [[ ,$TARGETS, != *,nginx,* ]] || command -v nginx >/dev/null ||
    die "nginx not found (Debian nginx-light); install it: bash scripts/install-deps.sh"
  [[ ,$TARGETS, != *,haproxy,* && ,$TARGETS, != *,l4,* ]] || command -v haproxy >/dev/null ||
    die "haproxy not found; install it: bash scripts/install-deps.sh"
  [[ ,$TARGETS, != *,nghttpx,* ]] || command -v nghttpx >/dev/null ||
    die "nghttpx not found (Debian nghttp2-proxy); install it: bash scripts/install-deps.sh"
  [[ ,$TARGETS, != *,caddy,* ]] || command -v caddy >/dev/null ||
    die "caddy not found (Debian caddy); install it: bash scripts/install-deps.sh"
  ((!TLS)) || command -v openssl >/dev/null || die "openssl is required for --tls"
  local template
  for template in nginx.conf.in haproxy.cfg.in Caddyfile.in; do
    [[ -r $PEERS_DIR/$template ]] || die "$PEERS_DIR/$template not found (INFERGATE_PEERS_DIR?)"
  done
  [[ ,$TARGETS, != *,l4,* || -r $PEERS_DIR/haproxy-tcp.cfg.in ]] ||
    die "$PEERS_DIR/haproxy-tcp.cfg.in not found (INFERGATE_PEERS_DIR?)"
  for bin in python3 pgrep timeout; do
    command -v "$bin" >/dev/null || die "$bin is required"
  done
  local sizes i conc concs
  IFS=, read -r -a sizes <<<"$SIZES"
  IFS=, read -r -a concs <<<"$CONCURRENCY"
  ((${#concs[@]} <= 1 || ${#concs[@]} == ${#sizes[@]})) ||
    die "--concurrency: need one value, or one per size (${SIZES})"
  for i in "${!sizes[@]}"; do
    size_bench_args "${sizes[i]}" >/dev/null
    conc=$(size_concurrency "$i" "${sizes[i]}")
    [[ $conc =~ ^[1-9][0-9]*$ ]] || die "--concurrency: need one value, or one per size (${SIZES})"
  done
  duration_s "$WINDOW" >/dev/null
  duration_s "$C1_WINDOW" >/dev/null
}

# --- Processes -------------------------------------------------------------------------

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  [[ -z $BENCH_PID ]] || stop_process "$BENCH_PID"
  for pid in "${STARTED_PIDS[@]}"; do stop_process "$pid"; done
  if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then
    if ((KEEP)); then log "work dir kept: $WORK_DIR"; else rm -rf -- "$WORK_DIR"; fi
  fi
  exit "$rc"
}

start_sims() {
  local i logfile pid addr
  for ((i = 1; i <= NUM_SIMS; i++)); do
    logfile=$WORK_DIR/sim-$i.log
    "${LOAD_PIN[@]}" "$SIM" --listen 127.0.0.1:0 --name "sim-$i" --model "$SIM_MODEL" >"$logfile" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    addr=$(wait_for_log "$pid" "$logfile" 'listening on [0-9.]+:[0-9]+') || die "sim-$i did not start"
    SIM_ADDRS+=("${addr##* }")
  done
  log "sims: ${SIM_ADDRS[*]}"
}

# make_certificate: a CA and a P-256 server certificate for 127.0.0.1 in the work dir
# (--tls), and the PEM bundle HAProxy reads.
make_certificate() {
  local d=$WORK_DIR
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
  echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$d/san.ext"
  openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 1 -extfile "$d/san.ext" -out "$d/tls.crt" 2>/dev/null
  cat "$d/tls.crt" "$d/tls.key" >"$d/tls.pem"
  log "tls: certificate for 127.0.0.1 and localhost in $d (P-256, from bench-ca)"
}

# start_nginx SIZE: buffers follow the payload (see nginx.conf.in): nginx's defaults up to
# 64 KB messages, 256k above.
start_nginx() {
  local port conf servers='' addr user_line='' buffers=(8k 64k 4k)
  (($(size_bytes "$1") <= 64 * 1024)) || buffers=(256k 256k 256k)
  port=$(free_port)
  conf=$WORK_DIR/nginx-$1.conf
  for addr in "${SIM_ADDRS[@]}"; do servers+="    server $addr;"$'\n'; done
  # As root nginx drops its workers to 'nobody', who cannot write our 0700 work dir.
  ((EUID != 0)) || user_line="user $(id -un) $(id -gn);"
  local listen_opts=http2 tls_lines=''
  if ((TLS)); then
    listen_opts="ssl http2"
    tls_lines="      ssl_certificate $WORK_DIR/tls.crt;
      ssl_certificate_key $WORK_DIR/tls.key;
      ssl_protocols TLSv1.2 TLSv1.3;
      ssl_session_cache shared:SSL:10m;"
  fi
  render "$PEERS_DIR/nginx.conf.in" "$conf" "DIR=$WORK_DIR" "LISTEN=127.0.0.1:$port" \
    "LISTEN_OPTS=$listen_opts" "TLS_LINES=$tls_lines" \
    "UPSTREAM_SERVERS=${servers%$'\n'}" "USER_LINE=$user_line" "BODY_BUFFER=${buffers[0]}" \
    "PREREAD=${buffers[1]}" "GRPC_BUFFER=${buffers[2]}" "THREADS=$THREADS"
  nginx -t -q -p "$WORK_DIR" -e "$WORK_DIR/nginx-error.log" -c "$conf" 2>"$WORK_DIR/nginx-t.log" ||
    { tail_log "$WORK_DIR/nginx-t.log"; die "nginx rejected $conf"; }
  "${PROXY_PIN[@]}" nginx -p "$WORK_DIR" -e "$WORK_DIR/nginx-error.log" -c "$conf" \
    >"$WORK_DIR/nginx.log" 2>&1 &
  register_proxy nginx $! "$port" "$WORK_DIR/nginx-error.log"
}

# haproxy_servers PREFIX: a `server` line per sim, for a template's @SERVERS@.
haproxy_servers() {
  local addr i=0 lines=''
  for addr in "${SIM_ADDRS[@]}"; do lines+="  server sim-$((++i)) $addr$1"$'\n'; done
  echo -n "${lines%$'\n'}"
}

# launch_haproxy TARGET CONF PORT: check CONF, start HAProxy on it, register it as TARGET.
launch_haproxy() {
  local target=$1 conf=$2 port=$3
  haproxy -c -q -f "$conf" >"$WORK_DIR/$target-c.log" 2>&1 ||
    { tail_log "$WORK_DIR/$target-c.log"; die "haproxy rejected $conf"; }
  "${PROXY_PIN[@]}" haproxy -db -f "$conf" >"$WORK_DIR/$target.log" 2>&1 &
  register_proxy "$target" $! "$port" "$WORK_DIR/$target.log"
}

# start_haproxy SIZE: HAProxy as an HTTP/2 proxy. tune.bufsize follows the payload (see
# haproxy.cfg.in): 16 KiB (the default) up to 64 KB messages, 64 KiB above; each costs
# HAProxy CPU on the other size.
start_haproxy() {
  local port conf bind_opts="proto h2" bufsize=65536
  (($(size_bytes "$1") > 64 * 1024)) || bufsize=16384
  port=$(free_port)
  conf=$WORK_DIR/haproxy-$1.cfg
  ((!TLS)) || bind_opts="ssl crt $WORK_DIR/tls.pem alpn h2 ssl-min-ver TLSv1.2"
  render "$PEERS_DIR/haproxy.cfg.in" "$conf" "LISTEN=127.0.0.1:$port" \
    "SERVERS=$(haproxy_servers ' proto h2')" "BUFSIZE=$bufsize" \
    "BIND_OPTS=$bind_opts" "THREADS=$THREADS"
  launch_haproxy haproxy "$conf" "$port"
}

# start_l4 SIZE: HAProxy in mode tcp (peers/haproxy-tcp.cfg.in) with --threads threads
# (plaintext only: parse_args refuses it with --tls); see the template for its buffers.
start_l4() {
  local port conf bufsize=16384
  port=$(free_port)
  conf=$WORK_DIR/l4-$1.cfg
  (($(size_bytes "$1") <= 64 * 1024)) || bufsize=1048576
  render "$PEERS_DIR/haproxy-tcp.cfg.in" "$conf" "LISTEN=127.0.0.1:$port" \
    "SERVERS=$(haproxy_servers '')" "BUFSIZE=$bufsize" "THREADS=$THREADS"
  launch_haproxy l4 "$conf" "$port"
}

# start_nghttpx: nghttp2's own reverse proxy, --threads worker threads, HTTP/2 to both sims
# (round robin over multiplexed backend connections). Its windows are raised to 1 MiB per
# stream and 16 MiB per connection (the gateway's defaults; nghttpx's 64 KiB stalls 1 MiB
# messages on WINDOW_UPDATE round trips), its timeouts to an hour (long-lived gRPC).
start_nghttpx() {
  local port frontend addr args=()
  port=$(free_port)
  frontend="127.0.0.1,$port;no-tls"
  ((!TLS)) || frontend="127.0.0.1,$port"
  for addr in "${SIM_ADDRS[@]}"; do args+=("--backend=${addr%:*},${addr##*:};;proto=h2"); done
  args+=("--frontend=$frontend" "--workers=$THREADS" --no-ocsp --no-via --no-server-push
    --frontend-http2-window-size=1048576 --frontend-http2-connection-window-size=16777216
    --backend-http2-window-size=1048576 --backend-http2-connection-window-size=16777216
    --frontend-http2-max-concurrent-streams=1024 --backend-http2-max-concurrent-streams=1024
    --frontend-read-timeout=1h --frontend-write-timeout=1h --frontend-keep-alive-timeout=1h
    --backend-read-timeout=1h --backend-write-timeout=1h --backend-keep-alive-timeout=1h
    --stream-read-timeout=0 --stream-write-timeout=0 --frontend-http2-read-timeout=1h
    --pid-file="$WORK_DIR/nghttpx.pid" --errorlog-file="$WORK_DIR/nghttpx-error.log"
    --accesslog-file=/dev/null --conf=/dev/null)
  ((!TLS)) || args+=(--tls-min-proto-version=TLSv1.2 "$WORK_DIR/tls.key" "$WORK_DIR/tls.crt")
  "${PROXY_PIN[@]}" nghttpx "${args[@]}" >"$WORK_DIR/nghttpx.log" 2>&1 &
  register_proxy nghttpx $! "$port" "$WORK_DIR/nghttpx.log"
}

# start_caddy: Caddy's reverse_proxy (Go's HTTP/2, h2c to both sims, least_conn), with
# GOMAXPROCS=--threads, like the other peers' workers; responses flushed as they arrive.
start_caddy() {
  local port conf site tls='' upstreams=''
  port=$(free_port)
  conf=$WORK_DIR/Caddyfile
  site="http://127.0.0.1:$port"
  if ((TLS)); then
    site="https://127.0.0.1:$port"
    tls="tls $WORK_DIR/tls.crt $WORK_DIR/tls.key"
  fi
  upstreams="${SIM_ADDRS[*]}"
  render "$PEERS_DIR/Caddyfile.in" "$conf" "SITE=$site" "TLS=$tls" "UPSTREAMS=$upstreams"
  caddy validate --config "$conf" --adapter caddyfile >"$WORK_DIR/caddy-validate.log" 2>&1 ||
    { tail_log "$WORK_DIR/caddy-validate.log"; die "caddy rejected $conf"; }
  GOMAXPROCS=$THREADS "${PROXY_PIN[@]}" caddy run --config "$conf" --adapter caddyfile \
    >"$WORK_DIR/caddy.log" 2>&1 &
  register_proxy caddy $! "$port" "$WORK_DIR/caddy.log"
}

start_infergate() {
  local conf=$WORK_DIR/infergate.yaml logfile=$WORK_DIR/infergate.log i=0 addr pid listen
  {
    echo "# Generated by benchmarks/compare_peers.sh"
    echo 'listen: "127.0.0.1:0"'
    echo 'admin_listen: "127.0.0.1:0"'
    echo "workers: $THREADS"
    if ((TLS)); then
      echo 'frontend:'
      echo "  tls: {cert: \"$WORK_DIR/tls.crt\", key: \"$WORK_DIR/tls.key\"}"
    fi
    echo 'backends:'
    for addr in "${SIM_ADDRS[@]}"; do
      echo "  - name: sim-$((++i))"
      echo "    address: \"$addr\""
    done
  } >"$conf"
  "${PROXY_PIN[@]}" "$GATEWAY" --config "$conf" >"$logfile" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  # Port 0: the gateway reports the port it got.
  listen=$(wait_for_log "$pid" "$logfile" 'gateway listening address=[0-9.]+:[0-9]+') ||
    die "infergate did not start"
  register_proxy infergate "$pid" "${listen##*:}" "$logfile"
}

# start_proxies SIZE: fresh proxies for one payload size (no state left from the last).
start_proxies() {
  local target
  for target in "${TARGET_LIST[@]}"; do
    case $target in
      nginx) start_nginx "$1" ;;
      haproxy) start_haproxy "$1" ;;
      nghttpx) start_nghttpx ;;
      caddy) start_caddy ;;
      infergate) start_infergate ;;
      l4) start_l4 "$1" ;;
    esac
  done
  NOT_READY=()
  for target in "${TARGET_LIST[@]}"; do wait_forwarding "$target" || true; done
}

# stop_proxies: stop the proxies start_proxies started (the sims keep running).
stop_proxies() {
  local target pid kept=()
  for target in "${!PROXY_PID[@]}"; do stop_process "${PROXY_PID[$target]}"; done
  for pid in "${STARTED_PIDS[@]}"; do
    [[ " ${PROXY_PID[*]} " == *" $pid "* ]] || kept+=("$pid")
  done
  STARTED_PIDS=("${kept[@]}")
  PROXY_PID=()
  TARGET_URL=()
}

# register_proxy TARGET PID PORT LOG: remember a started proxy and wait for its port.
register_proxy() {
  local target=$1 pid=$2 port=$3 logfile=$4
  [[ " ${STARTED_PIDS[*]} " == *" $pid "* ]] || STARTED_PIDS+=("$pid")
  PROXY_PID[$target]=$pid
  TARGET_URL[$target]=127.0.0.1:$port
  wait_for_port "$pid" "$port" "$logfile" || die "$target did not start listening"
  log "$target: pid $pid on 127.0.0.1:$port"
}

# proxy_cpu_ticks TARGET: utime+stime (clock ticks) summed over the proxy's processes,
# then ' pid:ticks' per process (to see how the load spread over nginx's workers).
proxy_cpu_ticks() {
  local total=0 detail='' pid stat fields ticks
  for pid in $(proxy_pids "$1"); do
    stat=$(<"/proc/$pid/stat") || continue
    # Fields after "(comm)": state is field 3, so utime (14) and stime (15) are [11], [12].
    read -r -a fields <<<"${stat##*) }"
    ticks=$((fields[11] + fields[12]))
    total=$((total + ticks))
    detail+=" $pid:$ticks"
  done
  echo "$total$detail"
}

# --- Bench -----------------------------------------------------------------------------

# bench_urls TARGET: -u and --connections for a target (direct spreads over the sims).
bench_urls() {
  if [[ $1 == direct ]]; then
    local IFS=, per_sim=$(((CONNECTIONS + NUM_SIMS - 1) / NUM_SIMS))
    echo "-u ${SIM_ADDRS[*]} --connections $per_sim"
  elif ((TLS)); then
    echo "-u ${TARGET_URL[$1]} --connections $CONNECTIONS --tls-ca $WORK_DIR/ca.crt --tls-name localhost"
  else
    echo "-u ${TARGET_URL[$1]} --connections $CONNECTIONS"
  fi
}

# start_bench JSON LIMIT_S ARGS...: start the bench (bounded by LIMIT_S) in the background;
# finish_bench waits for it. In the background, a signal to this script reaches the trap
# (which stops the bench) at once instead of after the run.
start_bench() {
  local json=$1 limit=$2
  shift 2
  timeout --kill-after=5 "$limit" "${LOAD_PIN[@]}" "$BENCH" --progress never --json "$json" "$@" \
    >"${json%.json}.out" 2>&1 &
  BENCH_PID=$!
}

# finish_bench: wait for the bench and set BENCH_RC to its exit status.
finish_bench() {
  BENCH_RC=0
  wait "$BENCH_PID" || BENCH_RC=$?
  BENCH_PID=
}

# run_bench JSON LIMIT_S ARGS...: one bench run to the end; sets BENCH_RC.
run_bench() {
  start_bench "$@"
  finish_bench
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
  local target=$1 deadline=$((SECONDS + READY_DEADLINE_S)) json summary url_args
  json=$WORK_DIR/ready-$target.json
  read -r -a url_args <<<"$(bench_urls "$target")"
  while ((SECONDS < deadline)); do
    run_bench "$json" 15 "${url_args[@]}" --preset 1kb --concurrency-range 1 \
      --measurement-interval 200ms --max-trials 1 --timeout 2s
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

# record SIZE TARGET KIND CONCURRENCY JSON RC CPU_BEFORE CPU_AFTER ATTEMPTS: a runs.tsv line.
record() {
  local IFS=$'\t'
  echo "$*" >>"$WORK_DIR/runs.tsv"
}

# measure SIZE TARGET CONCURRENCY [LABEL]: warm up, then the measured run with the proxy's
# CPU read around it, then the concurrency-1 latency run; recorded under LABEL (default
# SIZE; SIZE/Nconn on a --connections axis).
measure() {
  local size=$1 target=$2 conc=$3 label=${4:-$1} base json before after limit size_args url_args attempt
  read -r -a size_args <<<"$(size_bench_args "$size")"
  read -r -a url_args <<<"$(bench_urls "$target")"
  base=$WORK_DIR/${label//\//-}-$target
  if [[ -n ${NOT_READY[$target]:-} ]]; then
    record "$label" "$target" failed "$conc" - - - "${NOT_READY[$target]}" 0
    return
  fi
  # Warm-up (not measured): upstream connections open, buffers grow.
  run_bench "$base-warmup.json" 60 "${url_args[@]}" "${size_args[@]}" \
    --concurrency-range "$conc" --measurement-interval 500ms --max-trials 1

  json=$base.json
  limit=$(($(duration_s "$WINDOW") * MAX_TRIALS + 60))
  for ((attempt = 1; ; attempt++)); do
    before=$(cpu_of "$target")
    start_bench "$json" "$limit" "${url_args[@]}" "${size_args[@]}" \
      --concurrency-range "$conc" --measurement-interval "$WINDOW" --max-trials "$MAX_TRIALS"
    if ((attempt < BALANCE_ATTEMPTS)) && ! spread_over_workers "$target" "$before"; then
      stop_process "$BENCH_PID"
      BENCH_PID=
      continue
    fi
    finish_bench
    after=$(cpu_of "$target")
    break
  done
  record "$label" "$target" main "$conc" "$json" "$BENCH_RC" "$before" "$after" "$attempt"
  log "$label $target c=$conc: $(summary_line "$json" "$BENCH_RC")"
  check_alive "$target" || return 0

  ((C1)) || return 0
  json=$base-c1.json
  limit=$(($(duration_s "$C1_WINDOW") * MAX_TRIALS + 60))
  run_bench "$json" "$limit" "${url_args[@]}" "${size_args[@]}" \
    --concurrency-range 1 --measurement-interval "$C1_WINDOW" --max-trials "$MAX_TRIALS"
  record "$label" "$target" c1 1 "$json" "$BENCH_RC" - - 1
  log "$label $target c=1: $(summary_line "$json" "$BENCH_RC")"
  check_alive "$target" || true
}

# spread_over_workers TARGET BEFORE: for a proxy with several worker processes (nginx),
# false when one second into the bench run one worker is still idle. Each connection
# stays on the worker that accepted it, and SO_REUSEPORT hashes the bench's two
# connections onto the two workers at random: a run that puts both on one worker
# measures a one-worker nginx, so it is started again (BALANCE_ATTEMPTS runs at most).
spread_over_workers() {
  [[ $1 == nginx ]] || return 0
  # A sampling interval, not a readiness wait: the load has to run a while to be seen.
  sleep 1
  local now
  now=$(cpu_of "$1")
  workers_balanced "$1" "$2" "$now" && return 0
  log "$1: every client connection landed on one worker process (CPU ticks per process" \
    "before: ${2#* }; 1 s into the run: ${now#* }); starting the run again"
  return 1
}

# workers_balanced TARGET BEFORE AFTER: false when some worker process (not nginx's
# master) did less than 10% of the proxy's work between the two proxy_cpu_ticks samples.
workers_balanced() {
  local target=$1 kv total=0 pid
  local -A t0=() delta=()
  [[ $2 == *:* && $3 == *:* ]] || return 0 # direct: no proxy processes
  for kv in ${2#* }; do t0[${kv%%:*}]=${kv#*:}; done
  for kv in ${3#* }; do
    pid=${kv%%:*}
    [[ $pid != "${PROXY_PID[$target]:-}" ]] || continue # nginx's master does no proxying
    delta[$pid]=$((${kv#*:} - ${t0[$pid]:-0}))
    total=$((total + delta[$pid]))
  done
  ((${#delta[@]} > 1 && total > 0)) || return 0
  for pid in "${!delta[@]}"; do ((delta[$pid] * 10 >= total)) || return 1; done
}

# cpu_of TARGET: proxy CPU ticks (with per-process detail), or '-' for direct.
cpu_of() { if [[ $1 == direct ]]; then echo -; else proxy_cpu_ticks "$1"; fi; }

# summary_line JSON RC: one human line for progress output.
summary_line() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["results"][0]
    print(f'{r["throughput"]:.0f} infer/s, p50 {r["latency_p50_us"]} us, '
          f'p99 {r["latency_p99_us"]} us, {r["error_count"]} errors')
except Exception:
    print(f"bench failed (exit {sys.argv[2]})")
EOF
}

# check_alive TARGET: a proxy that died mid-run is an error worth saying loudly.
check_alive() {
  [[ $1 != direct ]] || return 0
  kill -0 "${PROXY_PID[$1]}" 2>/dev/null && return 0
  log "$1 (pid ${PROXY_PID[$1]}) exited during the run"
  NOT_READY[$1]="process exited during the run"
  return 1
}

# duration_s DUR: whole seconds (rounded up) of a bench duration like 3s, 500ms, 1m.
duration_s() {
  case $1 in
    *ms) echo $((((${1%ms}) + 999) / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *) die "bad duration '$1' (use e.g. 3s, 500ms)" ;;
  esac
}

# --- Report ----------------------------------------------------------------------------

# host_info: KEY=VALUE lines about this machine and run, for the report.
host_info() {
  local dirty=''
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || dirty=+dirty
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')"
  echo "cores=$(nproc)"
  echo "loadavg_at_start=$LOADAVG_AT_START"
  echo "nginx=$(nginx -v 2>&1 | sed 's|^nginx version: nginx/||')"
  echo "haproxy=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')"
  echo "nghttpx=$(nghttpx --version 2>/dev/null | sed 's|^nghttpx nghttp2/||')"
  echo "caddy=$(caddy version 2>/dev/null | awk '{print $1}')"
  echo "tls=$TLS"
  echo "infergate=$(grep -Eo -m1 'started version=[^ ]+' "$WORK_DIR/infergate.log" 2>/dev/null | sed 's/.*version=//')"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$dirty"
  echo "clk_tck=$CLK_TCK"
  echo "connections=$CONNECTIONS_LIST"
  echo "threads=$THREADS"
  echo "pin=${PROXY_CPUS:+proxy on CPUs $PROXY_CPUS, sims and bench on CPUs $LOAD_CPUS}"
  echo "window=$WINDOW"
  echo "c1_window=$C1_WINDOW"
  echo "max_trials=$MAX_TRIALS"
  echo "sims=$NUM_SIMS x $SIM_MODEL"
}

# report: the tables (plain or markdown) on stdout and the JSON file. Returns 1 when a
# target had request errors, a failed bench or never forwarded.
report() {
  host_info >"$WORK_DIR/host.txt"
  local args=(--runs "$WORK_DIR/runs.tsv" --host "$WORK_DIR/host.txt" --sizes "$LABELS"
    --targets "$TARGETS")
  [[ -z $JSON_OUT ]] || args+=(--json "$JSON_OUT")
  ((!MARKDOWN)) || args+=(--markdown)
  python3 - "${args[@]}" <<'PY'
import argparse, json

ap = argparse.ArgumentParser()
ap.add_argument("--runs"); ap.add_argument("--host"); ap.add_argument("--sizes")
ap.add_argument("--targets"); ap.add_argument("--json"); ap.add_argument("--markdown", action="store_true")
a = ap.parse_args()
host = dict(l.rstrip("\n").split("=", 1) for l in open(a.host) if "=" in l)
clk_tck = int(host["clk_tck"])
PEERS = ("nginx", "haproxy", "nghttpx", "caddy")

def bench_result(path):
    try:
        return json.load(open(path))["results"][0]
    except Exception:
        return None

def cpu_ticks(text):
    """'total pid:ticks ...' -> (total, {pid: ticks})"""
    parts = text.split()
    return int(parts[0]), {p.split(":")[0]: int(p.split(":")[1]) for p in parts[1:]}

results, failed = {}, False
for line in open(a.runs):
    size, target, kind, conc, path, rc, before, after, attempts = line.rstrip("\n").split("\t")
    row = results.setdefault(size, {}).setdefault(target, {"concurrency": int(conc)})
    if kind == "main":
        row["bench_starts"] = int(attempts)  # > 1: restarted until nginx used both workers
    if kind == "failed":
        row["error"] = after
        failed = True
        continue
    r = bench_result(path)
    if kind == "c1":
        row["c1_p50_us"] = r["latency_p50_us"] if r else None
        row["c1_errors"] = r["error_count"] if r else None
        if not r or rc != "0" or r["error_count"]:
            row.setdefault("error", f"c1 run: bench exit {rc}" + (f", {r['error_count']} errors: {r['first_error']}" if r else ""))
            failed = True
        continue
    if not r or rc != "0":
        row["error"] = f"bench exit {rc}" + ("" if r else " (no results)")
        failed = True
        if not r:
            continue
    row.update(throughput=r["throughput"], p50_us=r["latency_p50_us"], p99_us=r["latency_p99_us"],
               requests=r["requests"], errors=r["error_count"], error_codes=r["errors"],
               first_error=r["first_error"], duration_s=r["duration_s"],
               request_bytes=json.load(open(path))["config"]["request_bytes"])
    if r["error_count"]:
        row.setdefault("error", f"{r['error_count']} errors, first: {r['first_error']}")
        failed = True
    if before != "-":
        (t0, p0), (t1, p1) = cpu_ticks(before), cpu_ticks(after)
        row["proxy_cpu_s"] = (t1 - t0) / clk_tck
        row["proxy_cpu_s_by_pid"] = {pid: (p1[pid] - p0.get(pid, 0)) / clk_tck for pid in p1}
        row["proxy_cpu_us_per_request"] = row["proxy_cpu_s"] * 1e6 / r["requests"] if r["requests"] else None
        workers = list(row["proxy_cpu_s_by_pid"].values())[1:]  # after nginx's master
        if len(workers) > 1 and row["proxy_cpu_s"] > 0:
            row["worker_cpu_shares"] = [w / row["proxy_cpu_s"] for w in workers]
            if min(row["worker_cpu_shares"]) < 0.1:
                row["note"] = "one worker idle"

# Derived columns: ratios to direct, added latency, infergate against the better peer.
for size, rows in results.items():
    direct = rows.get("direct", {})
    for target, row in rows.items():
        if direct.get("throughput") and "throughput" in row:
            row["throughput_vs_direct"] = row["throughput"] / direct["throughput"]
        if direct.get("c1_p50_us") is not None and row.get("c1_p50_us") is not None:
            row["c1_added_p50_us"] = row["c1_p50_us"] - direct["c1_p50_us"]
    ig = rows.get("infergate", {})
    peers = [rows[p] for p in PEERS if p in rows and "error" not in rows[p] and "throughput" in rows[p]]
    if peers and "throughput" in ig:
        best_tput = max(p["throughput"] for p in peers)
        cpus = [p["proxy_cpu_us_per_request"] for p in peers if p.get("proxy_cpu_us_per_request")]
        ig["vs_best_peer"] = {"throughput_ratio": ig["throughput"] / best_tput if best_tput else None,
                              "cpu_per_request_ratio": (ig["proxy_cpu_us_per_request"] / min(cpus))
                              if cpus and ig.get("proxy_cpu_us_per_request") else None}

    l4_cpu = rows.get("l4", {}).get("proxy_cpu_us_per_request")
    for target, row in rows.items():
        if l4_cpu and row.get("proxy_cpu_us_per_request") and target not in ("direct", "l4"):
            row["cpu_per_request_vs_l4"] = row["proxy_cpu_us_per_request"] / l4_cpu

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)

COLS = ["target", "infer/s", "x direct", "p50 us", "p99 us", "c1 p50 us", "c1 +p50 us",
        "proxy CPU us/req", "errors", "tput vs best peer", "CPU vs best peer"]
WITH_L4 = "l4" in a.targets.split(",")
if WITH_L4:
    COLS.append("CPU vs l4")

def table_rows(rows):
    out = []
    for target in a.targets.split(","):
        row = rows.get(target)
        if row is None:
            continue
        vs = row.get("vs_best_peer", {})
        added = row.get("c1_added_p50_us")
        errors = row.get("error", str(row.get("errors", "n/a")))
        if row.get("note"):
            errors += f" ({row['note']})"
        out.append([target, fmt(row.get("throughput"), ".0f"), fmt(row.get("throughput_vs_direct"), ".2f"),
                    fmt(row.get("p50_us"), "d"), fmt(row.get("p99_us"), "d"), fmt(row.get("c1_p50_us"), "d"),
                    "-" if target == "direct" else fmt(added, "+d"),
                    "n/a" if target == "direct" else fmt(row.get("proxy_cpu_us_per_request"), ".1f"),
                    errors,
                    fmt(vs.get("throughput_ratio"), ".2f") if vs else "-",
                    fmt(vs.get("cpu_per_request_ratio"), ".2f") if vs else "-"]
                   + ([fmt(row.get("cpu_per_request_vs_l4"), ".2f") if "cpu_per_request_vs_l4" in row else "-"]
                      if WITH_L4 else []))
    return out

def size_title(label, rows):
    conc = next(iter(rows.values()))["concurrency"]
    size, _, conns = label.partition("/")
    over = f" over {conns.removesuffix('conn')} connections" if conns else ""
    return f"{size} requests{over}, concurrency {conc} (c1 = concurrency 1)"

def cores_note(host, pinned, shared):
    """How the run placed its processes: `pinned (the placement)` or `shared`."""
    return f"{pinned} ({host['pin']})" if host.get("pin") else shared

def peer_versions(host, settings):
    """`name version (setting)` for nginx, HAProxy, nghttpx and Caddy; `settings` says how
    each one's worker count is written, with {n} for the count."""
    names = [("nginx", "nginx"), ("HAProxy", "haproxy"), ("nghttpx", "nghttpx"), ("Caddy", "caddy")]
    count = host.get("threads", "2")
    return ", ".join(f"{name} {host.get(key, 'n/a')} ({setting.format(n=count)})"
                     for (name, key), setting in zip(names, settings))

n = host.get("threads", "2")  # every proxy's workers or threads, infergate's included

if a.markdown:
    tls_note = " over TLS" if host.get("tls") == "1" else ""
    print(f"### infergate vs nginx vs HAProxy vs nghttpx vs Caddy{tls_note}\n")
    print(f"- date: {host['date']}, commit {host['commit']}, infergate {host['infergate'] or 'n/a'}")
    sharing = cores_note(host, "pinned with taskset", "shared by the sims, the proxy and the bench")
    print(f"- kernel {host['kernel']}, CPU {host['cpu']}, {host['cores']} cores {sharing} "
          f"(all on 127.0.0.1); load average before the run {host['loadavg_at_start']}")
    peers = peer_versions(host, ["worker_processes {n}", "nbthread {n}", "--workers {n}", "GOMAXPROCS {n}"])
    print(f"- {peers}, infergate workers: {n}; {host['sims']}; peer configs: benchmarks/peers/ "
          f"(buffers sized per payload, proxies restarted per size)")
    print(f"- bench: {host['connections']} connections, window {host['window']} x {host['max_trials']} "
          f"(c1: {host['c1_window']} x {host['max_trials']}); proxy CPU = utime+stime of all proxy "
          f"processes / completed requests; ratios vs best peer: infergate / the best of nginx, "
          f"HAProxy, nghttpx and Caddy (throughput: higher is better; CPU: lower is better)")
    if WITH_L4:
        print("- l4: HAProxy in mode tcp (benchmarks/peers/haproxy-tcp.cfg.in), a TCP relay that "
              "parses nothing and ties each client connection to one sim: the floor of any proxy "
              "that moves the bytes through user space, not a peer; CPU vs l4: each proxy's CPU "
              "per request over l4's")
    if tls_note:
        print("- TLS: every proxy terminates TLS for the bench (P-256 certificate, TLS 1.3 as "
              "negotiated, ALPN h2) and speaks plaintext HTTP/2 to the sims; direct is plaintext")
    for size in a.sizes.split(","):
        if size not in results:
            continue
        print(f"\n#### {size_title(size, results[size])}\n")
        print("| " + " | ".join(COLS) + " |")
        print("|" + "|".join("---" if c in ("target", "errors") else "---:" for c in COLS) + "|")
        for r in table_rows(results[size]):
            print("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
else:
    sharing = cores_note(host, "pinned", "sims, proxy and bench share these cores")
    print(f"# {host['date']}  {host['cores']} cores ({host['cpu']}), kernel {host['kernel']}; "
          f"{sharing}; load average before: {host['loadavg_at_start']}")
    peers = peer_versions(host, ["{n} workers", "{n} threads", "{n} workers", "GOMAXPROCS {n}"])
    print(f"# {peers}, TLS {'on' if host.get('tls') == '1' else 'off'}, infergate "
          f"{host['infergate'] or 'n/a'} ({n} workers); {host['sims']}; {host['connections']} connections")
    for size in a.sizes.split(","):
        if size not in results:
            continue
        rows = table_rows(results[size])
        widths = [max(len(c) for c in col) for col in zip(COLS, *rows)]
        print(f"\n== {size_title(size, results[size])}")
        for r in [COLS] + rows:
            print("  ".join(c.ljust(w) if i in (0, 8) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())

if a.json:
    with open(a.json, "w") as f:
        json.dump({"host": host, "results": results}, f, indent=2)
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
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/compare_peers.XXXXXX")
  : >"$WORK_DIR/runs.tsv"

  local sizes target n_runs per_run
  IFS=, read -r -a sizes <<<"$SIZES"
  IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
  per_run=$(($(duration_s "$WINDOW") * MAX_TRIALS + 1 + C1 * $(duration_s "$C1_WINDOW") * MAX_TRIALS))
  n_runs=$((${#sizes[@]} * ${#TARGET_LIST[@]} * $(tr -cd , <<<"$CONNECTIONS_LIST" | wc -c) +
    ${#sizes[@]} * ${#TARGET_LIST[@]}))
  log "${#sizes[@]} size(s) x ${#TARGET_LIST[@]} target(s), about $((n_runs * per_run))s of load;" \
    "$(nproc) cores${PROXY_CPUS:+ (pinned: proxy on $PROXY_CPUS, sims and bench on $LOAD_CPUS)}"
  if awk -v cores="$(nproc)" '{ exit !($1 > cores / 4) }' /proc/loadavg; then
    log "warning: load average $LOADAVG_AT_START before starting: other work on this machine" \
      "(or a run that just ended) skews every number below"
  fi

  ((!TLS)) || make_certificate
  start_sims
  local i conns label
  IFS=, read -r -a conns <<<"$CONNECTIONS_LIST"
  LABELS=
  for i in "${!sizes[@]}"; do
    start_proxies "${sizes[i]}"
    for CONNECTIONS in "${conns[@]}"; do
      label=${sizes[i]}
      ((${#conns[@]} == 1)) || label+="/${CONNECTIONS}conn"
      LABELS+=${LABELS:+,}$label
      for target in "${TARGET_LIST[@]}"; do
        measure "${sizes[i]}" "$target" "$(size_concurrency "$i" "${sizes[i]}")" "$label"
      done
    done
    stop_proxies
  done
  report
}

main "$@"
