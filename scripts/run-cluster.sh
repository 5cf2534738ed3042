#!/usr/bin/env bash
# Runs a dcounter cluster on this machine: discovery + N nodes (default 5) + gateway,
# in the background, with PIDs and logs under a run folder.
#
#   scripts/run-cluster.sh start                  start everything (waits until healthy)
#   scripts/run-cluster.sh stop                   stop everything (SIGTERM, then SIGKILL after 10s)
#   scripts/run-cluster.sh status                 every process: answering on HTTP or down
#   scripts/run-cluster.sh increment|inc [n]      add n (default 1) through the gateway
#   scripts/run-cluster.sh decrement|dec [n]      subtract n (default 1) through the gateway
#   scripts/run-cluster.sh counter|cnt            the value on the gateway and on every node
#   scripts/run-cluster.sh peers|p                what discovery and every node know of their peers
#   scripts/run-cluster.sh consistency            do the live nodes agree? down ones listed apart (waits up to CLUSTER_WAIT s)
#   scripts/run-cluster.sh logs <n|discovery|gateway> [-f]   show (or follow) a process's log
#   scripts/run-cluster.sh simulation <secs> <interval> <ops>
#                                                 every <interval> seconds for <secs> seconds, send <ops>
#                                                 random writes to random nodes; then check the total
#   scripts/run-cluster.sh clean                  stop, then delete the run folder and the data
#   scripts/run-cluster.sh help
#
# Environment (all optional):
#   CLUSTER_BASE_PORT  ports: discovery BASE, gateway BASE+80, node i HTTP BASE+10+i and gossip
#                      BASE+1000+i (i from 0); default 8000 (the contract's ports)
#   CLUSTER_NODES      number of nodes (default 5)
#   CLUSTER_HOST       address everything listens on (default 127.0.0.1)
#   CLUSTER_RUN_DIR    PIDs and logs (default ./run)
#   CLUSTER_DATA_DIR   node data directories (default ./data)
#   CLUSTER_WAIT       seconds `consistency` and `start` wait (default 20)
#   CLUSTER_BIN        the program (default: node bin/dcounter.js of this repository)
# The processes get DCOUNTER_LOG_LEVEL / DCOUNTER_LOG_FORMAT if you set them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE=${CLUSTER_BASE_PORT:-8000}
NODES=${CLUSTER_NODES:-5}
HOST=${CLUSTER_HOST:-127.0.0.1}
RUN_DIR=${CLUSTER_RUN_DIR:-./run}
DATA_DIR=${CLUSTER_DATA_DIR:-./data}
WAIT=${CLUSTER_WAIT:-20}
DCOUNTER=(${CLUSTER_BIN:-node "$ROOT/bin/dcounter.js"})

DISCOVERY_PORT=$BASE
GATEWAY_PORT=$((BASE + 80))
DISCOVERY="$HOST:$DISCOVERY_PORT"
GATEWAY="http://$HOST:$GATEWAY_PORT"
http_port() { echo $((BASE + 10 + $1)); }
gossip_port() { echo $((BASE + 1000 + $1)); }
node_url() { echo "http://$HOST:$(http_port "$1")"; }

die() { echo "run-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required"; }
need curl

[[ "$BASE" =~ ^[0-9]+$ ]] && ((BASE >= 1 && BASE + 1000 + NODES <= 65535)) || die "bad CLUSTER_BASE_PORT '$BASE'"
[[ "$NODES" =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 70)) || die "CLUSTER_NODES must be 1..70 (got '$NODES')"

mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"

