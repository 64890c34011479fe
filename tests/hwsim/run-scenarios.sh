#!/usr/bin/env bash
# Runs every scenario of the hwsim lab (tests/hwsim/scenarios/*.sh, or the ones named) and
# prints one line per scenario with its result and time. Exit 1 if any failed. A scenario
# with a host half in tests/hwsim/host/ (roam: mosquitto and the collector) runs through it.
# usage: tests/hwsim/run-scenarios.sh [SCENARIO.sh...]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOGS="$HERE/../../target/hwsim/logs"
if [ $# -gt 0 ]; then list=("$@"); else list=("$HERE"/scenarios/*.sh); fi
results=()
failed=0
for s in "${list[@]}"; do
    name="$(basename "$s" .sh)"
    t0=$(date +%s)
    # A scenario with a host half (tests/hwsim/host/NAME.sh: a broker, a collector, checks on
    # the host) is run through it; it boots the VM itself.
    if [ -x "$HERE/host/$name.sh" ]; then run=("$HERE/host/$name.sh"); else run=("$HERE/lab.sh" "$s"); fi
    if "${run[@]}" >/dev/null; then r=PASS; else r=FAIL; failed=1; fi
    line="$(printf '%-10s %-4s %4d s  (console: target/hwsim/logs/%s.log)' "$name" "$r" $(( $(date +%s) - t0 )) "$name")"
    echo "hwsim: $line"
    results+=("$line")
    # The measured start/stop deltas against hostapd, where a scenario prints them.
    grep -h '^DELTA' "$LOGS/$name.log" 2>/dev/null | sed 's/^/    /'
    [ "$r" = PASS ] || grep -hE '^(not ok|SCENARIO FAIL)' "$LOGS/$name.log" 2>/dev/null | sed 's/^/    /'
done
echo "== hwsim scenarios"
printf '   %s\n' "${results[@]}"
exit "$failed"
