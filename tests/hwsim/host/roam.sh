#!/usr/bin/env bash
# Issue 20, a real roam between two devices: the host half of tests/hwsim/scenarios/roam.sh.
# Starts mosquitto on a free port and a real wifisess-collector (SQLite in a temp dir, the
# default roam_window of 10 s), boots the VM (tests/hwsim/lab.sh --mqtt-port) whose two agents
# (ap-a, ap-b) publish to it, then checks what the collector stored and derived against
# hostapd's -t timestamps printed by the VM.
#
# usage: tests/hwsim/host/roam.sh      (normally through tests/hwsim/run-scenarios.sh)
# env:   HWSIM_COLLECTOR=PATH  the collector binary (default: target/debug/wifisess-collector,
#                              built here with cargo when missing or stale)
# The VM's console and then these checks go to target/hwsim/logs/roam.log (run-scenarios.sh
# shows its DELTA lines). Exit 0 when the VM scenario and every check here passed.
#
# The roams are read as an operator reads them, with `wifisess-collector roams` (its rows show
# only roams between devices of one organization, with their bands and the band and SSID
# change flags); sessions and devices straight from the SQLite file with sqlite3.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SCENARIO="$HERE/../scenarios/roam.sh"
LOG="$REPO/target/hwsim/logs/roam.log"
WINDOW_MS=10000   # the collector's default roam_window
GAP_SLACK_MS=1000 # collector gap vs hostapd's, as the other scenarios' 1 s: a session starts
                  # at the association (before the 4-way handshake and AP-STA-CONNECTED), and
                  # an inactivity drop stops it when hostapd removes the station (c1: compared
                  # with that removal, ~1 s after AP-STA-DISCONNECTED)

say() { printf 'roam-host: %s\n' "$*" >&2; }
FAILS=0
out() { printf '%s\n' "$*" | tee -a "$LOG"; }
# all CMD... -- CMD...: every command (separated by --) succeeds.
all() {
    local cmd=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then "${cmd[@]}" || return 1; cmd=(); else cmd+=("$1"); fi
        shift
    done
    "${cmd[@]}"
}
check() {
    local desc="$1"; shift
    if "$@"; then out "ok - $desc"; else out "not ok - $desc"; FAILS=$((FAILS + 1)); fi
}

COLLECTOR="${HWSIM_COLLECTOR:-}"
if [ -z "$COLLECTOR" ]; then
    say "building wifisess-collector"
    (cd "$REPO" && cargo build -q -p wifisess-collector >&2) || { say "collector build failed"; exit 1; }
    COLLECTOR="${CARGO_TARGET_DIR:-$REPO/target}/debug/wifisess-collector"
fi
[ -x "$COLLECTOR" ] || { say "no collector at $COLLECTOR"; exit 1; }
command -v mosquitto >/dev/null && command -v sqlite3 >/dev/null \
    || { say "needs mosquitto and sqlite3 (tests/install-deps.sh services)"; exit 1; }

