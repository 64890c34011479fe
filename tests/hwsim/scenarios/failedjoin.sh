# Issue 20, `watch`: a client with the wrong passphrase associates, never authorizes, and is
# published as a failed join (its interface, SSID, BSSID, and its association time within
# 1 s of hostapd's own "associated" line); a client with the right one still gets a session.
# Hostnames from a dnsmasq-style lease file: a lease written after a client joined goes out
# on an update a few seconds later; a lease there before a client joins goes with its start.

start_ap wlan0 lab-failed "correct horse battery"
HLOG=/tmp/hostapd-wlan0.log
LEASES=/tmp/dhcp.leases
M1="$(mac_of wlan1)"; M2="$(mac_of wlan2)"; M3="$(mac_of wlan3)"; BSSID="$(mac_of wlan0)"
expiry=$(( $(date +%s) + 43200 ))
# dnsmasq's own lines: a DHCPv6 part and a client without a name are skipped.
{
    echo "$expiry 02:00:00:00:09:00 192.168.1.9 * *"
    echo "$expiry $M2 192.168.1.52 lab-early 01:$M2"
    echo "duid 00:01:00:01:2c:5f:0a:11:02:00:00:00:00:00"
} >"$LEASES"
start_watch --poll 2 --dhcp-leases "$LEASES" --log-level debug
lines() { grep "\"kind\":\"$1\"" /tmp/watch.jsonl | grep "\"mac\":\"$2\""; }

say "== 1. the right passphrase: a session"
start_client wlan1 lab-failed "correct horse battery"
wait_for 20 client_connected wlan1 || fail "wlan1 did not connect"
wait_for 10 sh -c "grep '\"kind\":\"start\"' /tmp/watch.jsonl | grep -q $M1" || fail "no start for wlan1"
s1="$(lines start "$M1" | head -n1)"
echo "$s1"
check "no hostname before its lease" sh -c "! echo '$s1' | grep -q hostname"

say "== 2. the wrong passphrase: a failed join, no session"
start_client wlan3 lab-failed "not the passphrase"
wait_for 20 grep -q "AP-STA-POSSIBLE-PSK-MISMATCH $M3" $HLOG || fail "no PSK mismatch logged"
wait_for 40 sh -c "grep '\"kind\":\"failed_join\"' /tmp/watch.jsonl | grep -q $M3" \
    || fail "no failed join for wlan3"
stop_client wlan3
f="$(lines failed_join "$M3" | head -n1)"
echo "$f"
grep "STA $M3 IEEE 802.11: associated" $HLOG | head -n1
h_assoc="$(grep "STA $M3 IEEE 802.11: associated" $HLOG | head -n1 \
    | sed -n 's/^\([0-9]*\)\.\([0-9][0-9][0-9]\).*/\1\2/p')"
[ -n "$h_assoc" ] || fail "no association of wlan3 in the hostapd log"
d_assoc=$(( $(json_num "$f" assoc_wall_ms) - h_assoc ))
given_up=$(( $(json_num "$f" at_wall_ms) - $(json_num "$f" assoc_wall_ms) ))
echo "DELTA failed_join_assoc_ms=$d_assoc (failed join's association - hostapd's 'associated')"
echo "DELTA failed_join_after_ms=$given_up (failed join published - its association)"
check "failed join: interface wlan0" [ "$(json_str "$f" ifname)" = wlan0 ]
check "failed join: SSID lab-failed" [ "$(json_str "$f" ssid)" = lab-failed ]
check "failed join: BSSID of wlan0" [ "$(json_str "$f" bssid)" = "$BSSID" ]
check "failed join: association within 1 s of hostapd's ($d_assoc ms)" [ "$(abs $d_assoc)" -le 1000 ]
check "failed join: given up after it associated, within 31 s ($given_up ms)" \
    sh -c "[ $given_up -ge 0 ] && [ $given_up -le 31000 ]"
check "wrong passphrase: no session" [ "$(lines start "$M3" | wc -l)" = 0 ]
check "right passphrase: no failed join" [ "$(lines failed_join "$M1" | wc -l)" = 0 ]

say "== 3. a lease written after the join: the next update carries the hostname"
echo "$expiry $M1 192.168.1.51 lab-late 01:$M1" >>"$LEASES"
t_lease=$(date +%s)
wait_for 20 sh -c "grep '\"kind\":\"update\"' /tmp/watch.jsonl | grep $M1 | grep -q '\"hostname\":\"lab-late\"'" \
    || fail "no update with wlan1's hostname"
u="$(lines update "$M1" | grep hostname | head -n1)"
echo "$u"
echo "DELTA hostname_update_s=$(( $(json_num "$u" at_wall_ms) / 1000 - t_lease )) (update - lease written)"
check "hostname update: same session" [ "$(json_str "$u" id)" = "$(json_str "$s1" id)" ]
check "hostname update: within 10 s of the lease" \
    [ $(( $(json_num "$u" at_wall_ms) / 1000 - t_lease )) -le 10 ]

say "== 4. a lease there before the join: the start carries the hostname"
start_client wlan2 lab-failed "correct horse battery"
wait_for 20 client_connected wlan2 || fail "wlan2 did not connect"
wait_for 10 sh -c "grep '\"kind\":\"start\"' /tmp/watch.jsonl | grep -q $M2" || fail "no start for wlan2"
s2="$(lines start "$M2" | head -n1)"
echo "$s2"
check "start carries the hostname" [ "$(json_str "$s2" hostname)" = lab-early ]
sleep 6
check "no update repeats wlan2's name" [ "$(lines update "$M2" | grep -c hostname)" = 0 ]
check "one update carries wlan1's name" [ "$(lines update "$M1" | grep -c hostname)" = 1 ]
stop_client wlan1
stop_client wlan2
cat /tmp/watch.jsonl
pass
