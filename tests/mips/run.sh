#!/usr/bin/env bash
# MIPS stage: the router's real architectures, with Debian's Rust 1.85 and its standard library
# built from source (-Zbuild-std, shared/LAB.md §6), under qemu-user. See tests/mips/README.md.
#
#   tests/mips/run.sh [tests] [musl]     (default: both parts)
#
#   tests  wire + agent test suites on mipsel-unknown-linux-gnu (32-bit little-endian) and
#          mips-unknown-linux-gnu (32-bit big-endian, like mips_24kc): one cargo build of both
#          targets' test binaries, then each target's run; prints the counts per endianness.
#   musl   the router binary: static musl soft-float mipsel (release profile, linked by zig
#          through openwrt-package/zig-cc.sh), its stripped size, and under qemu-mipsel-static
#          `--version`, `check-config` on a UCI file and `run --synthetic` (the devtools build)
#          publishing to a mosquitto started here, with a host wifisess-collector storing the
#          session; everything started is stopped by pid.
#
# environment:
#   WIFISESS_MIPS_TARGET_DIR  cargo target dir of these builds (default $WIFISESS_CACHE/mips-target,
#                             outside the repository so std and dependencies survive a new
#                             clone; delete it for a cold run)
#   WIFISESS_MIPS_PROPTEST_CASES  proptest cases under emulation (default 32)
# needs: tests/install-deps.sh cross mips   (run by tests/run.sh)
set -euo pipefail

LOG_TAG=mips
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
. "$REPO_ROOT/tests/lib/mini-ws.sh"
cd "$REPO_ROOT"

CRATES=(wire agent)
WS="$REPO_ROOT/target/mips-ws"
TARGET_DIR="${WIFISESS_MIPS_TARGET_DIR:-$WIFISESS_CACHE/mips-target}"
LOGS="$REPO_ROOT/target/mips-logs"
STAGE_TIMEOUT="${WIFISESS_MIPS_TIMEOUT:-2400}"   # per cargo run (hang guard, run_logged)
ZIG_CC="$REPO_ROOT/openwrt-package/zig-cc.sh"

declare -A TRIPLE=([mipsel]=mipsel-unknown-linux-gnu [mips]=mips-unknown-linux-gnu)
declare -A ENDIAN=([mipsel]=little-endian [mips]=big-endian)
declare -A GCC=([mipsel]=mipsel-linux-gnu-gcc [mips]=mips-linux-gnu-gcc)
declare -A QEMU=([mipsel]="qemu-mipsel-static -L /usr/mipsel-linux-gnu" [mips]="qemu-mips-static -L /usr/mips-linux-gnu")
MUSL=mipsel-unknown-linux-musl

parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(tests musl)
for p in "${parts[@]}"; do
    case "$p" in tests|musl) ;; *) die "unknown part '$p' (known: tests musl)" ;; esac
done
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }

# --- preflight ------------------------------------------------------------------------------
need="run tests/install-deps.sh cross mips"
[ -x "$DEB_CARGO" ] && [ -x "$DEB_RUSTC" ] || die "Debian's Rust is missing: $need"
sysroot=$("$DEB_RUSTC" --print sysroot)
[ -f "$sysroot/lib/rustlib/src/rust/library/std/Cargo.toml" ] \
    || die "no std sources in $sysroot/lib/rustlib/src/rust (rust-web-src): $need"
for t in mipsel mips; do
    command -v "${GCC[$t]}" >/dev/null || die "${GCC[$t]} missing: $need"
    command -v "${QEMU[$t]%% *}" >/dev/null || die "${QEMU[$t]%% *} missing: $need"
done
if want musl; then
    python3 -m ziglang version >/dev/null 2>&1 || die "python3 -m ziglang does not run: $need"
fi
log "$("$DEB_RUSTC" --version), $("$DEB_CARGO" --version), target dir $TARGET_DIR"

