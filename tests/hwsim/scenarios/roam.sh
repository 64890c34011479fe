# Issue 20, roams between two devices: the VM half of the roam scenario. The host half
# (tests/hwsim/host/roam.sh: mosquitto, a real wifisess-collector on SQLite, the checks) boots
# this with --mqtt-port; run it through tests/hwsim/run-scenarios.sh or that script, not
# lab.sh alone (it needs the broker).
#
# wlan0 = AP A (2.4 GHz, channel 1, device ap-a), wlan1 = AP B (5 GHz, channel 36, device
# ap-b; regulatory domain US, LAB §5: a band change with every roam): same SSID and
# passphrase, one agent each (its own device id, restricted to its interface), one
# organization, both publishing to the host's broker through guestfwd (10.0.2.100:1883).
#   wlan2 (c1): joins A, then `wpa_cli roam` to B: mac80211 sends A no deauthentication, so A
#               drops it when its inactivity poll goes unanswered (ap_max_inactivity): the
#               sessions overlap, a roam with a negative gap (as 802.11r / band steering give).
#   wlan3 (c2): joins A, disconnects (a real deauthentication), reconnects pinned to B: a
#               roam with a positive gap.
#   wlan4 (c3): joins A, leaves, rejoins A after REJOIN_IN s (past the agent's rejoin grace,
#               inside the collector's roam window: same AP, not a roam), leaves, rejoins A
#               after REJOIN_OUT s (past the roam window: not a roam either).
#   wlan5 (c4): joins A, leaves, joins B some 20 s later (past the roam window): two
#               sessions on two devices of one organization, and not a roam.
# At the end it prints "HOSTAPD NAME KEY=MS" lines (hostapd -t times, VM wall clock, the
# clock the agents stamp sessions with) for the host's DELTA lines.

SSID=lab-roam
PSK="correct horse battery"
GRACE=5          # agent rejoin_grace
INACT=10         # hostapd ap_max_inactivity
REJOIN_IN=6      # > GRACE, and the gap stays < the collector's roam_window (10 s)
REJOIN_OUT=13    # > the roam window
BA="$(mac_of wlan0)"; BB="$(mac_of wlan1)"
C1="$(mac_of wlan2)"; C2="$(mac_of wlan3)"; C3="$(mac_of wlan4)"; C4="$(mac_of wlan5)"
HA=/tmp/hostapd-wlan0.log; HB=/tmp/hostapd-wlan1.log

mkdir -p /etc/config
cat >/etc/config/wifisess <<EOC
config agent 'agent'
	option enabled '1'
	option organization 'lab-org'
	option group 'lab-roam'
	option broker 'mqtt://10.0.2.100:1883'
	option rejoin_grace '$GRACE'
	option log_level 'debug'
EOC

# agent DEV IF: an agent for one AP interface.
agent() {
    WIFISESS_SPOOL_FILE=/tmp/$1.spool wifisess-agent run --device-id "$1" --interface "$2" \
        >>/tmp/agent-$1.log 2>&1 &
}

# client IF BSSID: wpa_supplicant pinned to BSSID, scanning both channels.
client() {
    cat >/tmp/wpa-$1.conf <<EOC
ctrl_interface=/var/run/wpa_supplicant
network={
  ssid="$SSID"
  psk="$PSK"
  bssid=$2
  scan_freq=2412 5180
}
EOC
    wpa_supplicant -t -i "$1" -c /tmp/wpa-$1.conf >>/tmp/wpa-$1.log 2>&1 &
    echo $! >/tmp/wpa-$1.pid
}
on_bssid() { wpa_cli -i "$1" status | grep -q "^bssid=$2" && client_connected "$1"; }
disconnected() { ! wpa_cli -i "$1" status | grep -q '^wpa_state=COMPLETED'; }
# hcount LOG EVENT MAC: how many "EVENT MAC" lines LOG has.
hcount() { grep -c " $2 $3" "$1"; }

# 5 GHz: the regulatory database lab.sh puts in /lib/firmware, then a country that allows 36.
iw reg set US
wait_for 10 sh -c "iw reg get | grep -q 'country US'" || fail "regulatory domain US not applied (no regulatory.db?)"
start_ap wlan0 "$SSID" "$PSK" "ap_max_inactivity=$INACT"
LAB_AP_STARTS=0  # helpers.sh keeps one AP-ENABLED counter for all logs
start_ap wlan1 "$SSID" "$PSK" "hw_mode=a
channel=36
ap_max_inactivity=$INACT"
agent ap-a wlan0
agent ap-b wlan1
for d in ap-a ap-b; do
    wait_for 30 grep -q ': connected to ' /tmp/agent-$d.log || fail "agent $d did not reach the broker"
done

say "== clients join A, one at a time"
# (Three joining at once under TCG can time out a 4-way handshake: a real but unwanted flap.)
for i in wlan2 wlan3 wlan4 wlan5; do
    client $i "$BA"
    wait_for 30 on_bssid $i "$BA" || fail "$i did not join A"
done
sleep 2
# hostapd's events so far: the times printed at the end are those of the events after these.
n1="$(hcount $HA AP-STA-DISCONNECTED $C1)"; n2="$(hcount $HA AP-STA-DISCONNECTED $C2)"
n3d="$(hcount $HA AP-STA-DISCONNECTED $C3)"; n3c="$(hcount $HA AP-STA-CONNECTED $C3)"
n4="$(hcount $HA AP-STA-DISCONNECTED $C4)"

