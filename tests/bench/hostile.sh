#!/usr/bin/env bash
# The collector under hostile load (issue 19; docs/BENCHMARKS.md "Hostile load"): runs the
# end-to-end tests of collector/tests/hostile_load.rs against the optimised collector and
# prints what they measure (SSE delivery p50/p99 at 300 organization-scoped streams, threads
# and RSS with 100 CSV clients that stop reading, slowloris, the kill -9 backlog's
# redelivered/original ratio), then tests/bench/redelivery.sh with a large backlog.
#
# usage: tests/bench/hostile.sh [--events E]     (redelivery backlog, default 1 000 000)
# environment: BENCH_COLLECTOR=/path/to/wifisess-collector measures another build (e.g. the
#   one before issue 19, with BENCH_NO_LIMITS=1) with the same tests: they then fail on what
#   they pin, and print their figures first; BENCH_SKIP_BUILD=1, BENCH_DIR as for the other
#   benchmarks; WIFISESS_BENCH_SSE_CHANGES / WIFISESS_BENCH_SSE_PACE_MS (default 200 changes
#   20 ms apart) for a faster stream of changes in the SSE test.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-collector.sh"

EVENTS=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --events) EVENTS=$2; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) bdie "unknown argument $1 (see --help)" ;;
    esac
    shift
done
build_bins
machine_line
W="$(bench_workdir hostile)"
# The tests (their clients built as usual) against the optimised collector, or another build:
# one from before issue 19 refuses the tests' [limits] table, so it is left out for it
# (BENCH_NO_LIMITS=1) and that build's own defaults are measured.
TEST_ENV=(WIFISESS_TEST_COLLECTOR="$COLL")
[ "${BENCH_NO_LIMITS:-0}" = 1 ] && TEST_ENV+=(WIFISESS_TEST_NO_LIMITS=1)
echo "collector: $COLL"
# The tests' own assertions may fail on another build; the figures are printed before.
env "${TEST_ENV[@]}" nice -n 5 cargo test -q -p wifisess-collector \
    --test hostile_load -- --nocapture --test-threads 1 >"$W/tests.out" 2>&1 || true
grep -oE '(scoped SSE|idle CSV|slowloris|kill -9 backlog).*|panicked at.*|test result.*' \
    "$W/tests.out" || true
grep -A3 'panicked at' "$W/tests.out" | grep -vE 'panicked at|^--' | cut -c1-300 || true
BENCH_SKIP_BUILD=1 "$(dirname "${BASH_SOURCE[0]}")/redelivery.sh" --events "$EVENTS"
