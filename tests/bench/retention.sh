#!/usr/bin/env bash
# Retention stall benchmark (docs/BENCHMARKS.md, "Collector"): a database holding N expired
# sessions (wifisess-loadgen bulk-load: stopped 200..230 days ago), deleted by retention.
#
# 1. Transactions (always): wifisess-loadgen retention-steps runs the collector's retention
#    (jobs::prune_batch) one transaction at a time as `run`'s writer does and times each; an
#    ingest commit waits for at most one, so the longest transaction is the longest stall.
#    Baseline in the same run, on a copy of the same database: fixed 5 000-row batches (the
#    collector before adaptive batches) against the batches sized by jobs::BatchSizer now.
# 2. End to end (--e2e; on by default with --smoke): the collector running on the database
#    while simulated access points publish at a steady rate, retention_days 180 making `run`
#    start the pass at launch. Stall = the longest time the committed-event counter did not
#    advance (wifisess-loadgen monitor, 5 ms polls). Phase A: retention off (baseline);
#    phase B: retention on. The load lasts --seconds (default 300: at 2 000 events/s the
#    pass of 1 000 000 sessions took ~250 s beside it); if the pass outlasts the load, the
#    stall covers the part of the pass that ran beside it, and the count left is reported.
#
# usage: tests/bench/retention.sh [--smoke] [--e2e] [--sessions N] [--rate R] [--seconds S]
#   --smoke   20 000 sessions, 20 devices, a few seconds: checks every step, no timing
# environment: BENCH_DIR, BENCH_INFLIGHT, BENCH_SKIP_BUILD=1
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

SESSIONS=1000000 RATE=2000 SECONDS_LOAD=300 DEVICES=1000 CLIENTS=30 SMOKE=0 E2E=0
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 E2E=1 SESSIONS=20000 RATE=500 SECONDS_LOAD=4 DEVICES=20 CLIENTS=5 ;;
        --e2e) E2E=1 ;;
        --sessions) SESSIONS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --seconds) SECONDS_LOAD=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir retention)"
DB="$W/retention.db"
EVENTS=$((RATE * SECONDS_LOAD))
STREAM=(--devices "$DEVICES" --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE" --paced)
machine_line
echo "expired sessions: $SESSIONS; load: ${STREAM[*]}"
"$LG" bulk-load --sessions "$SESSIONS" --devices "$((DEVICES < 1000 ? DEVICES : 1000))" \
    --open-per-device 0 --end-days-ago 200 --days 30 --device-prefix old- --db "$DB"

# 1. Transactions: the same database twice.
# Each copy is synced before it is measured: otherwise the first checkpoint's fsync writes the
# copy's 500 MB back and the first transaction takes 300+ ms instead of ~100.
cp "$DB" "$W/fixed.db"
sync "$W/fixed.db"
"$LG" retention-steps --db "$W/fixed.db" --days 180 --fixed 5000 | tee "$W/steps-fixed.out"
rm -f "$W"/fixed.db*
cp "$DB" "$W/steps.db"
sync "$W/steps.db"
"$LG" retention-steps --db "$W/steps.db" --days 180 | tee "$W/steps-now.out"
rm -f "$W"/steps.db*
[ "$(jget "$W/steps-now.out" .deleted)" = "$SESSIONS" ] || bdie "retention-steps deleted too few"
if [ "$E2E" = 0 ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm"
    exit 0
fi

# 2. End to end.
start_broker "$W/broker"

phase() {   # phase NAME RETENTION_DAYS DEVICE_PREFIX [monitor args...]
    local name=$1 days=$2 prefix=$3; shift 3
    start_collector "$DB" "$W/collector-$name.log" WIFISESS_RETENTION_DAYS="$days"
    local started; started=$(date +%s%3N)
    [ "$name" = A ] && wait_subscribed "$DB"   # later phases: the broker kept the session
    "$LG" monitor --db "$DB" --expect-events "$EVENTS" --interval-ms 5 --timeout 1800 \
        --stuck-after 30 "$@" \
        >"$W/monitor-$name.out" &
    local mon=$!
    BENCH_PIDS+=("$mon")
    "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" \
        --device-prefix "$prefix" >"$W/publish-$name.out"
    wait "$mon" || {
        cat "$W/monitor-$name.out"
        bdie "phase $name: the collector did not commit all events ($W/collector-$name.log)"
    }
    stop_pid "$COLL_PID" || bdie "the collector did not exit cleanly ($W/collector-$name.log)"
    echo "phase $name (retention_days $days): $(grep -v '^SUMMARY' "$W/monitor-$name.out")"
    echo "$started" >"$W/started-$name"
}

phase A 0 lga-
old=$(sqlite3 -readonly "$DB" "SELECT count(*) FROM sessions WHERE device_id LIKE 'old-%'")
[ "$old" = "$SESSIONS" ] || bdie "phase A: expected $SESSIONS old sessions, found $old"
phase B 180 lgb- --retention-days 180
old=$(sqlite3 -readonly "$DB" "SELECT count(*) FROM sessions WHERE device_id LIKE 'old-%'")
[ "$old" -lt "$SESSIONS" ] || bdie "phase B: retention deleted nothing"
echo "$old" >"$W/left-B"
[ "$old" = 0 ] || echo "phase B: the load ended before the pass: $old of $SESSIONS expired sessions left"
grep -h 'retention: deleted' "$W/collector-B.log" || true
stop_pid "$BROKER_PID" || true

python3 - "$W" "$SESSIONS" <<'EOF'
import json, sys
w, n = sys.argv[1], int(sys.argv[2])
left = int(open(f"{w}/left-B").read())
def s(f):
    for line in open(f"{w}/{f}"):
        if line.startswith("SUMMARY "):
            j = json.loads(line[8:])
    return j
a, b, pb = s("monitor-A.out"), s("monitor-B.out"), s("publish-B.out")
started = int(open(f"{w}/started-B").read())
ret_s = (b["retention_done_ms"] - started) / 1000 if b["retention_done_ms"] else float("nan")
print()
if left:
    print(f"retention deleted {n - left} of {n} sessions while the load ran (not finished); "
          f"load {pb['events']} events at {pb['events_per_s']:.0f} events/s")
else:
    print(f"retention of {n} sessions finished {ret_s:.1f} s after the collector started; "
          f"load {pb['events']} events at {pb['events_per_s']:.0f} events/s")
print(f"longest stall, phase A (no retention):          {a['max_gap_ms']} ms")
print(f"longest stall, phase B during the retention pass: {b['max_gap_retention_ms']} ms "
      "(target <= 200 ms)")
print(f"longest stall, phase B after the pass:            {b['max_gap_other_ms']} ms")
print("SUMMARY " + json.dumps({"tool": "retention.sh", "sessions": n, "left": left,
      "retention_s": None if left else ret_s,
      "stall_baseline_ms": a["max_gap_ms"], "stall_retention_ms": b["max_gap_retention_ms"],
      "stall_after_ms": b["max_gap_other_ms"]}))
EOF
rm -f "$DB" "$DB-wal" "$DB-shm"
