# e2e VM library (busybox ash), sourced after tests/hwsim/vm/helpers.sh. The harness
# (tests/e2e/e2e.py) concatenates this file, the boot prologue and the scenario fragments into
# one lab scenario.
#
# Layout: wlan0 = AP 1 (channel 1, device e2e-ap1), wlan1 = AP 2 (channel 6, device e2e-ap2),
# same SSID; wlan2.. = clients. Each AP has its own agent restricted to its interface.
#
# Talking to the host: lines on the console starting with "E2E " are read by the harness as
# they appear (lab.sh's console is line-buffered):
#   E2E BEGIN NAME SECS.USECS / E2E END NAME SECS.USECS
#                                      scenario window, on the VM's clock (the host maps it
#                                      with the clock offset: the console can lag by seconds)
#   E2E HOST ACTION                    the host does ACTION now (broker-stop, broker-start,
#                                      collector-kill, collector-start)
#   E2E SNAPSHOT NAME [DEV/K..]        the host stores `sessions --format json` (see snapshot)
#   E2E CLOCK SECS.USECS               the VM's wall clock (host receive time - this = offset)
#   E2E CLOCKSET                       the VM's wall clock was just changed (new offset epoch)
#   E2E RSS DEVICE KB                  measured VmRSS of an agent
#   E2E POWEROFF / E2E DONE            end of the boot
#   HAPD apN LINE                      a line of hostapd -t's log of AP N
SSID=e2e-lab
PSK="correct horse battery"
B1=02:00:00:00:00:00
B2=02:00:00:00:01:00
GRACE=10
INACTIVITY=10

e2e() { echo "E2E $*"; }
vmclock() { adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf "%d.%06d", s, u}'; }
clockmark() { echo "E2E CLOCK $(vmclock)"; }
begin() { clockmark; e2e BEGIN "$1" "$(vmclock)"; say "== scenario $1"; }
end() { dump_hostapd; clockmark; e2e END "$1" "$(vmclock)"; }
host() { e2e HOST "$1"; sleep 0.5; }
# snapshot NAME [DEVICE/K...]: the host stores the sessions once each DEVICE has an open
# session of client wlanK (polling up to ~6 s); the VM waits for it.
snapshot() { e2e SNAPSHOT "$@"; sleep 7; }

# clock_loop: a clock mark every 2 s in the background (the host takes the minimum offset).
clock_loop() { (while :; do clockmark; sleep 2; done) & }

# dump_hostapd: prints the hostapd lines not printed yet, prefixed "HAPD apN ".
dump_hostapd() {
    local n f c done_
    for n in 1 2; do
        f=/tmp/hostapd-wlan$((n - 1)).log
        [ -f "$f" ] || continue
        done_="$(cat /tmp/.hapd-dumped-$n 2>/dev/null || echo 0)"
        c="$(wc -l <"$f")"
        [ "$c" -gt "$done_" ] && sed -n "$((done_ + 1)),${c}p" "$f" | sed "s/^/HAPD ap$n /"
        echo "$c" >/tmp/.hapd-dumped-$n
    done
}

# The agent configuration (UCI, as OpenWrt would write it); device id, interface and spool per
# agent come from flags and the environment.
write_agent_config() {
    mkdir -p /etc/config
    cat >/etc/config/wifisess <<EOC
config agent 'agent'
	option enabled '1'
	option organization 'e2e-org'
	option group 'e2e-group'
	option broker 'mqtt://10.0.2.100:1883'
	option rejoin_grace '$GRACE'
	option interim_interval '10'
	option poll_interval '10'
	option log_level 'debug'
EOC
}

# agent_start N: the agent of AP N (wlan N-1), device e2e-apN.
agent_start() {
    local n="$1"
    WIFISESS_NAME="AP $n" WIFISESS_SPOOL_FILE=/tmp/ap$n.spool \
        wifisess-agent run --device-id "e2e-ap$n" --interface "wlan$((n - 1))" \
        >>/tmp/agent-ap$n.log 2>&1 &
    echo $! >/tmp/agent-ap$n.pid
}
agent_pid() { cat /tmp/agent-ap$1.pid; }
agent_connects() { grep -c ': connected to ' /tmp/agent-ap$1.log 2>/dev/null || echo 0; }
# wait_connects N COUNT SECS: the agent of AP N has connected COUNT times.
wait_connects() {
    wait_for "$3" sh -c "[ \$(grep -c ': connected to ' /tmp/agent-ap$1.log) -ge $2 ]"
}
agent_kill9() { kill -9 "$(agent_pid "$1")"; }
agent_term() {
    local p; p="$(agent_pid "$1")"
    kill "$p"; wait_for 10 sh -c "! kill -0 $p" || say "agent $1 did not stop"
}

