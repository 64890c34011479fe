# `watch`: start/stop within 1 s of hostapd's own timestamps, no session for a wrong
# passphrase, and the rejoin grace (one session inside it, two outside).

GRACE=4
start_ap wlan0 lab-sessions "correct horse battery"
start_watch --rejoin-grace $GRACE --poll 2
HLOG=/tmp/hostapd-wlan0.log
M1="$(mac_of wlan1)"; M2="$(mac_of wlan2)"; M3="$(mac_of wlan3)"
starts() { grep '"kind":"start"' /tmp/watch.jsonl | grep "\"mac\":\"$1\""; }
stops() { grep '"kind":"stop"' /tmp/watch.jsonl | grep "\"mac\":\"$1\""; }
nstarts() { starts "$1" | wc -l; }
nstops() { stops "$1" | wc -l; }

say "== 1. start/stop timing against hostapd -t"
start_client wlan1 lab-sessions "correct horse battery"
wait_for 20 client_connected wlan1 || fail "wlan1 did not connect"
wait_for 10 sh -c "grep '\"kind\":\"start\"' /tmp/watch.jsonl | grep -q $M1" || fail "no start for wlan1"
sleep 1
stop_client wlan1
wait_for $((GRACE + 10)) sh -c "grep '\"kind\":\"stop\"' /tmp/watch.jsonl | grep -q $M1" || fail "no stop for wlan1"
s="$(starts $M1 | head -n1)"; p="$(stops $M1 | head -n1)"
echo "$s"; echo "$p"
h_conn="$(hostapd_ms $HLOG AP-STA-CONNECTED $M1)"
h_disc="$(hostapd_ms $HLOG AP-STA-DISCONNECTED $M1)"
d_start=$(( $(json_num "$s" start_wall_ms) - h_conn ))
d_stop=$(( $(json_num "$p" stop_wall_ms) - h_disc ))
d_start_seen=$(( $(json_num "$s" at_wall_ms) - h_conn ))
echo "DELTA start_ms=$d_start (session start - AP-STA-CONNECTED; start is the association time)"
echo "DELTA start_emitted_ms=$d_start_seen (when watch printed it - AP-STA-CONNECTED)"
echo "DELTA stop_ms=$d_stop (session stop - AP-STA-DISCONNECTED)"
check "start within 1 s of AP-STA-CONNECTED ($d_start ms)" [ "$(abs $d_start)" -le 1000 ]
check "stop within 1 s of AP-STA-DISCONNECTED ($d_stop ms)" [ "$(abs $d_stop)" -le 1000 ]
check "stop reason left" [ "$(json_str "$p" reason)" = left ]
check "stop carries ifname/ssid" [ "$(json_str "$p" ssid)" = lab-sessions ]
check "same id" [ "$(json_str "$s" id)" = "$(json_str "$p" id)" ]

say "== 2. wrong passphrase"
start_client wlan3 lab-sessions "not the passphrase"
wait_for 20 grep -q "AP-STA-POSSIBLE-PSK-MISMATCH $M3" $HLOG || fail "no PSK mismatch logged"
sleep 3
stop_client wlan3
sleep 1
check "wrong passphrase: no session" [ "$(nstarts $M3)" = 0 ]

say "== 3. rejoin within the grace ($GRACE s)"
start_client wlan2 lab-sessions "correct horse battery"
wait_for 20 client_connected wlan2 || fail "wlan2 did not connect"
wait_for 10 sh -c "[ \$(grep '\"kind\":\"start\"' /tmp/watch.jsonl | grep -c $M2) -ge 1 ]"
stop_client wlan2
start_client wlan2 lab-sessions "correct horse battery"
wait_for 20 client_connected wlan2 || fail "wlan2 did not reconnect"
sleep $((GRACE + 2))
check "rejoin within grace: one start ($(nstarts $M2))" [ "$(nstarts $M2)" = 1 ]
check "rejoin within grace: no stop ($(nstops $M2))" [ "$(nstops $M2)" = 0 ]
check "hostapd saw two connections" [ "$(grep -c "AP-STA-CONNECTED $M2" $HLOG)" = 2 ]

say "== 4. rejoin outside the grace"
stop_client wlan2
sleep $((GRACE + 2))
start_client wlan2 lab-sessions "correct horse battery"
wait_for 20 client_connected wlan2 || fail "wlan2 did not reconnect"
wait_for 10 sh -c "[ \$(grep '\"kind\":\"start\"' /tmp/watch.jsonl | grep -c $M2) -ge 2 ]"
check "rejoin outside grace: two starts ($(nstarts $M2))" [ "$(nstarts $M2)" = 2 ]
check "rejoin outside grace: one stop ($(nstops $M2))" [ "$(nstops $M2)" = 1 ]
id1="$(starts $M2 | sed -n 1p)"; id2="$(starts $M2 | sed -n 2p)"
check "two different ids" [ "$(json_str "$id1" id)" != "$(json_str "$id2" id)" ]
cat /tmp/watch.jsonl
pass