mini_ws_make "$WS" "${CRATES[@]}"
mkdir -p "$LOGS" "$TARGET_DIR/bin"
# The cache is shared by every checkout on the machine (CI's clones, other worktrees), and
# cargo judges wire and agent by mtime: a checkout whose files are older than another's last
# build would take that build for its own. So the copies get a fresh mtime whenever their
# content differs from what a part was last built from ($TARGET_DIR/built-from.PART).
ws_sum=$(cd "$WS" && find "${CRATES[@]}" openwrt-package/files -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d ' ' -f 1)
for p in "${parts[@]}"; do
    if [ "$(cat "$TARGET_DIR/built-from.$p" 2>/dev/null)" != "$ws_sum" ]; then
        log "sources differ from the cached $p build: rebuilding wire and agent"
        find "${CRATES[@]/#/$WS/}" -type f -exec touch {} +
        break
    fi
done
built_from() { echo "$ws_sum" >"$TARGET_DIR/built-from.$1"; }   # built_from PART, after a good build
# Cargo's fingerprint includes the linker's path: the wrapper is used from the cache, not from
# this checkout, so a fresh clone (CI) does not rebuild std and every dependency for musl.
LINKER="$TARGET_DIR/bin/zig-cc.sh"
cmp -s "$ZIG_CC" "$LINKER" || install -m 0755 "$ZIG_CC" "$LINKER"

# Every cargo run here: Debian's 1.85 with build-std (RUSTC_BOOTSTRAP lets the stable compiler
# take -Z flags), no debuginfo (most of a cold build's time and disk otherwise), no incremental
# data (the target dir is a cache, not an edit loop).
mips_cargo() {   # mips_cargo LOGFILE CARGO-ARGS...
    local logf="$1"; shift
    (
        cd "$WS"
        unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_TARGET
        export RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$TARGET_DIR"
        export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_RELEASE_DEBUG=0
        # Emulated debug code is very slow; opt-level 1 keeps debug assertions and overflow
        # checks (as tests/cross does).
        export CARGO_PROFILE_DEV_OPT_LEVEL=1
        export PROPTEST_CASES="${WIFISESS_MIPS_PROPTEST_CASES:-32}"
        local t e
        for t in mipsel mips; do
            e=$(echo "${TRIPLE[$t]}" | tr 'a-z-' 'A-Z_')
            export "CARGO_TARGET_${e}_LINKER=${GCC[$t]}" "CARGO_TARGET_${e}_RUNNER=${QEMU[$t]}"
        done
        # Rust's mips*-linux-musl targets link dynamically by default (as OpenWrt's SDK does);
        # the stand-alone router binary is static.
        e=$(echo "$MUSL" | tr 'a-z-' 'A-Z_')
        export "CARGO_TARGET_${e}_LINKER=$LINKER" "CARGO_TARGET_${e}_RUSTFLAGS=-C target-feature=+crt-static"
        run_logged "$logf" nice -n 10 "$DEB_CARGO" "$@"
    )
}

SUMMARY=()
overall=0

