#!/usr/bin/env bash
# Scale-out benchmark (docs/BENCHMARKS.md, "PostgreSQL"; docs/SCALE.md): the ingest benchmark's
# stream (wifisess-loadgen publish, as fast as the broker acknowledges) through a real
# mosquitto into one PostgreSQL, stored by 1 collector and by 2 collectors of one share group
# (`run --db postgres://… --share-group g --instance c1|c2`), against the broker drain (a plain
# QoS 1 subscriber, no storage) measured in the same round. Rounds are interleaved (drain, 1
# collector, 2 collectors; each with a fresh broker and, for the collectors, a fresh
# database); every figure is the median of the rounds.
#   events/s     events / (last event committed - first publish): `wifisess-loadgen monitor`
#                polls the `counters` view (every collector's shard) every 5 ms
#   CPU/event    user + system time (/proc/PID/stat) of the collectors and of PostgreSQL (the
#                postmaster and every backend, autovacuum and checkpointer included; the
#                monitor's own backend subtracted) over the same interval, per event
#   lock waits   the cluster runs with log_lock_waits=on and deadlock_timeout 10 ms: every wait
#                for a lock longer than that is logged with its duration; the longest and
#                how many (waits under 10 ms are not seen)
# The cluster is a throwaway one (tests/bench/lib-pg.sh: fsync=on, synchronous_commit=on).
#
# usage: tests/bench/scale.sh [--smoke] [--devices N] [--clients M] [--events E] [--rate R]
#                             [--repeat K] [--collectors "1 2"] [--paced]
#   --smoke   tiny sizes (seconds), for tests/bench/collector.sh --smoke: checks that every
#             step works, no timing
#   --paced   publish along the simulated clock at --rate events/s (a steady load below what
#             the collectors sustain: lock waits and commit gaps in normal operation) instead
#             of as fast as the broker acknowledges (the throughput figures)
# environment: BENCH_DIR, BENCH_SKIP_BUILD=1, BENCH_INFLIGHT, PG_DEADLOCK_TIMEOUT (10ms)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"

DEVICES=1000 CLIENTS=30 EVENTS=100000 RATE=20000 REPEAT=3 SMOKE=0 COUNTS="1 2" PACED=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 DEVICES=20 CLIENTS=5 EVENTS=2000 RATE=2000 REPEAT=1 ;;
        --devices) DEVICES=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --collectors) COUNTS=$2; shift ;;
        --paced) PACED=(--paced) ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir scale)"
trap 'bench_cleanup; pg_stop' EXIT
PG_DEADLOCK_TIMEOUT=${PG_DEADLOCK_TIMEOUT:-10ms}
pg_start "$W/pg"
STREAM=(--devices "$DEVICES" --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE")
machine_line
echo "stream: ${STREAM[*]} ${PACED[*]} (churn 0.1, batch_ms 100, seed 1); broker max_inflight_messages ${BENCH_INFLIGHT:-100}"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), fsync=on, deadlock_timeout $PG_DEADLOCK_TIMEOUT, log_lock_waits=on"

