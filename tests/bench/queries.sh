#!/usr/bin/env bash
# Query benchmark (docs/BENCHMARKS.md, "Collector"): bulk-loads a database of N sessions with
# the collector's schema (wifisess-loadgen bulk-load: 10 organizations, 100 groups, 10 000
# devices, 200 000 client MACs, 90 days, 30 open sessions per device), then runs the
# collector's own query functions RUNS times each (wifisess-loadgen query-bench) and prints
# p50/p99/max, on a read-only connection opened as the CLI and the HTTP API open theirs (one
# read side). The database is deleted afterwards (--keep keeps it in target/bench/).
#
# usage: tests/bench/queries.sh [--smoke] [--db sqlite|postgres|both] [--sessions N]
#                               [--runs R] [--passes K] [--keep] [--reuse]
#   --smoke   20 000 sessions, 100 devices, 20 runs: checks that every step works
#   --db      sqlite (default), postgres (a throwaway cluster with fsync=on started here,
#             tests/bench/lib-pg.sh; loaded with COPY, indexes built afterwards, VACUUM
#             (ANALYZE)), or both: the same rows in each, query passes interleaved
#             (sqlite, postgres, sqlite, ...), medians of the passes
#   --passes  query passes per engine (default 1; 3 with --db both)
#   --reuse   query an existing target/bench/queries-N.db / queries-pg-N cluster instead of
#             loading again
# environment: BENCH_DIR, BENCH_SKIP_BUILD=1
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

SESSIONS=10000000 RUNS=200 KEEP=0 REUSE=0 SHAPE=() ENGINE=sqlite PASSES=
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SESSIONS=20000 RUNS=20 SHAPE=(--devices 100 --macs 2000 --groups 10 --orgs 2) ;;
        --db) ENGINE=$2; shift ;;
        --sessions) SESSIONS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --passes) PASSES=$2; shift ;;
        --keep) KEEP=1 ;;
        --reuse) REUSE=1 KEEP=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
case "$ENGINE" in
    sqlite) ENGINES=(sqlite) ;;
    postgres) ENGINES=(postgres) ;;
    both) ENGINES=(sqlite postgres); PASSES=${PASSES:-3} ;;
    *) bdie "--db: sqlite, postgres or both" ;;
esac
PASSES=${PASSES:-1}
build_bins
machine_line
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
OUT="$BENCH_DIR/queries-out"
rm -rf "$OUT" && mkdir -p "$OUT"
declare -A DBS
for e in "${ENGINES[@]}"; do
    case "$e" in
        sqlite)
            DB="$BENCH_DIR/queries-$SESSIONS.db"
            if [ "$REUSE" = 1 ] && [ -e "$DB" ]; then
                echo "reusing $DB"
            else
                "$LG" bulk-load --sessions "$SESSIONS" "${SHAPE[@]}" --db "$DB" | tee "$OUT/load-sqlite.out"
            fi
            DBS[sqlite]=$DB
            ;;
        postgres)
            . "$REPO_ROOT/tests/bench/lib-pg.sh"
            PGW="$BENCH_DIR/queries-pg-$SESSIONS"
            if [ "$KEEP" = 1 ]; then
                trap 'pg_stop; bench_cleanup' EXIT
            else
                trap 'pg_stop; rm -rf "$PGW"; bench_cleanup' EXIT
            fi
            if [ "$REUSE" = 1 ] && [ -e "$PGW/pg/data/PG_VERSION" ]; then
                pg_start "$PGW/pg" reuse
                echo "reusing the cluster in $PGW"
            else
                pg_start "$PGW/pg"
                pg_createdb bench
            fi
            echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), fsync=on, shared_buffers 512MB"
            URL="$(pg_url bench)"
            if [ "$REUSE" != 1 ] || [ "$(pg_psql -c 'SELECT count(*) FROM devices' bench 2>/dev/null || echo 0)" = 0 ]; then
                "$LG" bulk-load --sessions "$SESSIONS" "${SHAPE[@]}" --db "$URL" | tee "$OUT/load-postgres.out"
            fi
            DBS[postgres]=$URL
            ;;
    esac
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in $(seq "$PASSES"); do
    for e in "${ENGINES[@]}"; do
        echo "== pass $p: $e"
        "$LG" query-bench "${SHAPE[@]}" --db "${DBS[$e]}" --runs "$RUNS" | tee "$OUT/qb-$e-$p.out"
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PASSES" -gt 1 ] || [ "${#ENGINES[@]}" -gt 1 ]; then
    python3 - "$OUT" "$PASSES" "${ENGINES[@]}" <<'EOF'
import json, statistics, sys
out, passes, engines = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def summ(f):
    for line in open(f):
        if line.startswith("SUMMARY "):
            j = json.loads(line[8:])
    return j
res = {e: [summ(f"{out}/qb-{e}-{p}.out")["queries"] for p in range(1, passes + 1)] for e in engines}
names = [q["query"] for q in res[engines[0]][0]]
med = statistics.median
print()
print(f"medians of {passes} pass(es), ms: p50 / p99 / max (max: the largest of the passes)")
print(f"{'query':<36}" + "".join(f"{e:>28}" for e in engines))
summary = {"tool": "queries.sh", "passes": passes, "queries": []}
for i, n in enumerate(names):
    cells, row = [], {"query": n}
    for e in engines:
        qs = [p[i] for p in res[e]]
        p50, p99, mx = med([q["p50_ms"] for q in qs]), med([q["p99_ms"] for q in qs]), max(q["max_ms"] for q in qs)
        cells.append(f"{p50:.2f} / {p99:.2f} / {mx:.2f}")
        row[e] = {"p50_ms": p50, "p99_ms": p99, "max_ms": mx, "p99_passes": [q["p99_ms"] for q in qs],
                  "mean_rows": qs[0]["mean_rows"]}
    print(f"{n:<36}" + "".join(f"{c:>28}" for c in cells))
    summary["queries"].append(row)
print("SUMMARY " + json.dumps(summary))
EOF
fi
if [ "$KEEP" != 1 ] && [ -n "${DBS[sqlite]:-}" ]; then
    rm -f "${DBS[sqlite]}" "${DBS[sqlite]}-wal" "${DBS[sqlite]}-shm"
fi