# --- part 1: the test suites on both byte orders ----------------------------------------------
run_tests() {
    local sel=() pkgs=() args host_only c a t0 t1 rc
    for c in "${CRATES[@]}"; do
        { read -r args; read -r host_only; } < <(mini_ws_test_args "$WS" "wifisess-$c")
        pkgs+=(-p "wifisess-$c")
        # One selection for both packages (cargo applies it to each package that has such a
        # target; --lib and --bins may be given once only).
        for a in $args; do
            case "$a" in
                --lib|--bins) [[ " ${sel[*]} " == *" $a "* ]] || sel+=("$a") ;;
                *) sel+=("$a") ;;
            esac
        done
        log "wifisess-$c: $args (not under qemu: $host_only)"
    done
    sel=("${pkgs[@]}" "${sel[@]}")
    t0=$(now_s)
    log "building the test binaries for ${TRIPLE[mipsel]} and ${TRIPLE[mips]} (std from source)"
    rc=0
    mips_cargo "$LOGS/build-tests.log" test --no-run -Zbuild-std --timings \
        --target "${TRIPLE[mipsel]}" --target "${TRIPLE[mips]}" "${sel[@]}" || rc=$?
    SUMMARY+=("$(printf '%-28s %5d s' "build (both targets)" "$(( $(now_s) - t0 ))")")
    if [ "$rc" -ne 0 ]; then
        SUMMARY+=("build FAILED (exit $rc): $LOGS/build-tests.log")
        overall=1
        return 0
    fi
    built_from tests
    local t passed failed ignored suites status skips=() sk
    for sk in "${QEMU_SKIP_TESTS[@]}"; do skips+=(--skip "$sk"); done
    [ "${#QEMU_SKIP_TESTS[@]}" -eq 0 ] || log "not run under qemu (timing; run natively in cargo-test): ${QEMU_SKIP_TESTS[*]}"
    for t in mipsel mips; do
        t1=$(now_s)
        rc=0
        mips_cargo "$LOGS/test-$t.log" test -Zbuild-std --target "${TRIPLE[$t]}" "${sel[@]}" \
            --no-fail-fast -- "${skips[@]}" || rc=$?
        read -r passed failed ignored suites < <(count_results "$LOGS/test-$t.log")
        status=ok
        if [ "$rc" -ne 0 ]; then status="FAILED (exit $rc)"; overall=1; fi
        if [ "$suites" -eq 0 ]; then status="FAILED (no test ran)"; overall=1; fi
        SUMMARY+=("$(printf '%-28s %5d s  %d passed, %d failed, %d ignored in %d suites: %s' \
            "$t (${ENDIAN[$t]})" "$(( $(now_s) - t1 ))" "$passed" "$failed" "$ignored" "$suites" "$status")")
    done
}