pidfile() { echo "$RUN_DIR/pids/$1.pid"; }
logfile() { echo "$RUN_DIR/logs/$1.log"; }
alive() { local f; f=$(pidfile "$1"); [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; }
names() { echo discovery; for ((i = 0; i < NODES; i++)); do echo "node-$i"; done; echo gateway; }

# the number in a JSON body's "value" field
json_value() { sed -n 's/.*"value":\(-\{0,1\}[0-9]\{1,\}\).*/\1/p' | sed -n 1p; }

# GET or POST, printing the body; fails on a non-2xx status
get() { curl -fsS --max-time 5 "$1"; }
post() { curl -fsS --max-time 10 -X POST -H 'content-type: application/json' -d "$2" "$1"; }
# the body even for error statuses, with the status on the last line
call() { curl -sS --max-time 10 -w '\n%{http_code}' "$@"; }

wait_http() { # url seconds name
  local url=$1 deadline=$((SECONDS + $2)) name=$3
  until curl -fsS --max-time 1 "$url" >/dev/null 2>&1; do
    if ! alive "$name"; then
      echo "run-cluster: $name exited; last lines of $(logfile "$name"):" >&2
      tail -n 20 "$(logfile "$name")" >&2 || true
      return 1
    fi
    ((SECONDS < deadline)) || { echo "run-cluster: $url did not answer within $2s" >&2; return 1; }
    sleep 0.2
  done
}

launch() { # name args...
  local name=$1; shift
  if alive "$name"; then echo "  $name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  local log; log=$(logfile "$name")
  echo "=== $(date '+%F %T') starting: dcounter $*" >>"$log"
  if command -v setsid >/dev/null 2>&1; then
    setsid "${DCOUNTER[@]}" "$@" >>"$log" 2>&1 </dev/null &
  else
    nohup "${DCOUNTER[@]}" "$@" >>"$log" 2>&1 </dev/null &
  fi
  echo $! >"$(pidfile "$name")"
  echo "  $name started (pid $!, log $log)"
}

cmd_start() {
  echo "starting discovery, $NODES nodes and the gateway (ports from $BASE)"
  launch discovery --role discovery --addr "$DISCOVERY"
  wait_http "http://$DISCOVERY/health" "$WAIT" discovery || { cmd_stop; exit 1; }
  for ((i = 0; i < NODES; i++)); do
    launch "node-$i" --role node --addr "$HOST:$(gossip_port "$i")" --http-addr "$HOST:$(http_port "$i")" \
      --discovery "$DISCOVERY" --data-dir "$DATA_DIR/$HOST"_"$(gossip_port "$i")"
  done
  for ((i = 0; i < NODES; i++)); do
    wait_http "$(node_url "$i")/health" "$WAIT" "node-$i" || { cmd_stop; exit 1; }
  done
  launch gateway --role gateway --addr "$HOST:$GATEWAY_PORT" --discovery "$DISCOVERY" --refresh-interval 1s
  wait_http "$GATEWAY/health" "$WAIT" gateway || { cmd_stop; exit 1; }
  echo "cluster is up: gateway $GATEWAY (dashboard $GATEWAY/), nodes $(node_url 0) .. $(node_url $((NODES - 1)))"
}

stop_one() {
  local name=$1 f pid
  f=$(pidfile "$name")
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      echo "  $name killed (did not stop within 10s)"
    else
      echo "  $name stopped"
    fi
  fi
  rm -f "$f"
}

cmd_stop() {
  stop_one gateway
  local i pids=()
  for ((i = 0; i < NODES; i++)); do stop_one "node-$i" & pids+=($!); done
  # pid files of nodes beyond CLUSTER_NODES (started with a larger count)
  for f in "$RUN_DIR"/pids/node-*.pid; do
    [[ -e "$f" ]] || continue
    local name; name=$(basename "$f" .pid)
    [[ "${name#node-}" -lt "$NODES" ]] || { stop_one "$name" & pids+=($!); }
  done
  for p in "${pids[@]}"; do wait "$p"; done
  stop_one discovery
}

# Judged by what answers on HTTP, not by pid files: a cluster started some other way
# (npm start, by hand) shows as up, and a process that hangs shows as unhealthy.
cmd_status() {
  local name url pid health code rc=0 down=()
  printf '%-10s %-8s %-28s %s\n' PROCESS PID ADDRESS HEALTH
  for name in $(names); do
    case $name in
      discovery) url="http://$DISCOVERY" ;;
      gateway) url=$GATEWAY ;;
      node-*) url=$(node_url "${name#node-}") ;;
    esac
    if alive "$name"; then pid=$(cat "$(pidfile "$name")"); else pid="-"; fi
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" 2>/dev/null || true)
    case $code in
      2??) health="ok" ;;
      000 | "") health="down"; rc=1; down+=("$name") ;;
      *) health="unhealthy (HTTP $code)"; rc=1 ;;
    esac
    printf '%-10s %-8s %-28s %s\n' "$name" "$pid" "$url" "$health"
  done
  if ((${#down[@]} > 0)); then echo "down: ${down[*]}"; fi
  return $rc
}

change() { # increment|decrement [n]
  local kind=$1 n=${2:-1}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "$kind: n must be a positive integer (got '$n')"
  local out status body
  out=$(call -X POST -H 'content-type: application/json' -d "{\"by\":$n}" "$GATEWAY/$kind") || die "gateway $GATEWAY unreachable"
  status=${out##*$'\n'}; body=${out%$'\n'*}
  echo "$body"
  [[ "$status" == 2* ]] || exit 1
}

cmd_counter() {
  local v
  v=$(get "$GATEWAY/counter" | json_value) || die "gateway $GATEWAY unreachable"
  echo "gateway  $GATEWAY  value $v"
  for ((i = 0; i < NODES; i++)); do
    v=$(get "$(node_url "$i")/counter" 2>/dev/null | json_value) || v="down"
    echo "node-$i   $(node_url "$i")  value ${v:-down}"
  done
}

cmd_peers() {
  echo "discovery http://$DISCOVERY/peers:"
  get "http://$DISCOVERY/peers" || echo "(unreachable)"
  echo
  for ((i = 0; i < NODES; i++)); do
    echo "node-$i $(node_url "$i")/peers:"
    get "$(node_url "$i")/peers" 2>/dev/null || echo "(unreachable)"
    echo
  done
}

node_values() { # prints one value per node ("down" when unreachable)
  for ((i = 0; i < NODES; i++)); do
    local v
    v=$(get "$(node_url "$i")/counter" 2>/dev/null | json_value) || v=""
    echo "${v:-down}"
  done
}

# Consistent when the nodes that answer agree; nodes that do not answer are listed apart
# (a dead node cannot disagree, and the live ones still serve).
cmd_consistency() {
  local deadline=$((SECONDS + WAIT)) values live distinct down
  while true; do
    values=$(node_values)
    live=$(echo "$values" | grep -v '^down$' || true)
    down=$(paste -d' ' <(for ((i = 0; i < NODES; i++)); do echo "node-$i"; done) <(echo "$values") | awk '$2 == "down" {print $1}' | paste -sd' ' -)
    distinct=$(echo "$live" | sed '/^$/d' | sort -u | wc -l)
    if [[ -n "$live" && $distinct -eq 1 ]]; then
      local n; n=$(echo "$live" | wc -l)
      if [[ -z "$down" ]]; then
        echo "consistent: all $NODES nodes report $(echo "$live" | sed -n 1p)"
      else
        echo "consistent: the $n live nodes report $(echo "$live" | sed -n 1p); down: $down"
      fi
      return 0
    fi
    if ((SECONDS >= deadline)); then
      if [[ -z "$live" ]]; then echo "no node answers (down: $down)"; return 1; fi
      echo "NOT consistent after ${WAIT}s:"
      paste -d' ' <(for ((i = 0; i < NODES; i++)); do echo "node-$i"; done) <(echo "$values")
      return 1
    fi
    sleep 0.2
  done
}

cmd_logs() {
  local target=${1:-}; local follow=${2:-}
  [[ -n "$target" ]] || die "logs: which one? logs <n|discovery|gateway> [-f]"
  [[ "$target" =~ ^[0-9]+$ ]] && target="node-$target"
  local log; log=$(logfile "$target")
  [[ -f "$log" ]] || die "no log $log"
  if [[ "$follow" == "-f" ]]; then tail -n 50 -f "$log"; else tail -n 100 "$log"; fi
}

cmd_simulation() {
  local secs=${1:-} interval=${2:-} ops=${3:-}
  [[ "$secs" =~ ^[0-9]+$ && "$interval" =~ ^[0-9]+(\.[0-9]+)?$ && "$ops" =~ ^[0-9]+$ ]] ||
    die "usage: simulation <secs> <interval> <ops>, e.g. simulation 10 1 20"
  local before after expected=0 sent=0 acked=0 failed=0 end=$((SECONDS + secs))
  before=$(get "$GATEWAY/counter" | json_value) || die "gateway $GATEWAY unreachable"
  echo "simulation: ${secs}s, every ${interval}s $ops random writes to random nodes (start value $before)"
  while ((SECONDS < end)); do
    for ((k = 0; k < ops; k++)); do
      local i=$((RANDOM % NODES)) by=$((RANDOM % 5 + 1)) kind=increment sign=1
      if ((RANDOM % 3 == 0)); then kind=decrement; sign=-1; fi
      sent=$((sent + 1))
      if post "$(node_url "$i")/$kind" "{\"by\":$by}" >/dev/null 2>&1; then
        acked=$((acked + 1)); expected=$((expected + sign * by))
      else
        failed=$((failed + 1))
      fi
    done
    printf '\r  %ds left, %d writes sent, %d acknowledged, %d failed' $((end - SECONDS)) "$sent" "$acked" "$failed"
    sleep "$interval"
  done
  echo
  echo "expected value: $before + ($expected) = $((before + expected))"
  cmd_consistency || return 1
  after=$(node_values | sed -n 1p)
  if [[ "$after" == "$((before + expected))" ]]; then
    echo "OK: every acknowledged write was counted exactly once ($failed failed writes were not acknowledged)"
  else
    echo "MISMATCH: nodes report $after, expected $((before + expected)) ($failed writes failed and may or may not count)"
    return 1
  fi
}

cmd_clean() {
  cmd_stop
  rm -rf "$RUN_DIR" "$DATA_DIR"
  echo "removed $RUN_DIR and $DATA_DIR"
}

cmd_help() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

cd "$ROOT"
case "${1:-help}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  increment | inc) change increment "${2:-1}" ;;
  decrement | dec) change decrement "${2:-1}" ;;
  counter | cnt) cmd_counter ;;
  peers | p) cmd_peers ;;
  consistency) cmd_consistency ;;
  logs) cmd_logs "${2:-}" "${3:-}" ;;
  simulation) cmd_simulation "${2:-}" "${3:-}" "${4:-}" ;;
  clean) cmd_clean ;;
  help | -h | --help) cmd_help ;;
  *) echo "run-cluster: unknown command '$1'" >&2; cmd_help >&2; exit 2 ;;
esac
