#!/usr/bin/env bash
# Re-captures the netlink parser fixtures: runs scenarios/capture.sh in the lab and writes its
# "CAPTURE <set>/<file> <hex>" console lines to agent/tests/fixtures/netlink/<set>/<file>.
# usage: tests/hwsim/capture-fixtures.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$REPO/agent/tests/fixtures/netlink"
LOG="$REPO/target/hwsim/logs/capture.log"
"$HERE/lab.sh" --log "$LOG" "$HERE/scenarios/capture.sh" >/dev/null
rm -rf "$OUT"/interfaces "$OUT"/stations "$OUT"/events "$OUT"/ifdown
grep '^CAPTURE ' "$LOG" | while read -r _ rel hex; do
    mkdir -p "$OUT/$(dirname "$rel")"
    printf '%s' "$hex" | xxd -r -p >"$OUT/$rel"
done
grep -o 'lab: kernel [^,]*' "$LOG" | head -n1 | cut -d' ' -f3 >"$OUT/KERNEL"
echo "fixtures written to $OUT (kernel $(cat "$OUT/KERNEL"))"
