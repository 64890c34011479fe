#!/usr/bin/env bash
# Redelivery after a crash with a backlog (issue 19, docs/BENCHMARKS.md "Hostile load"): the
# collector is killed with kill -9, a backlog of EVENTS events is published while it is down
# (the broker keeps it for the persistent session), then the collector starts again. Printed:
# the events it merged after the restart divided by the events published (1.0 = every message
# once; each reconnect while the backlog drains makes the broker send every unacknowledged
# message again), how long the backlog took, and the reconnects the log shows. A collector
# that exits is started again at once, as procd's respawn would, and counted.
#
# usage: tests/bench/redelivery.sh [--events E] [--keep-alive S]
#   --keep-alive  the collector's [limits] mqtt_keep_alive_s (default 30, the default)
# environment: BENCH_COLLECTOR (another build, e.g. main's, to compare), BENCH_SKIP_BUILD=1,
#   BENCH_DIR, BENCH_INFLIGHT (broker max_inflight_messages, default 100)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

EVENTS=1000000 KA=30
while [ $# -gt 0 ]; do
    case "$1" in
        --events) EVENTS=$2; shift ;;
        --keep-alive) KA=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir redelivery)"
machine_line
echo "collector: $COLL"
start_broker "$W/broker"
DB="$W/wifisess.db"
CFG="$W/collector.toml"
printf '[limits]\nmqtt_keep_alive_s = %s\n' "$KA" >"$CFG"
# An older build rejects the unknown [limits] table: give it no config file then.
CFGARG=(--config "$CFG")
"$COLL" run --config "$CFG" --db "$W/probe.db" --http off --broker mqtt://127.0.0.1:1 2>"$W/probe.log" &
PROBE=$!
sleep 1
if ! kill -0 "$PROBE" 2>/dev/null; then CFGARG=(); echo "(this build has no [limits]: keep-alive 30 s)"; fi
kill "$PROBE" 2>/dev/null || true; wait "$PROBE" 2>/dev/null || true

run_collector() {
    env WIFISESS_CLIENT_ID="bench-collector-$BROKER_PORT" WIFISESS_RETENTION_DAYS=0 \
        WIFISESS_EXPIRE_HOURS=0 "$COLL" run "${CFGARG[@]}" --db "$DB" \
        --broker "mqtt://127.0.0.1:$BROKER_PORT" --http off 2>>"$W/collector.log" &
    COLL_PID=$!
    BENCH_PIDS+=("$COLL_PID")
}
events_counter() {
    sqlite3 -readonly "file:$DB?mode=ro" "SELECT coalesce((SELECT value FROM counters WHERE name = 'events'), 0)" 2>/dev/null || echo 0
}

run_collector
wait_subscribed "$DB"
kill -9 "$COLL_PID"; wait "$COLL_PID" 2>/dev/null || true
BEFORE=$(events_counter)
"$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" --events "$EVENTS" --devices 1000 \
    --clients 30 --timeout 1800 >"$W/publish.out"
PUBLISHED=$(jget "$W/publish.out" '.events')
echo "backlog: $PUBLISHED events published while the collector was down"
T0=$(date +%s.%N)
run_collector
# Done when the counter has reached the backlog and stopped moving for 5 s.
LAST=-1 SAME=0 RESTARTS=0
while :; do
    N=$(events_counter)
    if [ "$N" = "$LAST" ] && [ $((N - BEFORE)) -ge "$PUBLISHED" ]; then
        SAME=$((SAME + 1)); [ "$SAME" -ge 25 ] && break
    else
        SAME=0; LAST=$N; T1=$(date +%s.%N)
    fi
    if ! kill -0 "$COLL_PID" 2>/dev/null; then
        # As procd's respawn would: start it again, and count it.
        RESTARTS=$((RESTARTS + 1))
        [ "$RESTARTS" -le 20 ] || bdie "the collector exited 20 times"
        echo "the collector exited ($(tail -n 1 "$W/collector.log")); starting it again"
        run_collector
    fi
    sleep 0.2
done
MERGED=$((LAST - BEFORE))
RECONNECTS=$(grep -c 'connected (session present' "$W/collector.log" || true)
ERRORS=$(grep -c 'mqtt: ' "$W/collector.log" || true)
awk -v m="$MERGED" -v p="$PUBLISHED" -v t0="$T0" -v t1="$T1" -v r="$RECONNECTS" -v e="$ERRORS" -v x="$RESTARTS" 'BEGIN {
    printf "RESULT redelivered/original %.2f (%d events merged for %d published) in %.1f s; %d connects, %d connection errors, %d restarts\n", m / p, m, p, t1 - t0, r, e, x }'
grep 'mqtt: ' "$W/collector.log" | head -5 || true