# --- part 2: the router binary (static musl soft-float mipsel) ---------------------------------
MUSL_OUT="$REPO_ROOT/target/mips-musl"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_broker DIR: a mosquitto of this test on a free port (another one if the port was taken
# before it bound); sets BROKER_PORT, BROKER_PID. It logs subscriptions, so the test can wait
# for the collector's.
start_broker() {
    local dir=$1 try i
    for try in 1 2 3 4 5; do
        BROKER_PORT=$(free_port)
        printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type subscribe\n' \
            "$BROKER_PORT" >"$dir/mosquitto.conf"
        mosquitto -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
        BROKER_PID=$!
        for i in $(seq 50); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            if grep -q "Opening ipv4 listen socket on port $BROKER_PORT" "$dir/mosquitto.log"; then
                PIDS+=("$BROKER_PID")
                return 0
            fi
            sleep 0.1
        done
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        log "mosquitto did not come up on port $BROKER_PORT (try $try): $(tail -n 1 "$dir/mosquitto.log")"
    done
    return 1
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.2 s until it succeeds or time is up.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    log "timed out after $secs s waiting for $what"
    return 1
}

musl_checks=0
musl_fails=0
mcheck() {   # mcheck DESCRIPTION CMD...: one check of the router binary, counted
    local what=$1; shift
    musl_checks=$((musl_checks + 1))
    if "$@"; then log "ok: $what"; else log "FAIL: $what"; musl_fails=$((musl_fails + 1)); fi
}

run_musl() {
    local t0 rc=0 router dev
    mkdir -p "$MUSL_OUT"
    router="$MUSL_OUT/wifisess-agent"
    dev="$MUSL_OUT/wifisess-agent-devtools"
    t0=$(now_s)
    # The router build (SPEC §6: release profile, no devtools, no tls), then the same with
    # devtools for `run --synthetic` (only the agent crate and the LTO link are rebuilt).
    log "building the router binary for $MUSL (release, -Zbuild-std=std,panic_abort, linked by zig)"
    mips_cargo "$LOGS/build-musl.log" build -Zbuild-std=std,panic_abort --release \
        --target "$MUSL" -p wifisess-agent || rc=$?
    [ "$rc" -eq 0 ] && cp "$TARGET_DIR/$MUSL/release/wifisess-agent" "$router"
    [ "$rc" -eq 0 ] && { mips_cargo "$LOGS/build-musl-devtools.log" build -Zbuild-std=std,panic_abort \
        --release --target "$MUSL" -p wifisess-agent --features devtools || rc=$?; }
    [ "$rc" -eq 0 ] && cp "$TARGET_DIR/$MUSL/release/wifisess-agent" "$dev"
    SUMMARY+=("$(printf '%-28s %5d s' "build $MUSL" "$(( $(now_s) - t0 ))")")
    if [ "$rc" -ne 0 ]; then
        SUMMARY+=("musl build FAILED (exit $rc): $LOGS/build-musl*.log")
        overall=1
        return 0
    fi
    built_from musl

    # the host collector the run below publishes to (the cargo-test stage has mostly built it)
    log "building the host collector (cargo build -p wifisess-collector)"
    local locked=()
    [ "${CI:-}" = true ] && locked=(--locked)
    t0=$(now_s)
    COLLECTOR_BUILT=0
    nice -n 10 cargo build -q -p wifisess-collector "${locked[@]}" && COLLECTOR_BUILT=1
    SUMMARY+=("$(printf '%-28s %5d s' "build host collector" "$(( $(now_s) - t0 ))")")

    t0=$(now_s)
    mipsel-linux-gnu-strip -o "$router.stripped" "$router"
    MUSL_SIZE=$(stat -c %s "$router.stripped")
    local hdr abi work version
    hdr=$(LC_ALL=C readelf -h -l "$router")
    abi=$(LC_ALL=C readelf -A "$router")
    mcheck "ELF 32-bit little-endian MIPS" \
        bash -c 'grep -q "Machine: *MIPS R3000" <<<"$1" && grep -q "little endian" <<<"$1"' _ "$hdr"
    mcheck "static (no program interpreter)" bash -c '! grep -q INTERP <<<"$1"' _ "$hdr"
    mcheck "soft-float ABI, MIPS32r2 (readelf -A)" \
        bash -c 'grep -q "FP ABI: *Soft float" <<<"$1" && grep -q "ISA: *MIPS32r2" <<<"$1"' _ "$abi"
    mcheck "stripped size $MUSL_SIZE B within 1 MB (1048576 B)" [ "$MUSL_SIZE" -le 1048576 ]
    work=$(mktemp -d)
    version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
    qemu-mipsel-static "$router.stripped" --version >"$work/version.out" 2>&1 || true
    mcheck "--version under qemu-mipsel-static: $(head -n 1 "$work/version.out")" \
        grep -q "wifisess-agent $version" "$work/version.out"

    # check-config on a UCI file, as the init script's command reads it
    printf '%s\n' "config agent 'agent'" "	option enabled '1'" \
        "	option broker 'mqtt://127.0.0.1:1883'" "	option device_id 'mips-ap-1'" \
        "	option poll_interval '5'" "	list interface 'phy0-ap0'" >"$work/wifisess.uci"
    rc=0
    qemu-mipsel-static "$router.stripped" check-config --config "$work/wifisess.uci" >"$work/cc.out" 2>&1 || rc=$?
    mcheck "check-config --config UCI-FILE exits 0" [ "$rc" -eq 0 ]
    mcheck "check-config shows the UCI values (device_id mips-ap-1, poll_interval 5)" \
        bash -c 'grep -qE "^device_id +\"mips-ap-1\"" "$1" && grep -qE "^poll_interval +\"5\"" "$1"' _ "$work/cc.out"
    sed "s/option poll_interval '5'/option poll_interval '0'/" "$work/wifisess.uci" >"$work/bad.uci"
    rc=0
    qemu-mipsel-static "$router.stripped" check-config --config "$work/bad.uci" >"$work/bad.out" 2>&1 || rc=$?
    mcheck "check-config refuses poll_interval 0 with exit 2 ($(head -n 1 "$work/bad.out"))" [ "$rc" -eq 2 ]

    run_session "$dev" "$work"
    rm -rf "$work"
    SUMMARY+=("$(printf '%-28s %5d s  %d checks, %d failed; stripped %d B' "run $MUSL (qemu)" \
        "$(( $(now_s) - t0 ))" "$musl_checks" "$musl_fails" "$MUSL_SIZE")")
    [ "$musl_fails" -eq 0 ] || overall=1
}

# run_session AGENT WORK: the MIPS agent's `run --synthetic` publishes to a mosquitto of this
# test; the host collector stores what arrives; the agent's sessions must reach its database.
run_session() {
    local agent=$1 work=$2 coll="$REPO_ROOT/target/debug/wifisess-collector" rc coll_pid agent_pid
    [ "$COLLECTOR_BUILT" = 1 ] || { mcheck "the host collector builds" false; return 0; }
    start_broker "$work" || { mcheck "mosquitto starts" false; return 0; }
    WIFISESS_CLIENT_ID="mips-collector-$BROKER_PORT" "$coll" run --db "$work/sessions.db" \
        --broker "mqtt://127.0.0.1:$BROKER_PORT" --http off >"$work/collector.log" 2>&1 &
    coll_pid=$!
    PIDS+=("$coll_pid")
    mcheck "the collector subscribed" wait_for "the collector's subscription" 30 \
        grep -q "mips-collector-$BROKER_PORT 1 " "$work/mosquitto.log"
    sed "s|mqtt://127.0.0.1:1883|mqtt://127.0.0.1:$BROKER_PORT|" "$work/wifisess.uci" >"$work/run.uci"
    qemu-mipsel-static "$agent" run --config "$work/run.uci" --synthetic 3:100 >"$work/agent.log" 2>&1 &
    agent_pid=$!
    PIDS+=("$agent_pid")
    mcheck "3 sessions of device mips-ap-1 (MAC 02:5e:00:00:00:01 among them) reached the collector's database" \
        wait_for "the sessions in the collector's database" 60 stored_sessions "$coll" "$work"
    kill -0 "$agent_pid" 2>/dev/null || log "the agent had exited; its log: $(tail -n 5 "$work/agent.log")"
    kill "$agent_pid" 2>/dev/null || true
    rc=0
    wait "$agent_pid" 2>/dev/null || rc=$?
    mcheck "the MIPS agent exits 0 on SIGTERM (exit $rc)" [ "$rc" -eq 0 ]
    kill "$coll_pid" "$BROKER_PID" 2>/dev/null || true
    wait "$coll_pid" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    PIDS=()
    if [ "$musl_fails" -ne 0 ]; then
        log "agent log (tail):"; tail -n 15 "$work/agent.log" >&2 || true
        log "collector log (tail):"; tail -n 15 "$work/collector.log" >&2 || true
        log "sessions: $(head -c 600 "$work/sessions.json" 2>/dev/null)"
    fi
}

# stored_sessions COLLECTOR WORK: the database holds 3 sessions of mips-ap-1, one of them the
# synthetic source's first client.
stored_sessions() {
    "$1" sessions --db "$2/sessions.db" --format json >"$2/sessions.json" 2>/dev/null || return 1
    python3 - "$2/sessions.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [r for r in rows if r.get("device_id") == "mips-ap-1"]
sys.exit(0 if len(mine) >= 3 and any(r.get("mac") == "02:5e:00:00:00:01" for r in mine) else 1)
PY
}

t_all=$(now_s)
want tests && run_tests
want musl && run_musl
mini_ws_check_lock "$WS" || overall=1

printf '\n== mips summary (%s, -Zbuild-std, qemu-user; %d s in all)\n' \
    "$("$DEB_RUSTC" --version | awk '{print $1, $2}')" "$(( $(now_s) - t_all ))"
for l in "${SUMMARY[@]}"; do printf '   %s\n' "$l"; done
exit "$overall"
