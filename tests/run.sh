#!/usr/bin/env bash
# THE test command of wifisess: installs what the tests need, then runs every suite.
#
#   tests/run.sh
#
# Stages (each prints "== stage NAME: ok in N s"; a failed stage does not stop the others,
# but makes the run fail):
#   deps        tests/install-deps.sh            (apt/pip installs; quick when all is there)
#   cargo-test  cargo test --workspace           (unit + integration tests, real mosquitto)
#   cargo-test-tls  cargo test -p wifisess-agent --features tls --test mqtt_tls
#                                                (the agent over TLS, CA made with openssl)
#   agent-size  tests/bench/agent-size.sh --check (the router build of the agent, x86-64
#                                                 without tls, within 700 KiB: SPEC §6)
#   golden      python3 wire/golden/crosscheck.py (golden CBOR vectors vs Python cbor2)
#   bench-smoke tests/bench/collector.sh --smoke (collector benchmarks at a tiny size, dev
#                                                 build: every command works; no timing checked)
#   cross       tests/cross/run.sh               (wire + agent on armv7, Rust 1.85)
#   mips        tests/mips/run.sh                (wire + agent on mipsel and mips, Rust 1.85 with
#                                                 -Zbuild-std; the static musl router binary run
#                                                 under qemu against mosquitto and a collector)
#   package     tests/package/run.sh             (OpenWrt package: Makefile, UCI, .ipk, procd init)
#   hwsim       tests/hwsim/run-scenarios.sh     (real nl80211 in a mac80211_hwsim VM)
#   e2e         tests/e2e/run.sh                 (agents in the VM -> mosquitto -> collector:
#                                                 9 scenarios, two VM boots, ~7-11 min)
#   fuzz        tests/fuzz/run.sh                (cargo-fuzz targets, FUZZ_SECONDS=30 each)
#   (a stage whose script is not there yet is reported as skipped)
#
# environment:
#   WIFISESS_SKIP_STAGES="cross hwsim"   stages to skip (for quick local runs; CI skips none)
#   WIFISESS_STAGE_TIMEOUT=3000          seconds after which one stage is stopped (hang guard)
#   WIFISESS_SKIP_INSTALL=1              do not install anything (machine set up by hand)
set -uo pipefail

LOG_TAG=tests
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

STAGE_TIMEOUT="${WIFISESS_STAGE_TIMEOUT:-3000}"
SKIP=" ${WIFISESS_SKIP_STAGES:-} "
LOGDIR="$REPO_ROOT/target/test-logs"
mkdir -p "$LOGDIR"
: > "$LOGDIR/cargo-results.txt"

skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# Each stage runs through run_logged (tests/lib/common.sh): output shown and kept in
# target/test-logs/STAGE.log, the time limit, and processes a test leaked are ended.

# cargo test for the whole workspace once (one build, reused by every test binary); its
# "test result:" lines are kept for the final count.
cargo_test() {
    local rc=0 locked=()
    [ "${CI:-}" = true ] && locked=(--locked)   # CI tests the committed Cargo.lock as it is
    run_logged "$LOGDIR/cargo-test.log" cargo test --workspace "${locked[@]}" --no-fail-fast || rc=$?
    grep -E '^test result:' "$LOGDIR/cargo-test.log" >>"$LOGDIR/cargo-results.txt" || true
    return "$rc"
}

# The TLS test (agent/tests/mqtt_tls.rs) needs the agent built with `--features tls`, which the
# workspace run above does not enable: the agent binary with rustls against a TLS mosquitto.
cargo_test_tls() {
    local rc=0 locked=()
    [ "${CI:-}" = true ] && locked=(--locked)
    run_logged "$LOGDIR/cargo-test-tls.log" \
        cargo test -p wifisess-agent --features tls "${locked[@]}" --test mqtt_tls || rc=$?
    grep -E '^test result:' "$LOGDIR/cargo-test-tls.log" >>"$LOGDIR/cargo-results.txt" || true
    return "$rc"
}

