#!/usr/bin/env bash
# Cross tests: builds and runs the pure test suites of wifisess-wire and wifisess-agent with
# Debian's Rust 1.85 on armv7 (32-bit ARM routers) under qemu-user; s390x (64-bit big-endian)
# on request. MIPS has a stage of its own (tests/mips). See tests/cross/README.md for what runs
# and why.
#
# usage: tests/cross/run.sh [TARGET...]     TARGET: armv7 | s390x (default: armv7)
# needs: tests/install-deps.sh cross   (run by tests/run.sh)
set -euo pipefail

LOG_TAG=cross
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
. "$REPO_ROOT/tests/lib/mini-ws.sh"
cd "$REPO_ROOT"

CRATES=(wire agent)                       # crate folders tested here (must build with 1.85)
WS="$REPO_ROOT/target/cross-ws"           # the mini-workspace (see README: why)
STAGE_TIMEOUT="${WIFISESS_CROSS_TIMEOUT:-1800}"   # per cargo test run (hang guard, run_logged)

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(armv7)

# --- preflight ------------------------------------------------------------------------------
[ -x "$DEB_CARGO" ] && [ -x "$DEB_RUSTC" ] || die "Debian's Rust is missing: run tests/install-deps.sh cross"
log "$("$DEB_RUSTC" --version), $("$DEB_CARGO" --version)"

# --- no 64-bit atomics in the agent (MIPS32 has none) -----------------------------------------
# armv7 has 64-bit atomics, so building for it proves nothing here; check the source instead.
# wire is no_std + alloc without atomics of its own, so it is checked too.
if hits=$(grep -rnE '\bAtomic(U64|I64)\b|portable_atomic::Atomic(U|I)64' agent/src wire/src); then
    printf '%s\n' "$hits" >&2
    die "64-bit atomics found in agent/wire sources (MIPS32 has no 64-bit atomics; use AtomicU32, a Mutex, or keep the counter in one task)"
fi
log "no AtomicU64/AtomicI64 in agent/src, wire/src"

# --- the mini-workspace (tests/lib/mini-ws.sh; README: why) ----------------------------------
mini_ws_make "$WS" "${CRATES[@]}"

declare -A TRIPLE=([s390x]=s390x-unknown-linux-gnu [armv7]=armv7-unknown-linux-gnueabihf)
declare -A GCC=([s390x]=s390x-linux-gnu-gcc [armv7]=arm-linux-gnueabihf-gcc)
declare -A QEMU=([s390x]="qemu-s390x-static -L /usr/s390x-linux-gnu" [armv7]="qemu-arm-static -L /usr/arm-linux-gnueabihf")

skips=()
for sk in "${QEMU_SKIP_TESTS[@]}"; do skips+=(--skip "$sk"); done
[ "${#QEMU_SKIP_TESTS[@]}" -eq 0 ] || log "not run under qemu (timing; run natively in cargo-test): ${QEMU_SKIP_TESTS[*]}"

SUMMARY=()
overall=0
for t in "${targets[@]}"; do
    triple="${TRIPLE[$t]:-}"
    [ -n "$triple" ] || die "unknown target '$t' (known: ${!TRIPLE[*]})"
    [ -d "/usr/lib/rustlib/$triple/lib" ] || die "no Rust std for $triple: run tests/install-deps.sh cross"
    command -v "${GCC[$t]}" >/dev/null || die "${GCC[$t]} missing: run tests/install-deps.sh cross"
    command -v "${QEMU[$t]%% *}" >/dev/null || die "${QEMU[$t]%% *} missing: run tests/install-deps.sh cross"
    env_triple=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    t0=$(now_s)
    for c in "${CRATES[@]}"; do
        pkg="wifisess-$c"
        { read -r args; read -r host_only; } < <(mini_ws_test_args "$WS" "$pkg")
        logf="$REPO_ROOT/target/cross-$t-$c.log"
        log "$t: $pkg: cargo test --target $triple $args"
        log "$t: $pkg: host-only tests not run here: $host_only"
        rc=0
        (
            cd "$WS"
            unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER
            export RUSTC="$DEB_RUSTC"
            export PROPTEST_CASES="${WIFISESS_CROSS_PROPTEST_CASES:-32}"
            # Emulated debug code is very slow; opt-level 1 runs several times faster and keeps
            # debug assertions and overflow checks (which matter most on 32-bit).
            export CARGO_PROFILE_DEV_OPT_LEVEL="${WIFISESS_CROSS_OPT_LEVEL:-1}"
            export CARGO_TARGET_DIR="$REPO_ROOT/target/cross-$t"
            export "CARGO_TARGET_${env_triple}_LINKER=${GCC[$t]}"
            export "CARGO_TARGET_${env_triple}_RUNNER=${QEMU[$t]}"
            # shellcheck disable=SC2086
            run_logged "$logf" "$DEB_CARGO" test --target "$triple" -p "$pkg" $args --no-fail-fast \
                -- "${skips[@]}"
        ) || rc=$?
        read -r passed failed ignored suites < <(count_results "$logf")
        status=ok
        if [ "$rc" -ne 0 ]; then status="FAILED (exit $rc)"; overall=1; fi
        if [ "$suites" -eq 0 ] && [ "$rc" -eq 0 ]; then status="ok (no test binaries)"; fi
        SUMMARY+=("$(printf '%-6s %-18s %3d passed, %d failed, %d ignored in %d suites: %s' \
            "$t" "$pkg" "$passed" "$failed" "$ignored" "$suites" "$status")")
    done
    SUMMARY+=("$(printf '%-6s %-18s done in %d s' "$t" "" "$(( $(now_s) - t0 ))")")
done

mini_ws_check_lock "$WS" || overall=1

printf '\n== cross test summary (Debian %s, qemu-user)\n' "$("$DEB_RUSTC" --version | awk '{print $1, $2}')"
for l in "${SUMMARY[@]}"; do printf '   %s\n' "$l"; done
exit "$overall"