WORK="$(mktemp -d /tmp/wifisess-roamhw.XXXXXX)"
DB="$WORK/wifisess.db"
BROKER_PID=""; COLL_PID=""
cleanup() {
    [ -n "$COLL_PID" ] && kill "$COLL_PID" 2>/dev/null && wait "$COLL_PID" 2>/dev/null
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
(cd "$WORK" && exec "$COLLECTOR" run --db "$DB" --broker "mqtt://127.0.0.1:$PORT" --http off \
    >"$WORK/collector.log" 2>&1) &
COLL_PID=$!
for _ in $(seq 100); do [ -s "$DB" ] && break; sleep 0.1; done
say "mosquitto on 127.0.0.1:$PORT, collector $COLLECTOR on $DB"

t0=$(date +%s)
"$REPO/tests/hwsim/lab.sh" --radios 6 --mqtt-port "$PORT" --timeout 400 --log "$LOG" "$SCENARIO"
vm_rc=$?
say "VM done (lab exit $vm_rc) after $(( $(date +%s) - t0 )) s"
out "== host checks (collector: $COLLECTOR)"
[ "$vm_rc" = 0 ] || out "not ok - the VM scenario passed"

q() { sqlite3 -batch -noheader -separator ' ' "$DB" "$@"; }
# hostapd KEY NAME: a value of the VM's "HOSTAPD NAME ..." line.
hostapd() { sed -n "s/^HOSTAPD $2 .*\b$1=\([0-9a-f:]*\).*/\1/p" "$LOG" | head -n1; }
# hv KEY NAME: the same, 0 when missing (for arithmetic; the checks then fail).
hv() { local v; v="$(hostapd "$1" "$2")"; echo "${v:-0}"; }
# roams_of MAC: one line per roam of the client, oldest first, from the collector's CLI:
# "from_device to_device gap_ms at from_ssid to_ssid from_band to_band band_changed ssid_changed"
roams_of() {
    "$COLLECTOR" roams --db "$DB" --mac "$1" --format json | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
for r in sorted(rows, key=lambda r: r["at"]):
    print(r["from_device"], r["to_device"], r["gap_ms"], r["at"], r["from_ssid"] or "-",
          r["to_ssid"] or "-", r["from_band"] or "?", r["to_band"] or "?",
          str(r["band_changed"]).lower(), str(r["ssid_changed"]).lower())'
}

C1="$(hostapd mac c1)"; C2="$(hostapd mac c2)"; C3="$(hostapd mac c3)"; C4="$(hostapd mac c4)"
# The checks run whenever the VM got as far as printing hostapd's times (a failed VM check
# still fails the scenario above).
if [ -n "$C1" ] && [ -n "$C2" ] && [ -n "$C3" ] && [ -n "$C4" ]; then
    # The derive step runs every 2 s; wait until the roams are there (or 20 s).
    for _ in $(seq 40); do
        [ "$(q "SELECT count(*) FROM roams WHERE mac IN ('$C1','$C2')")" -ge 2 ] && break
        sleep 0.5
    done
    sleep 3  # one more derive step: a roam that should not be there has had its chance
    out "-- sessions (device ifname mac start_ms stop_ms reason freq)"
    q "SELECT device_id, ifname, mac, start_ms, ifnull(stop_ms,'open'), ifnull(stop_reason,'-'),
              freq_mhz FROM sessions ORDER BY mac, start_ms" | tee -a "$LOG"
    out "-- wifisess-collector roams"
    "$COLLECTOR" roams --db "$DB" 2>&1 | tee -a "$LOG"
    out "-- wifisess-collector roams --pairs"
    "$COLLECTOR" roams --db "$DB" --pairs 2>&1 | tee -a "$LOG"
    out "-- devices (id organization)"
    q "SELECT id, ifnull(organization,'-') FROM devices ORDER BY id" | tee -a "$LOG"

    for c in c1 c2; do
        eval m=\$${c^^}
        what=$([ $c = c1 ] && echo "wpa_cli roam (overlap)" || echo "disconnect + reconnect to B")
        closed_a=$(q "SELECT count(*) FROM sessions WHERE device_id='ap-a' AND mac='$m' AND stop_ms IS NOT NULL")
        open_a=$(q "SELECT count(*) FROM sessions WHERE device_id='ap-a' AND mac='$m' AND stop_ms IS NULL")
        open_b=$(q "SELECT count(*) FROM sessions WHERE device_id='ap-b' AND mac='$m' AND stop_ms IS NULL")
        all_b=$(q "SELECT count(*) FROM sessions WHERE device_id='ap-b' AND mac='$m'")
        check "$c ($what): one closed session on ap-a, none open ($closed_a/$open_a)" \
            [ "$closed_a/$open_a" = 1/0 ]
        check "$c: one session on ap-b, open ($all_b/$open_b)" [ "$all_b/$open_b" = 1/1 ]
        r="$(roams_of "$m")"
        check "$c: exactly one roam ($(echo "$r" | grep -c .))" [ "$(echo "$r" | grep -c .)" = 1 ]
        read -r from to gap _at fssid tssid fband tband bchg schg <<<"$(echo "$r" | head -n1)"
        check "$c: roam from ap-a to ap-b ($from -> $to)" [ "$from/$to" = ap-a/ap-b ]
        h_disc="$(hostapd a_disc_ms $c)"; h_conn="$(hostapd b_conn_ms $c)"
        [ $c = c1 ] && h_disc="$(hostapd a_removed_ms $c)"
        if [ -n "$gap" ] && [ -n "$h_disc" ] && [ -n "$h_conn" ]; then
            h_gap=$(( h_conn - h_disc ))
            d=$(( gap - h_gap ))
            if [ $c = c1 ]; then
                hdesc="AP-STA-CONNECTED on B - its removal from A after the inactivity poll: $h_gap ms; - AP-STA-DISCONNECTED on A: $(( h_conn - $(hv a_disc_ms c1) )) ms"
            else
                hdesc="AP-STA-CONNECTED on B - AP-STA-DISCONNECTED on A: $h_gap ms"
            fi
            out "DELTA roam_${c}_gap_ms=$gap (the collector's, $what; hostapd: $hdesc; difference $d ms)"
            check "$c: gap within ${GAP_SLACK_MS} ms of hostapd's ($gap vs $h_gap)" \
                [ "${d#-}" -le "$GAP_SLACK_MS" ]
            if [ $c = c1 ]; then
                check "c1: overlapping sessions, negative gap ($gap)" [ "$gap" -lt 0 ]
            else
                check "c2: a real disconnect first, gap positive and within the window ($gap)" \
                    all [ "$gap" -gt 0 ] -- [ "$gap" -le "$WINDOW_MS" ]
            fi
        else
            check "$c: a gap and hostapd's times (gap '$gap', hostapd '$h_disc' '$h_conn')" false
        fi
        check "$c: same SSID, no SSID change ($fssid -> $tssid, ssid_changed $schg)" \
            all [ "$fssid" = lab-roam ] -- [ "$tssid" = lab-roam ] -- [ "$schg" = false ]
        freqs=$(q "SELECT group_concat(freq_mhz, '/') FROM (SELECT freq_mhz FROM sessions WHERE mac='$m' ORDER BY start_ms)")
        check "$c: channel 1 -> 36 ($freqs MHz), a band change 2.4 -> 5 GHz ($fband -> $tband, band_changed $bchg)" \
            all [ "$freqs" = 2412/5180 ] -- [ "$fband/$tband/$bchg" = 2.4/5/true ]
    done

    # c3 left A and rejoined A twice: once inside the roam window (the agent made two
    # sessions: past its 5 s rejoin grace), once outside it. Neither is a roam.
    n3=$(q "SELECT count(*) FROM sessions WHERE mac='$C3' AND device_id='ap-a'")
    o3=$(q "SELECT count(*) FROM sessions WHERE mac='$C3' AND stop_ms IS NULL")
    check "c3: three sessions on ap-a, the last one open ($n3, open $o3)" [ "$n3/$o3" = 3/1 ]
    g_in=$(( $(hv a_conn2_ms c3) - $(hv a_disc1_ms c3) ))
    g_out=$(( $(hv a_conn3_ms c3) - $(hv a_disc2_ms c3) ))
    out "DELTA rejoin_c3_gaps_ms=$g_in,$g_out (hostapd: same-AP rejoins, inside and outside the ${WINDOW_MS} ms window)"
    check "c3: the first rejoin inside the window ($g_in ms), the second outside ($g_out ms)" \
        all [ "$g_in" -lt "$WINDOW_MS" ] -- [ "$g_out" -gt "$WINDOW_MS" ]
    check "c3: rejoining the same AP is no roam ($(roams_of "$C3" | grep -c .) roams)" \
        [ "$(roams_of "$C3" | grep -c .)" = 0 ]
    # c4 left A and joined B past the window: a session on each device, no roam.
    s4="$(q "SELECT count(*), count(stop_ms) FROM sessions WHERE mac='$C4' AND device_id='ap-a'")/$(q "SELECT count(*), count(stop_ms) FROM sessions WHERE mac='$C4' AND device_id='ap-b'")"
    check "c4: one closed session on ap-a, one open on ap-b ($s4)" [ "$s4" = "1 1/1 0" ]
    g4=$(( $(hv b_conn_ms c4) - $(hv a_disc_ms c4) ))
    out "DELTA nonroam_c4_gap_ms=$g4 (hostapd: AP-STA-CONNECTED on B - AP-STA-DISCONNECTED on A, past the window)"
    check "c4: joined B past the window ($g4 ms)" [ "$g4" -gt "$WINDOW_MS" ]
    check "c4: A then B past the window is no roam ($(roams_of "$C4" | grep -c .) roams)" \
        [ "$(roams_of "$C4" | grep -c .)" = 0 ]
    check "both devices in one organization" \
        [ "$(q "SELECT group_concat(ifnull(organization,'-'), ',') FROM (SELECT organization FROM devices WHERE id IN ('ap-a','ap-b') ORDER BY id)")" = lab-org,lab-org ]
else
    out "not ok - the VM printed no HOSTAPD lines: nothing to check"
    FAILS=$((FAILS + 1))
fi
tail -n 20 "$WORK/collector.log" | sed 's/^/collector: /' >>"$LOG"
if [ "$vm_rc" = 0 ] && [ "$FAILS" = 0 ]; then
    out "HOST PASS"
    exit 0
fi
out "SCENARIO FAIL: $FAILS host check(s) failed"
exit 1
