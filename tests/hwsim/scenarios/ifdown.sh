# Interfaces going down (issue 18): the sessions of an AP interface stop at once with reason
# interface_down, at the time the interface went down (not with `left` after the rejoin
# grace), and clients that come back when the interface is up again get new sessions.
# Four ways down and up again:
#   1. ip link set wlan0 down / up      (the kernel stops the AP: NL80211_CMD_STOP_AP)
#   2. hostapd_cli disable / enable     (hostapd stops the AP: a `wifi down` of one interface)
#   3. hostapd killed (SIGTERM) / started again
#   4. the interface deleted while hostapd runs (a radio removed) / recreated
# The rejoin grace is 60 s: a stop that waited for it would come far too late.

GRACE=60
start_ap wlan0 lab-ifdown "correct horse battery"
start_watch --rejoin-grace $GRACE --poll 3 --log-level debug
M1="$(mac_of wlan1)"; M2="$(mac_of wlan2)"
nkind() { grep -c "\"kind\":\"$1\"" /tmp/watch.jsonl; }
up_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
start_client wlan1 lab-ifdown "correct horse battery"
start_client wlan2 lab-ifdown "correct horse battery"
wait_for 30 sh -c '[ $(grep -c "\"kind\":\"start\"" /tmp/watch.jsonl) -ge 2 ]' || fail "no 2 starts"

# round NAME DOWN-CMD UP-CMD: both sessions stop with interface_down within 1 s of DOWN-CMD
# (stop time against /proc/uptime around it), at once; after UP-CMD both clients are back
# with new sessions.
round() {
    local name="$1" down="$2" up="$3"
    local starts_before stops_before t0 t1 stops s
    starts_before=$(nkind start); stops_before=$(nkind stop)
    say "== $name: $down"
    t0=$(up_ms)
    eval "$down"
    t1=$(up_ms)
    wait_for 10 sh -c "[ \$(grep -c '\"kind\":\"stop\"' /tmp/watch.jsonl) -ge $((stops_before + 2)) ]" \
        || fail "$name: no two stops within 10 s (rejoin grace $GRACE s)"
    stops="$(grep '"kind":"stop"' /tmp/watch.jsonl | sed -n "$((stops_before + 1)),$((stops_before + 2))p")"
    echo "$stops"
    check "$name: reason interface_down" \
        [ "$(echo "$stops" | grep -c '"reason":"interface_down"')" = 2 ]
    for mac in "$M1" "$M2"; do
        s="$(echo "$stops" | grep "\"mac\":\"$mac\"")"
        local at
        at="$(json_num "$s" stop_uptime_ms)"
        echo "DELTA $name $mac stop_ms=$((at - t0)) (stop - uptime before '$down'; the command took $((t1 - t0)) ms)"
        check "$name: $mac stopped at the event ($at in $((t0 - 100))..$((t1 + 1000)))" \
            [ "$at" -ge $((t0 - 100)) -a "$at" -le $((t1 + 1000)) ]
    done
    say "== $name: $up"
    eval "$up"
    wait_for 60 sh -c "[ \$(grep -c '\"kind\":\"start\"' /tmp/watch.jsonl) -ge $((starts_before + 2)) ]" \
        || fail "$name: the clients did not come back"
    local olds news
    olds="$(grep '"kind":"start"' /tmp/watch.jsonl | sed -n "1,${starts_before}p" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')"
    news="$(grep '"kind":"start"' /tmp/watch.jsonl | sed -n "$((starts_before + 1)),$((starts_before + 2))p" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')"
    for id in $news; do
        check "$name: new session $id" sh -c "! echo '$olds' | grep -q $id"
    done
}

# hostapd again on wlan0 (its AP-ENABLED count taken afresh: `enable` adds lines too).
restart_ap() {
    LAB_AP_STARTS=$(grep -c AP-ENABLED /tmp/hostapd-wlan0.log)
    start_ap wlan0 lab-ifdown "correct horse battery"
}
# Ends hostapd if it still runs (it may have exited by itself).
end_hostapd() {
    local pid
    pid="$(cat /tmp/hostapd-wlan0.pid)"
    kill "$pid" 2>/dev/null
    wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "hostapd did not exit"
}

round "link down" "ip link set wlan0 down" "ip link set wlan0 up"
round "hostapd disable" "hostapd_cli -i wlan0 disable" "hostapd_cli -i wlan0 enable"
round "hostapd killed" "end_hostapd" "restart_ap"
round "interface deleted" "iw dev wlan0 del" \
    "end_hostapd; iw phy phy0 interface add wlan0 type managed; restart_ap"

say "kernel events the agent saw:"
grep -E 'NL80211_CMD_|DEL_STATION| is down ' /tmp/agent-watch.log
cat /tmp/watch.jsonl
pass