# cpu_of PID... : user + system seconds of these processes.
cpu_of() {
    local p total=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$(sed 's/.*) //' "/proc/$p/stat" | awk -v t="$total" '{ print t + $12 + $13 }')
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# wait_members DB N LOG... : waits until every collector logged its SUBACK, then publishes
# small probe streams (devices probeK-…) until every one of the N collectors has committed
# events (a row of its own in counter_shards): the share group hands each its turn.
wait_members() {
    local db=$1 n=$2 k i have f
    shift 2
    for f in "$@"; do
        for i in $(seq 600); do
            grep -q 'subscribed to' "$f" 2>/dev/null && break
            sleep 0.05
        done
        grep -q 'subscribed to' "$f" || bdie "no subscription after 30 s (log: $f)"
    done
    for k in $(seq 30); do
        "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" --devices 4 --clients 2 \
            --events 40 --rate 1000 --device-prefix "probe$k-" --timeout 30 >/dev/null
        for i in $(seq 100); do
            have=$(pg_psql -c "SELECT count(DISTINCT instance) FROM counter_shards
                               WHERE name = 'events'" "$db" 2>/dev/null || echo 0)
            [ "$have" = "$n" ] && return 0
            for p in "${COLL_PIDS[@]}"; do
                kill -0 "$p" 2>/dev/null || bdie "a collector exited (logs: $W/c*-*.log)"
            done
            sleep 0.05
        done
    done
    bdie "not every collector committed probe events within 150 s"
}

round() {
    local r=$1 n i db url logoff c0 c1 p0 p1
    # 1. drain: subscriber first, then the stream.
    start_broker "$W/broker-drain-$r"
    rm -f "$W/drain.ready"
    "$LG" drain --broker "mqtt://127.0.0.1:$BROKER_PORT" --expect-events "$EVENTS" \
        --ready-file "$W/drain.ready" --timeout 900 >"$W/drain-$r.out" &
    DRAIN_PID=$!
    BENCH_PIDS+=("$DRAIN_PID")
    for _ in $(seq 600); do [ -e "$W/drain.ready" ] && break; sleep 0.05; done
    [ -e "$W/drain.ready" ] || bdie "the drain subscriber did not subscribe"
    "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" "${PACED[@]}" \
        >"$W/publish-drain-$r.out"
    wait "$DRAIN_PID" || bdie "drain failed"
    stop_pid "$BROKER_PID" || true
    echo "round $r: $(grep '^drained' "$W/drain-$r.out" | head -n1)"

    # 2. N collectors of one share group on a fresh database.
    for n in $COUNTS; do
        db="r${r}n${n}"
        pg_createdb "$db"
        url="$(pg_url "$db")"
        start_broker "$W/broker-c$n-$r"
        COLL_PIDS=() COLL_LOGS=()
        for i in $(seq "$n"); do
            COLL_LOGS+=("$W/c$n-$r-c$i.log")
            env WIFISESS_CLIENT_ID="bench-$BROKER_PORT" WIFISESS_RETENTION_DAYS=0 \
                "$COLL" run --db "$url" --broker "mqtt://127.0.0.1:$BROKER_PORT" --http off \
                --share-group g --instance "c$i" 2>"$W/c$n-$r-c$i.log" &
            COLL_PIDS+=("$!")
            BENCH_PIDS+=("$!")
        done
        wait_members "$db" "$n" "${COLL_LOGS[@]}"
        logoff=$(stat -c %s "$PG_DIR/log")
        c0=$(cpu_of "${COLL_PIDS[@]}")
        p0=$(pg_cpu_s)
        "$LG" monitor --db "$url" --expect-events "$EVENTS" --interval-ms 5 --timeout 1800 \
            --stuck-after 60 >"$W/monitor-c$n-$r.out" &
        MON_PID=$!
        BENCH_PIDS+=("$MON_PID")
        sleep 0.2
        "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" "${STREAM[@]}" "${PACED[@]}" \
            >"$W/publish-c$n-$r.out"
        wait "$MON_PID" || { cat "$W/monitor-c$n-$r.out"; bdie "the collectors did not commit every event (logs: $W/c$n-$r-c*.log)"; }
        c1=$(cpu_of "${COLL_PIDS[@]}")
        p1=$(pg_cpu_s)
        tail -c +"$((logoff + 1))" "$PG_DIR/log" >"$W/pglog-c$n-$r.txt"
        pg_psql -F ' ' -c "SELECT instance, value FROM counter_shards WHERE name = 'events'
                           ORDER BY instance" "$db" >"$W/shards-c$n-$r.txt"
        pg_psql -c "SELECT deadlocks FROM pg_stat_database WHERE datname = '$db'" postgres \
            >"$W/deadlocks-c$n-$r.txt"
        echo "$c0 $c1 $p0 $p1" >"$W/cpu-c$n-$r.txt"
        for p in "${COLL_PIDS[@]}"; do
            stop_pid "$p" || bdie "a collector did not exit cleanly (logs: $W/c$n-$r-c*.log)"
        done
        stop_pid "$BROKER_PID" || true
        # Correctness, not timing: every start of the stream made one row.
        local starts rows
        starts=$(jget "$W/publish-c$n-$r.out" .mix.starts)
        rows=$(pg_psql -c "SELECT count(*) FROM sessions WHERE device_id LIKE 'lg-%'" "$db")
        [ "$rows" = "$starts" ] || bdie "$n collector(s) stored $rows sessions, the stream started $starts"
        pg_psql -c "DROP DATABASE $db" postgres
        echo "round $r: $n collector(s): $(sed -n 's/^committed //p' "$W/monitor-c$n-$r.out" | head -n1)"
    done
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$REPEAT"); do
    round "$r"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done

python3 - "$W" "$EVENTS" "$REPEAT" "$COUNTS" <<'EOF'
import json, re, statistics, sys
w, n, rounds, counts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(c) for c in sys.argv[4].split()]
def s(f):
    j = None
    for line in open(f"{w}/{f}"):
        if line.startswith("SUMMARY "):
            j = json.loads(line[8:])
    return j
med = statistics.median
acq = re.compile(r"acquired (\S+) on .* after ([0-9.]+) ms")
waiting = re.compile(r"still waiting for")
rows = []
for r in range(1, rounds + 1):
    d, pd = s(f"drain-{r}.out"), s(f"publish-drain-{r}.out")
    row = {"drain": n * 1000 / max(1, d["last_ms"] - pd["first_publish_ms"])}
    for c in counts:
        m, pc = s(f"monitor-c{c}-{r}.out"), s(f"publish-c{c}-{r}.out")
        c0, c1, p0, p1 = map(float, open(f"{w}/cpu-c{c}-{r}.txt").read().split())
        pg = p1 - p0 - (m.get("backend_cpu_s") or 0.0)
        log = open(f"{w}/pglog-c{c}-{r}.txt", errors="replace").read()
        waits = [float(x[1]) for x in acq.findall(log)]
        kinds = sorted({x[0] for x in acq.findall(log)})
        row[c] = {
            "events_per_s": n * 1000 / max(1, m["done_ms"] - pc["first_publish_ms"]),
            "collector_us": (c1 - c0) * 1e6 / n, "pg_us": pg * 1e6 / n,
            "cpu_us": (c1 - c0 + pg) * 1e6 / n,
            "max_wait_ms": max(waits, default=0.0), "waits": len(waits),
            "still_waiting": len(waiting.findall(log)), "lock_kinds": kinds,
            "deadlocks": int(open(f"{w}/deadlocks-c{c}-{r}.txt").read().strip() or 0),
            "stall_ms": m["max_gap_ms"],
            "shards": open(f"{w}/shards-c{c}-{r}.txt").read().split("\n")[0:c],
        }
    rows.append(row)
print()
print(f"events {n}; {rounds} round(s); medians of the rounds (rounds in brackets)")
def line(label, xs, fmt):
    print(f"{label:<50}{fmt.format(med(xs)):>12}   [" + ", ".join(fmt.format(x) for x in xs) + "]")
line("broker drain, events/s", [x["drain"] for x in rows], "{:.0f}")
out = {"tool": "scale.sh", "events": n, "rounds": rounds, "drain": med([x["drain"] for x in rows])}
for c in counts:
    k = f"{c} collector{'s' if c > 1 else ''}"
    xs = [x[c] for x in rows]
    line(f"{k}: events/s", [x["events_per_s"] for x in xs], "{:.0f}")
    line(f"{k}: / drain", [x[c]["events_per_s"] / x["drain"] for x in rows], "{:.3f}")
    line(f"{k}: CPU us/event (collectors + PostgreSQL)", [x["cpu_us"] for x in xs], "{:.1f}")
    line(f"{k}:   of it collectors", [x["collector_us"] for x in xs], "{:.1f}")
    line(f"{k}:   of it PostgreSQL", [x["pg_us"] for x in xs], "{:.1f}")
    line(f"{k}: longest lock wait > deadlock_timeout, ms", [x["max_wait_ms"] for x in xs], "{:.1f}")
    line(f"{k}: lock waits > deadlock_timeout", [x["waits"] for x in xs], "{:.0f}")
    line(f"{k}: longest time no commit, ms", [x["stall_ms"] for x in xs], "{:.0f}")
    print(f"{'':<50}lock kinds: {sorted({k for x in xs for k in x['lock_kinds']})}; "
          f"deadlocks: {sum(x['deadlocks'] for x in xs)}; events per instance (round 1): {xs[0]['shards']}")
    out[str(c)] = {key: med([x[key] for x in xs]) for key in
                   ("events_per_s", "cpu_us", "collector_us", "pg_us", "max_wait_ms", "waits", "stall_ms")}
    out[str(c)]["per_drain"] = med([x[c]["events_per_s"] / x["drain"] for x in rows])
    out[str(c)]["max_wait_ms_all"] = max(x["max_wait_ms"] for x in xs)
    out[str(c)]["deadlocks"] = sum(x["deadlocks"] for x in xs)
print("SUMMARY " + json.dumps(out))
EOF
