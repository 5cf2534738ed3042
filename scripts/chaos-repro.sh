#!/usr/bin/env bash
# Minimal reproductions of the product bugs the chaos suite (test/chaos) found; all three
# are fixed (e7bc622 null body, e93b5b2 lost 413, bae3076 rejoin) and kept to re-check.
#   scripts/chaos-repro.sh null-body   # POST body `null` is counted as by: 1 (should be 400)
#   scripts/chaos-repro.sh big-body    # a 10 MB body mostly gets a connection reset, not the 413
#   scripts/chaos-repro.sh rejoin      # a node its peers forgot, restarted while discovery is
#                                      # down, never rejoins until discovery returns
# Needs `npm run build` first. Uses 127.0.98.x and a temp dir; stops what it starts (by pid).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/dcounter-repro-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
DC=(node bin/dcounter.js)
wait_http() { for _ in $(seq 1 600); do curl -sf "http://$1/health" >/dev/null && return 0; sleep 0.1; done; echo "no /health on $1" >&2; return 1; }
start_node() { # name gossip http [extra flags...]
  local name=$1 gossip=$2 http=$3; shift 3
  "${DC[@]}" --role node --addr "$gossip" --http-addr "$http" --data-dir "$DIR/$name" --log-level warn "$@" >"$DIR/$name.log" 2>&1 &
  PIDS+=($!); eval "PID_$name=$!"
}

case "${1:-}" in
  null-body)
    start_node n1 127.0.98.2:19001 127.0.98.2:18011
    wait_http 127.0.98.2:18011
    "${DC[@]}" --role gateway --addr 127.0.98.1:18080 --nodes http://127.0.98.2:18011 --log-level warn >"$DIR/gw.log" 2>&1 & PIDS+=($!)
    wait_http 127.0.98.1:18080
    for url in http://127.0.98.2:18011/increment http://127.0.98.1:18080/increment; do
      echo "POST $url with body null:"
      curl -s -w "  -> HTTP %{http_code}\n" -X POST -H 'content-type: application/json' -d null "$url"
    done
    echo "value now (expected 0): $(curl -s http://127.0.98.2:18011/counter)"
    ;;
  big-body)
    start_node n1 127.0.98.2:19001 127.0.98.2:18011
    wait_http 127.0.98.2:18011
    node -e 'process.stdout.write(JSON.stringify({ by: 1, pad: "z".repeat(10 * 1024 * 1024) }))' >"$DIR/big.json"
    for i in 1 2 3 4 5; do
      # no `Expect: 100-continue` (as most clients): the body is sent at once
      curl -sS -o /dev/null -w "attempt $i -> HTTP %{http_code}\n" -X POST -H 'Expect:' \
        -H 'content-type: application/json' --data-binary @"$DIR/big.json" http://127.0.98.2:18011/increment 2>&1 || true
    done
    echo "(expected: HTTP 413 every time; 000 / 'Broken pipe' / 'Connection reset' means the 413 was lost)"
    ;;
  rejoin)
    "${DC[@]}" --role discovery --addr 127.0.98.1:18000 --peer-ttl 2s --log-level warn >"$DIR/disc.log" 2>&1 &
    PID_disc=$!; PIDS+=($PID_disc)
    wait_http 127.0.98.1:18000
    T=(--discovery 127.0.98.1:18000 --heartbeat-interval 250ms --failure-timeout 2s --sync-interval 300ms)
    start_node a 127.0.98.2:19001 127.0.98.2:18011 "${T[@]}"
    start_node b 127.0.98.3:19001 127.0.98.3:18011 "${T[@]}"
    start_node x 127.0.98.4:19001 127.0.98.4:18011 "${T[@]}"
    wait_http 127.0.98.2:18011; wait_http 127.0.98.3:18011; wait_http 127.0.98.4:18011
    for _ in $(seq 1 100); do [ "$(curl -s http://127.0.98.2:18011/peers | grep -o '"alive"' | wc -l)" -ge 2 ] && break; sleep 0.2; done
    echo "a's peers: $(curl -s http://127.0.98.2:18011/peers)"
    echo "kill -9 x; wait until a and b drop it from /peers"
    { kill -9 "$PID_x"; wait "$PID_x"; } 2>/dev/null || true
    for _ in $(seq 1 100); do curl -s http://127.0.98.2:18011/peers | grep -q 127.0.98.4 || break; sleep 0.2; done
    echo "a's peers: $(curl -s http://127.0.98.2:18011/peers)"
    echo "kill -9 discovery; restart x"
    { kill -9 "$PID_disc"; wait "$PID_disc"; } 2>/dev/null || true
    start_node x 127.0.98.4:19001 127.0.98.4:18011 "${T[@]}"
    wait_http 127.0.98.4:18011
    curl -s -o /dev/null -X POST -d '{"by":5}' -H 'content-type: application/json' http://127.0.98.2:18011/counters/r/increment
    curl -s -o /dev/null -X POST -d '{"by":7}' -H 'content-type: application/json' http://127.0.98.4:18011/counters/r/increment
    sleep 20
    for n in 2 3 4; do echo "127.0.98.$n r = $(curl -s http://127.0.98.$n:18011/counters/r)"; done
    echo "(expected 12 on all three; x stays alone until discovery comes back)"
    ;;
  *) sed -n 2,8p "$0"; exit 2 ;;
esac
