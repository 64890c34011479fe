#!/usr/bin/env bash
# Measures the router build of wifisess-agent: the release profile (opt-level z, fat LTO,
# codegen-units 1, panic abort, strip), x86-64, with and without the `tls` feature.
# Results and history: docs/BENCHMARKS.md. Budget (SPEC §6): <= 700 KB without tls.
#
# usage: tests/bench/agent-size.sh [--check]     --check: exit 1 if over the budget
# environment: CARGO_TARGET_DIR (default target/agent-size, so the shared target/ is untouched)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/agent-size}"
BUDGET=$((700 * 1024))
bin="$CARGO_TARGET_DIR/release/wifisess-agent"

SIZE=0
measure() {   # measure LABEL CARGO-ARGS...: builds, prints one line, sets SIZE
    local label=$1; shift
    cargo build -q --release --locked -p wifisess-agent "$@"
    SIZE=$(stat -c %s "$bin")
    printf '%-12s %8d bytes  %6.1f KiB  %s\n' "$label" "$SIZE" \
        "$(echo "$SIZE / 1024" | bc -l)" "$(file -b "$bin" | grep -o 'not stripped\|stripped')"
}

echo "wifisess-agent release build, $(uname -m), $(rustc --version), $(date -u +%Y-%m-%d)"
measure "without tls"
plain=$SIZE
measure "with tls" --features tls
if [ "${1:-}" = --check ] && [ "$plain" -gt "$BUDGET" ]; then
    echo "over budget: $plain > $BUDGET bytes (700 KiB)" >&2
    exit 1
fi
