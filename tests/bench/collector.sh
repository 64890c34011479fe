#!/usr/bin/env bash
# The collector benchmark suite (docs/BENCHMARKS.md, "Collector"): ingest, queries, retention
# stall, 1 and 2 collectors on PostgreSQL (scale), one after the other (never in parallel:
# they measure the same 2 cores). With --smoke the queries also run on PostgreSQL.
#
# usage: tests/bench/collector.sh [--smoke]
#   --smoke   every benchmark at a tiny size (< 1 min in all): tests/run.sh's bench-smoke
#             stage; fails if a benchmark command breaks, asserts no timing
# Full sizes take long (the query benchmark alone loads 10 000 000 sessions): run them with
# `nice -n 10` on a quiet machine, or each script alone
# (tests/bench/{ingest,queries,retention,scale}.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

ARGS=()
case "${1:-}" in
    --smoke) ARGS=(--smoke) ;;
    "") ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) bdie "unknown argument $1 (see --help)" ;;
esac
build_bins
export BENCH_SKIP_BUILD=1
for b in ingest queries retention scale; do
    echo "== $b"
    bash "$REPO_ROOT/tests/bench/$b.sh" "${ARGS[@]}"
done
if [ "${ARGS[*]:-}" = --smoke ]; then
    echo "== queries on PostgreSQL"
    bash "$REPO_ROOT/tests/bench/queries.sh" --smoke --db postgres
fi
