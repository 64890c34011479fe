# Restarting hostapd is followed without restarting the agent: sessions stop with
# interface_down, rejoining clients get new sessions (new ids). Twice: a plain hostapd restart,
# then one where the interface is deleted and recreated (like `wifi reload`).

start_ap wlan0 lab-restart "correct horse battery"
start_watch --rejoin-grace 3 --poll 2
M1="$(mac_of wlan1)"; M2="$(mac_of wlan2)"
nkind() { grep -c "\"kind\":\"$1\"" /tmp/watch.jsonl; }
start_client wlan1 lab-restart "correct horse battery"
start_client wlan2 lab-restart "correct horse battery"
wait_for 20 sh -c '[ $(grep -c "\"kind\":\"start\"" /tmp/watch.jsonl) -ge 2 ]' || fail "no 2 starts"

round() { # ROUND N_STARTS_BEFORE
    local r="$1" before="$2"
    wait_for 30 sh -c "[ \$(grep -c '\"kind\":\"start\"' /tmp/watch.jsonl) -ge $((before + 2)) ]" \
        || fail "round $r: clients did not get new sessions"
    local stops
    stops="$(grep '"kind":"stop"' /tmp/watch.jsonl | tail -n 2)"
    echo "$stops"
    check "round $r: two stops" [ "$(echo "$stops" | grep -c '"kind":"stop"')" = 2 ]
    check "round $r: reason interface_down" \
        [ "$(echo "$stops" | grep -c '"reason":"interface_down"')" = 2 ]
    local olds news
    olds="$(grep '"kind":"start"' /tmp/watch.jsonl | sed -n "$((before - 1)),${before}p" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')"
    news="$(grep '"kind":"start"' /tmp/watch.jsonl | sed -n "$((before + 1)),$((before + 2))p" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')"
    check "round $r: new sessions carry the SSID" [ "$(grep '"kind":"start"' /tmp/watch.jsonl \
        | sed -n "$((before + 1)),$((before + 2))p" | grep -c '"ssid":"lab-restart","bssid"')" = 2 ]
    for id in $news; do
        check "round $r: new id $id" sh -c "! echo '$olds' | grep -q $id"
    done
}

say "== 1. hostapd restart (SIGTERM, start again)"
n=$(nkind start)
stop_ap wlan0
sleep 1
iw dev wlan0 info
start_ap wlan0 lab-restart "correct horse battery"
round 1 "$n"

say "== 2. interface deleted and recreated"
n=$(nkind start)
stop_ap wlan0
iw dev wlan0 del
iw phy phy0 interface add wlan0 type managed
sleep 1
start_ap wlan0 lab-restart "correct horse battery"
round 2 "$n"

say "kernel events the agent saw:"
grep '^event' /tmp/agent-watch.log
cat /tmp/watch.jsonl
pass
