#!/usr/bin/env bash
# Collector ingest benchmark (docs/BENCHMARKS.md, "Collector"): one stream of events from
# simulated access points (wifisess-loadgen, the agent's own outbox and link), measured four
# ways in one run:
#   drain      broker -> plain QoS 1 subscriber, no storage           (the broker's limit)
#   collector  broker -> wifisess-collector -> committed SQLite rows  (end to end)
#   store      the same batches through the collector's writer (merge core + SQLite store),
#              no MQTT (the store path)
#   raw        the same events as plain INSERT/UPDATE, 10 000 a transaction (SQLite's limit)
# drain and collector: events / (last event counted or committed - first publish), the load
# generator publishing as fast as the broker acknowledges; each gets a fresh broker.
#
# usage: tests/bench/ingest.sh [--smoke] [--devices N] [--clients M] [--events E] [--rate R]
#                              [--repeat K] [--group G]
#   --smoke   tiny sizes (seconds), for tests/run.sh: checks that every step works, no timing
#   --repeat  rounds of the four measurements, interleaved (default 3; 1 with --smoke): the
#             machine is shared and noisy, so each ratio is the median of the rounds' ratios
#   --group   the store path's messages per transaction (default 2000, the collector's
#             commit_max_messages: under sustained load its groups fill up to it)
# environment: BENCH_DIR (default target/bench), BENCH_INFLIGHT (broker max_inflight_messages,
#   default 100), BENCH_SKIP_BUILD=1 (use the binaries already built)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

DEVICES=1000 CLIENTS=30 EVENTS=100000 RATE=20000 SMOKE=0 REPEAT=3 GROUP=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 DEVICES=20 CLIENTS=5 EVENTS=2000 RATE=2000 REPEAT=1 ;;
        --devices) DEVICES=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --group) GROUP=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir ingest)"