# client_up IF BSSID: wpa_supplicant on IF pinned to BSSID (both channels scanned).
client_up() {
    local ifc="$1" bssid="$2"
    cat >/tmp/wpa-$ifc.conf <<EOC
ctrl_interface=/var/run/wpa_supplicant
network={
  ssid="$SSID"
  psk="$PSK"
  bssid=$bssid
  scan_freq=2412 2437
}
EOC
    wpa_supplicant -t -i "$ifc" -c /tmp/wpa-$ifc.conf >>/tmp/wpa-$ifc.log 2>&1 &
    echo $! >/tmp/wpa-$ifc.pid
}
# wait_up SECS IF...: every IF is connected.
wait_up() {
    local secs="$1" i; shift
    for i in "$@"; do wait_for "$secs" client_connected "$i" || fail "$i did not connect"; done
}
client_down() { stop_client "$1"; }
# flap IF: a quick leave and rejoin of the same AP (wpa_cli disconnect, reconnect) — faster
# than restarting wpa_supplicant, so the rejoin stays inside the grace even on a loaded host.
flap() {
    wpa_cli -i "$1" disconnect >/dev/null
    wait_for 5 sh -c "! wpa_cli -i $1 status | grep -q '^wpa_state=COMPLETED'"
    wpa_cli -i "$1" reconnect >/dev/null
    wait_up 20 "$1"
}
# agent_logs: the agents' logs on the console (debug level: the kernel's station events,
# probes and the tracker's events; without the per-batch publish/puback lines).
agent_logs() {
    for n in 1 2; do
        echo "----- agent $n"
        grep -v -e ': debug: publishing a batch' -e ': debug: puback ' /tmp/agent-ap$n.log | tail -n 600
    done
}
# roam IF BSSID: a scan, then wpa_cli roam to BSSID (the network is re-pinned to it first).
roam() {
    local ifc="$1" bssid="$2"
    wpa_cli -i "$ifc" bssid 0 "$bssid" >/dev/null
    wpa_cli -i "$ifc" scan >/dev/null
    wait_for 10 sh -c "wpa_cli -i $ifc scan_results | grep -q $bssid" || say "roam: $bssid not in scan results"
    wpa_cli -i "$ifc" roam "$bssid"
    wait_for 15 sh -c "wpa_cli -i $ifc status | grep -q '^bssid=$bssid'" || fail "$ifc did not roam to $bssid"
    wait_up 15 "$ifc"
}
rss() { echo "E2E RSS e2e-ap$1 $(awk '/VmRSS/{print $2}' /proc/$(agent_pid "$1")/status)"; }

# boot_start: both APs, the agent configuration, both agents, the clock marks.
boot_start() {
    clock_loop
    write_agent_config
    # ap_max_inactivity: a client that roamed away without a word (mac80211 sends no deauth to
    # the old AP) is polled and dropped after ~10 s instead of hostapd's default 300 s.
    start_ap wlan0 "$SSID" "$PSK" "ap_max_inactivity=$INACTIVITY"
    LAB_AP_STARTS=0  # helpers.sh counts AP-ENABLED per log, but keeps one counter
    start_ap wlan1 "$SSID" "$PSK" "channel=6
ap_max_inactivity=$INACTIVITY"
    agent_start 1
    agent_start 2
    wait_connects 1 1 30 || fail "agent 1 did not connect"
    wait_connects 2 1 30 || fail "agent 2 did not connect"
    sleep 1
}

# boot_end: agent logs, then "E2E DONE" and a normal end of the lab scenario.
boot_end() {
    dump_hostapd
    agent_logs
    e2e DONE
    pass
}
