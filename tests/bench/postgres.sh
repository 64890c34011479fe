#!/usr/bin/env bash
# PostgreSQL store benchmark (docs/BENCHMARKS.md, "PostgreSQL"): the collector's store path
# (writer: merge core + PostgreSQL store) against plain batched statements on the same schema
# (raw-postgres), and the SQLite store path on the same stream, in interleaved rounds, on a
# throwaway cluster with fsync=on started here.
#
# usage: tests/bench/postgres.sh [--events E] [--devices N] [--repeat K] [--group G]
# environment: BENCH_DIR (default target/bench), BENCH_SKIP_BUILD=1
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"

DEVICES=1000 CLIENTS=30 EVENTS=100000 RATE=20000 REPEAT=3 GROUP=2000
while [ $# -gt 0 ]; do
    case "$1" in
        --devices) DEVICES=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --group) GROUP=$2; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
W="$(bench_workdir postgres)"
trap 'pg_stop; bench_cleanup' EXIT
pg_start "$W/pg"
pg_createdb bench
URL="$(pg_url bench)"
STREAM=(--devices "$DEVICES" --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE")
machine_line
echo "stream: ${STREAM[*]}; group $GROUP; PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') fsync=on"
for r in $(seq 1 "$REPEAT"); do
    c0=$(pg_cpu_s)
    "$LG" store "${STREAM[@]}" --group "$GROUP" --db "$URL" | tee "$W/pg-store-$r.out"
    c1=$(pg_cpu_s)
    echo "  PostgreSQL CPU: $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}') s"
    "$LG" raw-postgres "${STREAM[@]}" --db "$URL" | tee "$W/pg-raw-$r.out"
    c2=$(pg_cpu_s)
    echo "  PostgreSQL CPU: $(awk -v a="$c1" -v b="$c2" 'BEGIN{printf "%.2f", b-a}') s"
    "$LG" store "${STREAM[@]}" --group "$GROUP" --db "$W/store.db" | tee "$W/lite-store-$r.out"
    rm -f "$W"/store.db*
done
eps() { grep -o '[0-9]* events/s' "$1" | awk '{print $1}'; }
for r in $(seq 1 "$REPEAT"); do
    s=$(eps "$W/pg-store-$r.out"); w=$(eps "$W/pg-raw-$r.out"); l=$(eps "$W/lite-store-$r.out")
    echo "round $r: PostgreSQL store $s ev/s, raw $w ev/s, store/raw $(awk -v a="$s" -v b="$w" 'BEGIN{printf "%.2f", a/b}'); SQLite store $l ev/s"
done