STREAM=(--devices "$DEVICES" --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE")
machine_line
echo "stream: ${STREAM[*]} (churn 0.1, batch_ms 100, seed 1); broker max_inflight_messages ${BENCH_INFLIGHT:-100}"

# One round: the four measurements of the same stream, files suffixed -R.
round() {
    local r=$1
    # 1. raw SQLite and the store path (no broker).
    "$LG" raw-sqlite "${STREAM[@]}" --db "$W/raw.db" | tee "$W/raw-$r.out"
    "$LG" store "${STREAM[@]}" --group "$GROUP" --db "$W/store.db" | tee "$W/store-$r.out"
    rm -f "$W"/raw.db* "$W"/store.db*

    # 2. drain: subscriber first, then the stream.
    start_broker "$W/broker-drain-$r"
    rm -f "$W/drain.ready"
    "$LG" drain --broker "mqtt://127.0.0.1:$BROKER_PORT" --expect-events "$EVENTS" \
        --ready-file "$W/drain.ready" --timeout 900 >"$W/drain-$r.out" &
    DRAIN_PID=$!
    BENCH_PIDS+=("$DRAIN_PID")
    for _ in $(seq 600); do [ -e "$W/drain.ready" ] && break; sleep 0.05; done
    [ -e "$W/drain.ready" ] || bdie "the drain subscriber did not subscribe"
    "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" | tee "$W/publish-drain-$r.out"
    wait "$DRAIN_PID" || bdie "drain failed"
    cat "$W/drain-$r.out"
    stop_pid "$BROKER_PID" || true

    # 3. collector: subscribed (probe), monitor watching the database, then the stream.
    start_broker "$W/broker-coll-$r"
    rm -f "$W"/collector.db*
    start_collector "$W/collector.db" "$W/collector-$r.log" WIFISESS_RETENTION_DAYS=0
    wait_subscribed "$W/collector.db"
    "$LG" monitor --db "$W/collector.db" --expect-events "$EVENTS" --interval-ms 5 --timeout 1800 \
        --stuck-after 30 >"$W/monitor-$r.out" &
    MON_PID=$!
    BENCH_PIDS+=("$MON_PID")
    "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" | tee "$W/publish-coll-$r.out"
    if ! wait "$MON_PID"; then
        cat "$W/monitor-$r.out"
        if [ "$(jget "$W/monitor-$r.out" .stuck 2>/dev/null)" = true ]; then
            python3 - "$W" "$r" <<'EOF'
import json, sys
w, r = sys.argv[1], sys.argv[2]
last = lambda f: [json.loads(l[8:]) for l in open(f"{w}/{f}-{r}.out") if l.startswith("SUMMARY ")][-1]
m, p = last("monitor"), last("publish-coll")
print(f"collector: committed {m['events']} events, then none for 30 s; until then "
      f"{m['events'] * 1000 / max(1, m['last_change_ms'] - p['first_publish_ms']):.0f} events/s")
EOF
        fi
        bdie "the collector did not commit all events (log: $W/collector-$r.log)"
    fi
    cat "$W/monitor-$r.out"
    stop_pid "$COLL_PID" || bdie "the collector did not exit cleanly (log: $W/collector-$r.log)"
    stop_pid "$BROKER_PID" || true

    # Correctness, not timing: every start made a row, the same rows as the store path made.
    local starts rows
    starts=$(jget "$W/publish-coll-$r.out" .mix.starts)
    rows=$(sqlite3 -readonly "$W/collector.db" \
        "SELECT count(*) FROM sessions WHERE device_id LIKE 'lg-%'")
    [ "$rows" = "$starts" ] || bdie "collector stored $rows sessions, the stream started $starts"
    [ "$(jget "$W/store-$r.out" .sessions)" = "$starts" ] || bdie "store path row count differs"
    [ "$(jget "$W/raw-$r.out" .sessions)" = "$starts" ] || bdie "raw row count differs"
    [ "$SMOKE" = 1 ] || rm -f "$W"/collector.db*
}

for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    round "$r"
done

python3 - "$W" "$EVENTS" "$REPEAT" "$GROUP" <<'EOF'
import json, statistics, sys
w, n, rounds, group = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def s(f, r):
    for line in open(f"{w}/{f}-{r}.out"):
        if line.startswith("SUMMARY "):
            j = json.loads(line[8:])
    return j
rows = []
for r in range(1, rounds + 1):
    raw, store, drain, pd = s("raw", r), s("store", r), s("drain", r), s("publish-drain", r)
    mon, pc = s("monitor", r), s("publish-coll", r)
    rows.append({
        "raw": raw["events_per_s"], "store": store["events_per_s"],
        "drain": n * 1000 / max(1, drain["last_ms"] - pd["first_publish_ms"]),
        "collector": n * 1000 / max(1, mon["done_ms"] - pc["first_publish_ms"]),
    })
pc = s("publish-coll", 1)
med = statistics.median
print()
print(f"events {n}: {pc['mix']['starts']} starts, {pc['mix']['updates']} updates, "
      f"{pc['mix']['stops']} stops; {pc['batches']} batches "
      f"({n / pc['batches']:.2f} events/batch, {pc['bytes'] / n:.1f} bytes/event); "
      f"store path {group} messages/tx")
names = [("raw", "raw SQLite (10 000 rows/tx)"), ("store", "store path (merge, no MQTT)"),
         ("drain", "broker drain"), ("collector", "collector end to end")]
print(f"{'events/s':<30}" + "".join(f"{f'round {i + 1}':>10}" for i in range(rounds))
      + f"{'median':>10}")
for k, label in names:
    xs = [x[k] for x in rows]
    print(f"{label:<30}" + "".join(f"{v:>10.0f}" for v in xs) + f"{med(xs):>10.0f}")
ratios = [("collector / drain", "collector", "drain", "(target >= 0.80)"),
          ("collector / raw SQLite", "collector", "raw", "(target >= 0.50)"),
          ("store path / raw SQLite", "store", "raw", "(target >= 0.50)"),
          ("collector / store path", "collector", "store", "")]
out = {"tool": "ingest.sh", "events": n, "rounds": rounds, "group": int(group)}
for label, a, b, t in ratios:
    xs = [x[a] / x[b] for x in rows]
    print(f"ratio {label:<24} = {med(xs):.3f} {t}  rounds: {', '.join(f'{v:.3f}' for v in xs)}")
    out[f"{a}/{b}"] = med(xs)
for k, _ in names:
    out[k] = med([x[k] for x in rows])
print("SUMMARY " + json.dumps(out))
EOF
