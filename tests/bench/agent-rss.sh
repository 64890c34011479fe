#!/usr/bin/env bash
# Resident memory of `wifisess-agent run` on real nl80211 (issues 4 and 10): boots the hwsim lab
# (tests/hwsim/lab.sh) with one WPA2 AP radio and N client radios, the agent publishing through
# the guest-forward to a mosquitto started here, and reads VmRSS / VmHWM from /proc/PID/status
# with no client, 2 clients and N clients connected (tests/bench/vm/agent-rss.sh).
# Results: docs/BENCHMARKS.md, "Agent footprint". Target (issue 10): <= 4 MiB resident.
#
# usage: tests/bench/agent-rss.sh [--clients N] [--profile release|debug|both]
#   --clients N   client radios (default 10; the VM gets N+1 mac80211_hwsim radios)
#   --profile P   which agent build goes into the VM (default both: release, then debug)
# The VM consoles are kept in target/bench/agent-rss-{release,debug}.log.
set -euo pipefail
LOG_TAG=agent-rss
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"

CLIENTS=10
PROFILES=(release debug)
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS="$2"; shift 2 ;;
        --profile) case "$2" in both) PROFILES=(release debug) ;; *) PROFILES=("$2") ;; esac; shift 2 ;;
        *) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ "$CLIENTS" -ge 2 ] || die "--clients must be at least 2"

bash tests/install-deps.sh services vmlab >&2

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wifisess-agent-rss.XXXXXX")"
chmod 755 "$WORK"
MOSQ_PID=""
SUB_PID=""
cleanup() {
    [ -z "$SUB_PID" ] || kill "$SUB_PID" 2>/dev/null || true
    [ -z "$MOSQ_PID" ] || kill "$MOSQ_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
MOSQ_PID=$!
for _ in $(seq 100); do nc -z 127.0.0.1 "$PORT" 2>/dev/null && break; sleep 0.1; done
nc -z 127.0.0.1 "$PORT" || die "mosquitto did not start on port $PORT"
# What reaches the broker: one line per publish (topic), to show the agent really published.
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'wifisess/v1/rss-ap/#' -F '%t' >>"$WORK/sub.txt" 2>/dev/null &
SUB_PID=$!

echo "wifisess-agent resident memory in the hwsim VM: $((CLIENTS + 1)) radios (1 AP + $CLIENTS clients)," \
     "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d)"
printf '%-8s %-26s %8s %9s %9s %9s %9s %9s %9s\n' build point stations VmRSS_kB VmHWM_kB RssAnon RssFile RssShmem VmData
rc=0
for profile in "${PROFILES[@]}"; do
    rel=()
    [ "$profile" = release ] && rel=(--release)
    before=$(grep -c '/events$' "$WORK/sub.txt" || true)
    console="$REPO_ROOT/target/bench/agent-rss-$profile.log"
    mkdir -p "$(dirname "$console")"
    # The router build: no devtools (the scenario needs only `run`), no tls.
    if ! HWSIM_AGENT_FEATURES="" bash tests/hwsim/lab.sh "${rel[@]}" --radios $((CLIENTS + 1)) --mqtt-port "$PORT" \
            --timeout 900 --log "$console" tests/bench/vm/agent-rss.sh >/dev/null; then
        log "$profile: the lab scenario failed; its console:"
        grep -E '^(not ok|SCENARIO|RSS |lab:)' "$console" >&2 || true
        rc=1
        continue
    fi
    batches=$(( $(grep -c '/events$' "$WORK/sub.txt" || true) - before ))
    grep '^RSS ' "$console" | while read -r _ point rest; do
        declare -A f=()
        for kv in $rest; do f[${kv%%=*}]=${kv#*=}; done
        printf '%-8s %-26s %8s %9s %9s %9s %9s %9s %9s\n' "$profile" "$point" "${f[stations]}" \
            "${f[VmRSS_kB]}" "${f[VmHWM_kB]}" "${f[RssAnon_kB]}" "${f[RssFile_kB]}" \
            "${f[RssShmem_kB]}" "${f[VmData_kB]}"
    done
    bin="target/hwsim/cargo/x86_64-unknown-linux-gnu/$profile/wifisess-agent"
    [ -n "${HWSIM_WORK:-}" ] && bin="$HWSIM_WORK/cargo/x86_64-unknown-linux-gnu/$profile/wifisess-agent"
    size=$(strip -o "$WORK/stripped" "$bin" && stat -c %s "$WORK/stripped")
    hwm=$(grep '^RSS ' "$console" | sed -n 's/.*VmHWM_kB=\([0-9]*\).*/\1/p' | sort -n | tail -n1)
    verdict="met"
    [ "$hwm" -le 4096 ] || verdict="MISSED"
    [ "$profile" = release ] || verdict="$verdict (the target is for the release build)"
    echo "         $profile: static binary $size bytes stripped; $batches event batches reached the" \
         "broker; peak VmHWM $hwm kB vs target 4096 kB: $verdict"
    [ "$batches" -gt 0 ] || { log "$profile: no event batch reached the broker"; rc=1; }
done
exit "$rc"