say "== c2 (wlan3): disconnect from A, reconnect pinned to B"
wpa_cli -i wlan3 disconnect >/dev/null
wait_for 10 sh -c "[ \$(grep -c 'AP-STA-DISCONNECTED $C2' $HA) -gt $n2 ]" || fail "A did not see wlan3 leave"
wpa_cli -i wlan3 bssid 0 "$BB" >/dev/null
wpa_cli -i wlan3 reconnect >/dev/null
wait_for 30 on_bssid wlan3 "$BB" || fail "wlan3 did not join B"

say "== c1 (wlan2): wpa_cli roam to B"
wpa_cli -i wlan2 bssid 0 "$BB" >/dev/null
wpa_cli -i wlan2 scan >/dev/null
wait_for 10 sh -c "wpa_cli -i wlan2 scan_results | grep -q $BB" || say "B not in wlan2's scan results yet"
wpa_cli -i wlan2 roam "$BB"
wait_for 30 on_bssid wlan2 "$BB" || fail "wlan2 did not roam to B"

say "== c3 (wlan4): leave A, rejoin A after ${REJOIN_IN} s, leave, rejoin after ${REJOIN_OUT} s; c4 (wlan5) leaves A"
wpa_cli -i wlan5 disconnect >/dev/null
wpa_cli -i wlan4 disconnect >/dev/null
wait_for 10 disconnected wlan4
sleep $REJOIN_IN
wpa_cli -i wlan4 reconnect >/dev/null
wait_for 30 on_bssid wlan4 "$BA" || fail "wlan4 did not rejoin A"
sleep 2
wpa_cli -i wlan4 disconnect >/dev/null
wait_for 10 disconnected wlan4
sleep $REJOIN_OUT
wpa_cli -i wlan4 reconnect >/dev/null
wait_for 30 on_bssid wlan4 "$BA" || fail "wlan4 did not rejoin A the second time"

say "== c4 (wlan5): joins B, long after it left A"
wpa_cli -i wlan5 bssid 0 "$BB" >/dev/null
wpa_cli -i wlan5 reconnect >/dev/null
wait_for 30 on_bssid wlan5 "$BB" || fail "wlan5 did not join B"

say "== A drops c1 when its inactivity poll goes unanswered"
wait_for $((INACT + 30)) sh -c "[ \$(grep -c 'AP-STA-DISCONNECTED $C1' $HA) -gt $n1 ]" || fail "A never dropped wlan2"
# The stops go out after the rejoin grace; a few seconds more for the broker.
sleep $((GRACE + 4))

# c1's removal from A (the DEL_STATION the agent stops the session at), ~1 s after A's
# AP-STA-DISCONNECTED for an inactivity drop.
c1_removed="$(grep "STA $C1 IEEE 802.11: deauthenticated due to inactivity" $HA | tail -n1 \
    | sed -n 's/^\([0-9]*\)\.\([0-9][0-9][0-9]\).*/\1\2/p')"
echo "HOSTAPD c1 mac=$C1 a_disc_ms=$(hostapd_ms $HA AP-STA-DISCONNECTED $C1 $((n1 + 1))) a_removed_ms=$c1_removed b_conn_ms=$(hostapd_ms $HB AP-STA-CONNECTED $C1)"
echo "HOSTAPD c2 mac=$C2 a_disc_ms=$(hostapd_ms $HA AP-STA-DISCONNECTED $C2 $((n2 + 1))) b_conn_ms=$(hostapd_ms $HB AP-STA-CONNECTED $C2)"
echo "HOSTAPD c3 mac=$C3 a_disc1_ms=$(hostapd_ms $HA AP-STA-DISCONNECTED $C3 $((n3d + 1))) a_conn2_ms=$(hostapd_ms $HA AP-STA-CONNECTED $C3 $((n3c + 1))) a_disc2_ms=$(hostapd_ms $HA AP-STA-DISCONNECTED $C3 $((n3d + 2))) a_conn3_ms=$(hostapd_ms $HA AP-STA-CONNECTED $C3 $((n3c + 2)))"
check "hostapd: c1 connected to B once" [ "$(hcount $HB AP-STA-CONNECTED $C1)" = 1 ]
check "hostapd: c2 connected to B once" [ "$(hcount $HB AP-STA-CONNECTED $C2)" = 1 ]
check "hostapd: c3 rejoined A twice ($n3c connections before)" [ "$(hcount $HA AP-STA-CONNECTED $C3)" = $((n3c + 2)) ]
echo "HOSTAPD c4 mac=$C4 a_disc_ms=$(hostapd_ms $HA AP-STA-DISCONNECTED $C4 $((n4 + 1))) b_conn_ms=$(hostapd_ms $HB AP-STA-CONNECTED $C4)"
check "hostapd: c4 connected to B once" [ "$(hcount $HB AP-STA-CONNECTED $C4)" = 1 ]
check "hostapd: c3 never on B" [ "$(hcount $HB AP-STA-CONNECTED $C3)" = 0 ]
grep -h -e AP-STA- -e 'deauthenticated due to inactivity' $HA $HB
for d in ap-a ap-b; do
    echo "----- agent $d"
    grep -v -e ': debug: publishing a batch' -e ': debug: puback ' /tmp/agent-$d.log | tail -n 60
done
pass
