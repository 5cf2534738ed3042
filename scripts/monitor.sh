#!/usr/bin/env bash
# Shows every node's value live, refreshed every [interval] seconds (default 1), until Ctrl-C.
#
#   scripts/monitor.sh [interval]
#
# Reads the same environment as run-cluster.sh (CLUSTER_BASE_PORT, CLUSTER_NODES,
# CLUSTER_HOST) to find the gateway and the nodes. Set MONITOR_ROUNDS to stop after that
# many refreshes (for scripts and tests).
set -uo pipefail

INTERVAL=${1:-1}
[[ "$INTERVAL" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "monitor: interval must be a number of seconds (got '$INTERVAL')" >&2; exit 2; }
command -v curl >/dev/null 2>&1 || { echo "monitor: curl is required" >&2; exit 1; }
BASE=${CLUSTER_BASE_PORT:-8000}
NODES=${CLUSTER_NODES:-5}
HOST=${CLUSTER_HOST:-127.0.0.1}
ROUNDS=${MONITOR_ROUNDS:-0}
GATEWAY="http://$HOST:$((BASE + 80))"

json_value() { sed -n 's/.*"value":\(-\{0,1\}[0-9]\{1,\}\).*/\1/p' | sed -n 1p; }

if [[ -t 1 ]]; then CLEAR=$'\033[H\033[2J'; GREEN=$'\033[32m'; RED=$'\033[31m'; YELLOW=$'\033[33m'; OFF=$'\033[0m'
else CLEAR=""; GREEN=""; RED=""; YELLOW=""; OFF=""; fi

trap 'echo; exit 0' INT TERM

round=0
while true; do
  round=$((round + 1))
  values=()
  for ((i = 0; i < NODES; i++)); do
    v=$(curl -fsS --max-time 1 "http://$HOST:$((BASE + 10 + i))/counter" 2>/dev/null | json_value)
    values+=("${v:-down}")
  done
  gw=$(curl -fsS --max-time 1 "$GATEWAY/counter" 2>/dev/null | json_value)
  distinct=$(printf '%s\n' "${values[@]}" | grep -v down | sort -u | wc -l)
  up=$(printf '%s\n' "${values[@]}" | grep -vc down)
  out="${CLEAR}dcounter monitor  $(date '+%T')  every ${INTERVAL}s  (Ctrl-C to quit)"$'\n\n'
  out+=$(printf '%-8s %-24s %s' NODE HTTP VALUE)$'\n'
  for ((i = 0; i < NODES; i++)); do
    v=${values[$i]}
    if [[ "$v" == down ]]; then color=$RED; elif ((distinct > 1)); then color=$YELLOW; else color=$GREEN; fi
    out+=$(printf '%-8s %-24s %s%s%s' "node-$i" "$HOST:$((BASE + 10 + i))" "$color" "$v" "$OFF")$'\n'
  done
  out+=$'\n'"gateway  $GATEWAY  ${gw:-down}"$'\n'
  if ((up == 0)); then out+="${RED}no node is up${OFF}"
  elif ((distinct == 1)); then out+="${GREEN}$up/$NODES nodes up, all agree${OFF}"
  else out+="${YELLOW}$up/$NODES nodes up, $distinct distinct values (converging)${OFF}"; fi
  printf '%s\n' "$out"
  if ((ROUNDS > 0 && round >= ROUNDS)); then exit 0; fi
  sleep "$INTERVAL"
done
