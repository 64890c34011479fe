#!/usr/bin/env bash
# Collector ingest benchmark (docs/BENCHMARKS.md, "Collector"): one stream of events from
# simulated access points (wifisess-loadgen, the agent's own outbox and link), measured four
# ways in one run:
#   drain      broker -> plain QoS 1 subscriber, no storage           (the broker's limit)
#   collector  broker -> wifisess-collector -> committed SQLite rows  (end to end)
#   store      the same batches through merge::apply_publish, no MQTT (the store path)
#   raw        the same events as plain INSERT/UPDATE, 10 000 a transaction (SQLite's limit)
# drain and collector: events / (last event counted or committed - first publish), the load
# generator publishing as fast as the broker acknowledges; each gets a fresh broker.
#
# usage: tests/bench/ingest.sh [--smoke] [--devices N] [--clients M] [--events E] [--rate R]
#   --smoke   tiny sizes (seconds), for tests/run.sh: checks that every step works, no timing
# environment: BENCH_DIR (default target/bench), BENCH_INFLIGHT (broker max_inflight_messages,
#   default 100), BENCH_SKIP_BUILD=1 (use the binaries already built)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

DEVICES=1000 CLIENTS=30 EVENTS=100000 RATE=20000 SMOKE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 DEVICES=20 CLIENTS=5 EVENTS=2000 RATE=2000 ;;
        --devices) DEVICES=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir ingest)"
STREAM=(--devices "$DEVICES" --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE")
machine_line
echo "stream: ${STREAM[*]} (churn 0.1, batch_ms 100, seed 1); broker max_inflight_messages ${BENCH_INFLIGHT:-100}"

# 1. raw SQLite and the store path (no broker).
"$LG" raw-sqlite "${STREAM[@]}" --db "$W/raw.db" | tee "$W/raw.out"
"$LG" store "${STREAM[@]}" --db "$W/store.db" | tee "$W/store.out"
rm -f "$W"/raw.db* "$W"/store.db*

# 2. drain: subscriber first, then the stream.
start_broker "$W/broker-drain"
"$LG" drain --broker "mqtt://127.0.0.1:$BROKER_PORT" --expect-events "$EVENTS" \
    --ready-file "$W/drain.ready" --timeout 900 >"$W/drain.out" &
DRAIN_PID=$!
BENCH_PIDS+=("$DRAIN_PID")
for _ in $(seq 600); do [ -e "$W/drain.ready" ] && break; sleep 0.05; done
[ -e "$W/drain.ready" ] || bdie "the drain subscriber did not subscribe"
"$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" | tee "$W/publish-drain.out"
wait "$DRAIN_PID" || bdie "drain failed"
cat "$W/drain.out"
stop_pid "$BROKER_PID" || true

# 3. collector: subscribed (probe), monitor watching the database, then the stream.
start_broker "$W/broker-coll"
start_collector "$W/collector.db" "$W/collector.log" WIFISESS_RETENTION_DAYS=0
wait_subscribed "$W/collector.db"
"$LG" monitor --db "$W/collector.db" --expect-events "$EVENTS" --interval-ms 5 --timeout 1800 \
    --stuck-after 30 >"$W/monitor.out" &
MON_PID=$!
BENCH_PIDS+=("$MON_PID")
"$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" | tee "$W/publish-coll.out"
if ! wait "$MON_PID"; then
    cat "$W/monitor.out"
    if [ "$(jget "$W/monitor.out" .stuck 2>/dev/null)" = true ]; then
        python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
last = lambda f: [json.loads(l[8:]) for l in open(f"{w}/{f}") if l.startswith("SUMMARY ")][-1]
m, p = last("monitor.out"), last("publish-coll.out")
print(f"collector: committed {m['events']} events, then none for 30 s; until then "
      f"{m['events'] * 1000 / max(1, m['last_change_ms'] - p['first_publish_ms']):.0f} events/s")
EOF
    fi
    bdie "the collector did not commit all events (log: $W/collector.log)"
fi
cat "$W/monitor.out"
stop_pid "$COLL_PID" || bdie "the collector did not exit cleanly (log: $W/collector.log)"
stop_pid "$BROKER_PID" || true

# Correctness, not timing: every start made a row, the same rows as the store path made.
starts=$(jget "$W/publish-coll.out" .mix.starts)
rows=$(sqlite3 -readonly "$W/collector.db" \
    "SELECT count(*) FROM sessions WHERE device_id LIKE 'lg-%'")
[ "$rows" = "$starts" ] || bdie "collector stored $rows sessions, the stream started $starts"
[ "$(jget "$W/store.out" .sessions)" = "$starts" ] || bdie "store path row count differs"
[ "$(jget "$W/raw.out" .sessions)" = "$starts" ] || bdie "raw row count differs"
[ "$SMOKE" = 1 ] || rm -f "$W"/collector.db*

python3 - "$W" "$EVENTS" <<'EOF'
import json, sys
w, n = sys.argv[1], int(sys.argv[2])
def s(f):
    for line in open(f"{w}/{f}"):
        if line.startswith("SUMMARY "):
            j = json.loads(line[8:])
    return j
raw, store, drain, pd = s("raw.out"), s("store.out"), s("drain.out"), s("publish-drain.out")
mon, pc = s("monitor.out"), s("publish-coll.out")
d_rate = n * 1000 / max(1, drain["last_ms"] - pd["first_publish_ms"])
c_rate = n * 1000 / max(1, mon["done_ms"] - pc["first_publish_ms"])
print()
print(f"events {n}: {pc['mix']['starts']} starts, {pc['mix']['updates']} updates, "
      f"{pc['mix']['stops']} stops; {pc['batches']} batches "
      f"({n / pc['batches']:.2f} events/batch, {pc['bytes'] / n:.1f} bytes/event)")
print(f"{'measure':<44} {'events/s':>10}")
print(f"{'raw SQLite (10 000 rows/tx)':<44} {raw['events_per_s']:>10.0f}")
print(f"{'store path: merge::apply_publish, no MQTT':<44} {store['events_per_s']:>10.0f}")
print(f"{'broker drain (first publish -> last event)':<44} {d_rate:>10.0f}")
print(f"{'collector (first publish -> last commit)':<44} {c_rate:>10.0f}")
print(f"{'  publisher alone, drain run / collector run':<44} "
      f"{pd['events_per_s']:>10.0f} / {pc['events_per_s']:.0f}")
print(f"ratio collector / drain      = {c_rate / d_rate:.3f}  (target >= 0.80)")
print(f"ratio collector / raw SQLite = {c_rate / raw['events_per_s']:.3f}  (target >= 0.50)")
print(f"ratio store path / raw SQLite = {store['events_per_s'] / raw['events_per_s']:.3f}")
print("SUMMARY " + json.dumps({"tool": "ingest.sh", "events": n, "raw": raw["events_per_s"],
      "store": store["events_per_s"], "drain": d_rate, "collector": c_rate}))
EOF
