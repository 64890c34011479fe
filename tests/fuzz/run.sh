#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, on the stable toolchain.
#
#   tests/fuzz/run.sh [TARGET...]        (default: every target)
#
# environment:
#   FUZZ_SECONDS=60          time per target (libFuzzer -max_total_time)
#   FUZZ_SANITIZER=address   address (default) or none (faster, finds panics only)
#   FUZZ_KEEP_CORPUS=1       keep fuzz/corpus/ between runs (default: yes; it is gitignored)
#
# cargo fuzz needs nightly-only rustc flags (-Zsanitizer, sancov); on the stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks them (docs/SECURITY.md, "Fuzzing"). Seeds are built from the
# golden wire vectors, the captured netlink datagrams and the UCI files in the repository.
# Prints one line per target with its executions; exits 1 if any target found a crash, and
# keeps the input in fuzz/artifacts/TARGET/ (reproduce: the binary named in the output, with
# the file as its argument).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUZZ="$ROOT/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
ALL_TARGETS=(wire_batch wire_status nl80211 uci_config collector_ingest collector_merge)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
LOGDIR="$ROOT/target/fuzz-logs"
mkdir -p "$LOGDIR"

say() { echo "fuzz: $*"; }

# cargo-fuzz itself, once per machine (idempotent).
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1

hex2bin() {   # hex2bin FILE.hex > FILE.bin (pure bash: no xxd on a fresh machine)
    local hex
    hex="$(tr -d ' \n\r\t' <"$1")"
    printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"
}

frame() {   # frame FLAGS FILE: one collector_ingest record [flags][len u16 BE][payload]
    local n
    n=$(stat -c %s "$2")
    printf "\\x$(printf %02x "$1")\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"
    cat "$2"
}

seeds() {   # seeds TARGET DIR: (re)writes the seed corpus of one target
    local t="$1" dir="$2" f n
    rm -rf "$dir"; mkdir -p "$dir"
    case "$t" in
        wire_batch)
            for f in "$ROOT"/wire/golden/batch_*.hex; do hex2bin "$f" >"$dir/$(basename "$f" .hex)"; done ;;
        wire_status)
            for f in "$ROOT"/wire/golden/status_*.hex; do hex2bin "$f" >"$dir/$(basename "$f" .hex)"; done ;;
        nl80211)
            n=0
            while IFS= read -r f; do
                cp "$f" "$dir/$(printf %03d $n)-$(basename "$f")"; n=$((n + 1))
            done < <(find "$ROOT/agent/tests/fixtures/netlink" -name '*.bin' | sort) ;;
        uci_config)
            cp "$ROOT/openwrt-package/files/wifisess.config" "$dir/openwrt-default"
            cp "$FUZZ"/seeds/uci_config/* "$dir/" ;;
        collector_ingest)
            local tmp; tmp="$(mktemp -d)"
            for f in "$ROOT"/wire/golden/*.hex; do hex2bin "$f" >"$tmp/$(basename "$f" .hex)"; done
            for f in "$tmp"/batch_*; do frame 0 "$f" >"$dir/$(basename "$f")"; done
            for f in "$tmp"/status_*; do frame 1 "$f" >"$dir/$(basename "$f")"; done
            { frame 1 "$tmp/status_online"; frame 4 "$tmp/batch_start"; frame 4 "$tmp/batch_update"
              frame 8 "$tmp/batch_stop"; frame 2 "$tmp/batch_sync"; frame 0 "$tmp/batch_sync"; } >"$dir/sequence"
            rm -rf "$tmp" ;;
        collector_merge)
            # Structured input: any bytes are a valid stream; a few fixed ones to start from.
            printf '\x00\x01\x00\x00\x10\x00\x00\x00\x20\x01\x00\x01\x00\x04\x00\x00\x03\x00\x08\xff' >"$dir/start-update-stop-sync"
            printf '\x1a\x05\x00\x00\x10\x00\x00\x04\x00\x20\x00\x00\x06\x00\x30\x00\x00\x02\x03\x00\x40\x00\x01' >"$dir/two-boots"
            # Regression (CI, 2026-11-22): an old boot's late first event makes another boot
            # the newest; that boot's sessions must reopen (collector/tests/merge_prop.rs).
            printf '\x00\x5f\x67\xfe\x00\x74\x61\x62\x6c\x65\x01\x00\x00\x00\x00\x00\x00\x00\x00\x10\xff' >"$dir/newest-boot-moves"
            # Regression (CI, 2026-11-23): session 5 repeated with another MAC reopens the
            # session it had superseded under its old MAC (merge_prop.rs, a_seq_repeated_...).
            printf '\x00\x00\x00\x08\x00\x00\x7a\x20\x08\x10\x08\x00\x00\x7a\x20\x08\x10\x00\x00\x00\x20\x81' >"$dir/mac-moves-open" ;;
    esac
}

say "building ${TARGETS[*]} (sanitizer $SANITIZER, $TRIPLE)"
build() {   # build [TARGET]: no target = every target in one cargo invocation
    ( cd "$FUZZ" && cargo fuzz build -O --sanitizer "$SANITIZER" "$@" ) >"$LOGDIR/build.log" 2>&1 \
        || { tail -n 40 "$LOGDIR/build.log"; say "build failed (log: $LOGDIR/build.log)"; exit 1; }
}
if [ "$#" -eq 0 ]; then build; else for t in "${TARGETS[@]}"; do build "$t"; done; fi

failed=()
total=0
for t in "${TARGETS[@]}"; do
    bin="$FUZZ/target/$TRIPLE/release/$t"
    corpus="$FUZZ/corpus/$t"
    seed="$FUZZ/target/seeds/$t"
    art="$FUZZ/artifacts/$t"
    mkdir -p "$corpus" "$art"
    seeds "$t" "$seed"
    log="$LOGDIR/$t.log"
    rc=0
    # New inputs go to the first directory (the corpus); the seeds are read only.
    "$bin" "$corpus" "$seed" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -rss_limit_mb=2048 -timeout=10 -max_len=65536 -artifact_prefix="$art/" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    execs="${execs:-0}"
    total=$((total + execs))
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        say "$t: CRASH after $execs executions (exit $rc); input kept in fuzz/artifacts/$t/:"
        grep -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -n 5 || true
        ls -1 "$art" | sed 's/^/fuzz:   /'
        say "reproduce: $bin fuzz/artifacts/$t/FILE   (log: $log)"
    else
        printf 'fuzz: %-17s %10s executions in %s s, coverage %s, corpus %s inputs\n' \
            "$t" "$execs" "$SECONDS_EACH" "${cov:-?}" "$(ls -1 "$corpus" | wc -l)"
    fi
done
say "total $total executions over ${#TARGETS[@]} targets"
if [ "${#failed[@]}" -gt 0 ]; then
    say "crashes in: ${failed[*]}"
    exit 1
fi
