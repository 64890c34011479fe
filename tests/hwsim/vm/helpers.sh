# Helpers for hwsim lab scenarios (busybox ash). Sourced before /scenario/run.sh.
#
# hwsim radios: wlan0 .. wlanN-1; wlanK has MAC 02:00:00:00:0K:00. By convention wlan0 is
# the AP and the others are clients. Logs live in /tmp (hostapd-IF.log with -t timestamps,
# wpa-IF.log, agent-*.log) and are printed when a scenario fails.

LAB_FAILS=0

say() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }

# fail MSG: the scenario fails now.
fail() { echo "SCENARIO FAIL: $*"; lab_dump_logs; echo "SCENARIO FAIL (exit 1)"; poweroff -f; exit 1; }

# check DESC CMD...: records one check ("ok - DESC" / "not ok - DESC").
check() {
    local desc="$1"; shift
    if "$@"; then echo "ok - $desc"; else echo "not ok - $desc"; LAB_FAILS=$((LAB_FAILS + 1)); fi
}

# pass: ends the scenario; passes only if no check failed.
pass() {
    [ "$LAB_FAILS" = 0 ] || fail "$LAB_FAILS check(s) failed"
    touch /tmp/.lab-passed
}

lab_dump_logs() {
    for f in /tmp/*.log /tmp/*.jsonl /tmp/*.txt; do
        [ -f "$f" ] || continue
        echo "----- $f"
        tail -n 200 "$f"
    done
    echo "-----"
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
    local secs="$1"; shift
    local n=$((secs * 10))
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# count_matches FILE PATTERN: number of lines of FILE matching the grep -E PATTERN.
count_matches() { grep -cE "$2" "$1" 2>/dev/null || true; }

# wait_lines SECONDS FILE PATTERN N: waits until FILE has at least N lines matching PATTERN.
wait_lines() {
    wait_for "$1" sh -c '[ "$(grep -cE "$2" "$1" 2>/dev/null)" -ge "$3" ]' _ "$2" "$3" "$4"
}

mac_of() { cat "/sys/class/net/$1/address"; }

# start_ap [IF] [SSID] [PASSPHRASE|open] [EXTRA hostapd.conf LINES]: hostapd -t, logs in
# /tmp/hostapd-IF.log; waits for AP-ENABLED.
start_ap() {
    local ifc="${1:-wlan0}" ssid="${2:-wifisess-lab}" psk="${3:-correct horse battery}"
    local conf="/tmp/hostapd-$ifc.conf"
    cat >"$conf" <<EOC
interface=$ifc
driver=nl80211
ctrl_interface=/var/run/hostapd
ssid=$ssid
hw_mode=g
channel=1
EOC
    if [ "$psk" != open ]; then
        cat >>"$conf" <<EOC
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=$psk
EOC
    fi
    [ -n "${4:-}" ] && printf '%s\n' "$4" >>"$conf"
    hostapd -t "$conf" >>"/tmp/hostapd-$ifc.log" 2>&1 &
    echo $! >"/tmp/hostapd-$ifc.pid"
    wait_for 20 sh -c "[ \$(grep -c AP-ENABLED /tmp/hostapd-$ifc.log) -gt ${LAB_AP_STARTS:-0} ]" \
        || fail "hostapd on $ifc did not come up"
    LAB_AP_STARTS=$(grep -c AP-ENABLED "/tmp/hostapd-$ifc.log")
    say "AP up on $ifc ($(mac_of "$ifc")) ssid $ssid"
}

# stop_ap [IF]: terminates hostapd (SIGTERM) and waits for it to exit.
stop_ap() {
    local ifc="${1:-wlan0}" pid
    pid="$(cat "/tmp/hostapd-$ifc.pid")"
    kill "$pid"
    wait_for 10 sh -c "! kill -0 $pid" || fail "hostapd on $ifc did not stop"
    say "AP stopped on $ifc"
}

# start_client IF [SSID] [PASSPHRASE|open]: wpa_supplicant -t in the background.
start_client() {
    local ifc="$1" ssid="${2:-wifisess-lab}" psk="${3:-correct horse battery}"
    local conf="/tmp/wpa-$ifc.conf"
    {
        echo "ctrl_interface=/var/run/wpa_supplicant"
        echo "network={"
        echo "  ssid=\"$ssid\""
        if [ "$psk" = open ]; then echo "  key_mgmt=NONE"; else echo "  psk=\"$psk\""; fi
        echo "  scan_freq=2412"
        echo "}"
    } >"$conf"
    wpa_supplicant -t -i "$ifc" -c "$conf" >>"/tmp/wpa-$ifc.log" 2>&1 &
    echo $! >"/tmp/wpa-$ifc.pid"
}

# client_connected IF: wpa_supplicant reports COMPLETED.
client_connected() { wpa_cli -i "$1" status 2>/dev/null | grep -q '^wpa_state=COMPLETED'; }

# stop_client IF: wpa_cli terminate, waits for exit.
stop_client() {
    local ifc="$1" pid
    pid="$(cat "/tmp/wpa-$ifc.pid")"
    wpa_cli -i "$ifc" terminate >/dev/null 2>&1 || kill "$pid"
    wait_for 10 sh -c "! kill -0 $pid" || kill -9 "$pid"
}

# start_watch [ARGS]: `wifisess-agent watch ARGS` into /tmp/watch.jsonl (stderr: agent-watch.log).
start_watch() {
    wifisess-agent watch "$@" >/tmp/watch.jsonl 2>>/tmp/agent-watch.log &
    echo $! >/tmp/watch.pid
    wait_for 10 grep -q '^interfaces:' /tmp/agent-watch.log || say "agent: no interfaces line yet"
}

stop_watch() { kill "$(cat /tmp/watch.pid)" 2>/dev/null; }

# json_num LINE KEY / json_str LINE KEY: a member of a one-line JSON object.
json_num() { echo "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9]*\).*/\1/p"; }
json_str() { echo "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }

# hostapd_ms LOG EVENT MAC [N]: wall-clock ms of the Nth (default 1st) "EVENT MAC" line of a
# hostapd -t log ("1700000000.123456: wlan0: AP-STA-CONNECTED 02:...").
hostapd_ms() {
    grep " $2 $3" "$1" | sed -n "${4:-1}p" | sed -n 's/^\([0-9]*\)\.\([0-9][0-9][0-9]\).*/\1\2/p'
}

# abs N
abs() { [ "$1" -lt 0 ] && echo $((-$1)) || echo "$1"; }