cross() {
    local rc=0
    run_logged "$LOGDIR/cross.log" bash tests/cross/run.sh || rc=$?
    grep -E '^test result:' "$LOGDIR/cross.log" >>"$LOGDIR/cargo-results.txt" || true
    return "$rc"
}

# MIPS: its build cache lives outside the repository ($WIFISESS_CACHE/mips-target), so a warm
# run on the same machine takes minutes; its `test result:` lines join the final count.
mips() {
    local rc=0
    run_logged "$LOGDIR/mips.log" bash tests/mips/run.sh || rc=$?
    grep -E '^test result:' "$LOGDIR/mips.log" >>"$LOGDIR/cargo-results.txt" || true
    return "$rc"
}

failed=0
stage() {   # stage NAME CMD...   (honours WIFISESS_SKIP_STAGES)
    local name="$1"; shift
    if skipped "$name"; then skip_stage "$name" "WIFISESS_SKIP_STAGES"; return 0; fi
    run_stage "$name" "$@" || failed=1
}

t_all=$(now_s)
stage deps run_logged "$LOGDIR/deps.log" bash tests/install-deps.sh
if [ "$failed" -ne 0 ]; then
    print_stage_summary "test summary"
    die "installing the test dependencies failed; not running the tests"
fi
stage cargo-test cargo_test
stage cargo-test-tls cargo_test_tls
# The size budget of the router build (docs/BENCHMARKS.md "Agent binary size"); builds in
# target/agent-size, so the shared target/ is untouched.
stage agent-size run_logged "$LOGDIR/agent-size.log" bash tests/bench/agent-size.sh --check
if [ -f wire/golden/crosscheck.py ]; then
    stage golden run_logged "$LOGDIR/golden.log" python3 wire/golden/crosscheck.py
else
    skip_stage golden "wire/golden/crosscheck.py not present yet"
fi
# The collector benchmarks (loadgen, broker, collector, SQLite baselines, bulk load, queries,
# retention) at smoke size on the dev build cargo-test just made: < 1 min, asserts no timing.
if [ -f tests/bench/collector.sh ]; then
    stage bench-smoke run_logged "$LOGDIR/bench-smoke.log" \
        env BENCH_PROFILE=debug bash tests/bench/collector.sh --smoke
else
    skip_stage bench-smoke "tests/bench/collector.sh not present yet"
fi
stage cross cross
stage mips mips
# Suites of their own, each a script that installs what it needs and exits non-zero on failure.
optional_stage() {   # optional_stage NAME SCRIPT
    if [ -f "$2" ]; then
        stage "$1" run_logged "$LOGDIR/$1.log" bash "$2"
    else
        skip_stage "$1" "$2 not present yet"
    fi
}
optional_stage package tests/package/run.sh
optional_stage hwsim tests/hwsim/run-scenarios.sh
optional_stage e2e tests/e2e/run.sh
# Fuzzing: every cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 30 here).
if [ -f tests/fuzz/run.sh ]; then
    stage fuzz run_logged "$LOGDIR/fuzz.log" env FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash tests/fuzz/run.sh
else
    skip_stage fuzz "tests/fuzz/run.sh not present yet"
fi

print_stage_summary "test summary (total $(( $(now_s) - t_all )) s)"
# cargo test's closing lines, all suites together (native and cross):
read -r passed failed_tests ignored suites < <(awk '
    { for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
        if ($(i+1) ~ /^ignored/) g += $i }; s++ }
    END { print p+0, f+0, g+0, s+0 }' "$LOGDIR/cargo-results.txt")
printf '   cargo test: %d suites, %d ignored (native + cross + mips)\n' "$suites" "$ignored"
if [ "$failed" -ne 0 ]; then
    echo "tests: FAILED (see the stages above)"
fi
printf 'tests: %d passed, %d failed\n' "$passed" "$failed_tests"
exit "$failed"
