#!/usr/bin/env bash
# Query benchmark (docs/BENCHMARKS.md, "Collector"): bulk-loads a database of N sessions with
# the collector's schema (wifisess-loadgen bulk-load: 10 organizations, 100 groups, 10 000
# devices, 200 000 client MACs, 90 days, 30 open sessions per device), then runs the
# collector's own query functions RUNS times each (wifisess-loadgen query-bench) and prints
# p50/p99/max, on a read-only connection opened as the CLI and the HTTP API open theirs (one
# read side). The database is deleted afterwards (--keep keeps it in target/bench/).
#
# usage: tests/bench/queries.sh [--smoke] [--sessions N] [--runs R] [--keep] [--reuse]
#   --smoke   20 000 sessions, 100 devices, 20 runs: checks that every step works
#   --reuse   query an existing target/bench/queries-N.db instead of loading it again
# environment: BENCH_DIR, BENCH_SKIP_BUILD=1
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

SESSIONS=10000000 RUNS=200 KEEP=0 REUSE=0 SHAPE=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SESSIONS=20000 RUNS=20 SHAPE=(--devices 100 --macs 2000 --groups 10 --orgs 2) ;;
        --sessions) SESSIONS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --keep) KEEP=1 ;;
        --reuse) REUSE=1 KEEP=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
DB="$BENCH_DIR/queries-$SESSIONS.db"
machine_line
if [ "$REUSE" = 1 ] && [ -e "$DB" ]; then
    echo "reusing $DB"
else
    "$LG" bulk-load --sessions "$SESSIONS" "${SHAPE[@]}" --db "$DB"
fi
"$LG" query-bench "${SHAPE[@]}" --db "$DB" --runs "$RUNS"
[ "$KEEP" = 1 ] || rm -f "$DB" "$DB-wal" "$DB-shm"
