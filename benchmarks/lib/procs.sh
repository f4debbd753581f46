# Process helpers shared by the benchmark scripts (compare_peers.sh, fleet_routing.sh).
# Sourced, not run. The caller defines log(), READY_DEADLINE_S (seconds a process gets
# to come up) and, for proxy_pids, the PROXY_PID map (target -> root pid).

# stop_process PID: TERM, up to 5 s to exit (nginx's master takes its workers down), KILL.
stop_process() {
  local pid=$1 deadline=$((SECONDS + 5))
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# free_port: a port nothing listens on now (the OS picks it; we close it and reuse it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# tail_log FILE: the last lines of a process log, for error messages.
tail_log() { tail -n 15 -- "$1" 2>/dev/null | sed 's/^/    /' >&2 || true; }

# wait_for_log PID FILE REGEX: poll FILE until a line matches REGEX (prints the match),
# failing if PID exits or the deadline passes.
wait_for_log() {
  local pid=$1 file=$2 regex=$3 deadline=$((SECONDS + READY_DEADLINE_S)) match
  while ((SECONDS < deadline)); do
    if match=$(grep -Eo -m1 -- "$regex" "$file" 2>/dev/null); then
      echo "$match"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "process $pid exited; log $file:"; tail_log "$file"; return 1; }
    sleep 0.05
  done
  log "no '$regex' in $file after ${READY_DEADLINE_S}s:"
  tail_log "$file"
  return 1
}

# wait_for_port PID PORT LOG: poll until 127.0.0.1:PORT accepts a connection.
wait_for_port() {
  local pid=$1 port=$2 logfile=$3 deadline=$((SECONDS + READY_DEADLINE_S))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "process $pid exited; log $logfile:"; tail_log "$logfile"; return 1; }
    sleep 0.05
  done
  log "127.0.0.1:$port not listening after ${READY_DEADLINE_S}s; log $logfile:"
  tail_log "$logfile"
  return 1
}

# render TEMPLATE OUT KEY=VALUE...: copy TEMPLATE to OUT replacing every @KEY@ by VALUE
# (values may span lines).
render() {
  local template=$1 out=$2 text kv
  shift 2
  text=$(<"$template")
  for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
  printf '%s\n' "$text" >"$out"
}

# proxy_pids TARGET: the proxy's root pid and all its descendants (nginx workers).
proxy_pids() {
  local queue=("${PROXY_PID[$1]}") pid
  while ((${#queue[@]})); do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    echo "$pid"
    mapfile -t -O "${#queue[@]}" queue < <(pgrep -P "$pid" || true)
  done
}
