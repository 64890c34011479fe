# Captures raw nl80211 datagrams for the parser fixtures (agent/tests/fixtures/netlink/) and
# prints them as "CAPTURE <set>/<file> <hex>" lines; tests/hwsim/capture-fixtures.sh writes
# them out. Checks nothing beyond the captures being there.

start_ap wlan0 lab-capture "correct horse battery"
mkdir -p /tmp/cap/interfaces /tmp/cap/stations /tmp/cap/events
WIFISESS_NL_CAPTURE=/tmp/cap/interfaces wifisess-agent stations --json

WIFISESS_NL_CAPTURE=/tmp/cap/events wifisess-agent watch --poll 600 \
    >/tmp/watch.jsonl 2>>/tmp/agent-watch.log &
echo $! >/tmp/watch.pid
sleep 2
start_client wlan1 lab-capture "correct horse battery"
start_client wlan2 lab-capture "correct horse battery"
wait_for 20 client_connected wlan1 || fail "wlan1 did not connect"
wait_for 20 client_connected wlan2 || fail "wlan2 did not connect"
wait_for 10 sh -c '[ "$(grep -c "\"kind\":\"start\"" /tmp/watch.jsonl)" -ge 2 ]'
sleep 1
WIFISESS_NL_CAPTURE=/tmp/cap/stations wifisess-agent stations --json
stop_client wlan1
sleep 2
stop_watch
cat /tmp/watch.jsonl
iw dev wlan0 station dump
# The interface going down and back (issue 18): what `watch` receives when the link goes
# down with a client on it (DEL_STATION, STOP_AP), and when hostapd disables the interface.
mkdir -p /tmp/cap/ifdown
WIFISESS_NL_CAPTURE=/tmp/cap/ifdown wifisess-agent watch --poll 600 \
    >/tmp/watch-ifdown.jsonl 2>>/tmp/agent-watch.log &
echo $! >/tmp/watch.pid
wait_for 20 client_connected wlan2 || fail "wlan2 not connected"
wait_for 10 sh -c '[ "$(grep -c "\"kind\":\"start\"" /tmp/watch-ifdown.jsonl)" -ge 1 ]'
ip link set wlan0 down
wait_for 10 grep -q '"kind":"stop"' /tmp/watch-ifdown.jsonl || fail "no stop at link down"
ip link set wlan0 up
wait_for 30 sh -c '[ "$(grep -c "\"kind\":\"start\"" /tmp/watch-ifdown.jsonl)" -ge 2 ]' \
    || fail "wlan2 did not come back"
hostapd_cli -i wlan0 disable
wait_for 10 sh -c '[ "$(grep -c "\"kind\":\"stop\"" /tmp/watch-ifdown.jsonl)" -ge 2 ]' \
    || fail "no stop at hostapd disable"
stop_watch
cat /tmp/watch-ifdown.jsonl
# Keep only the events there (the dumps and probes are in the sets above).
wait_for 10 sh -c "! kill -0 $(cat /tmp/watch.pid) 2>/dev/null" || fail "watch did not exit"
for f in /tmp/cap/ifdown/*.bin; do
    case "$f" in *-event.bin) ;; *) rm -f "$f" ;; esac
done

# Keep the events, the first dumps and two single-station answers (the probes repeat).
ls /tmp/cap/events/*-NL80211_CMD_GET_STATION.bin | sed 1,2d | xargs rm -f
ls /tmp/cap/events/*-NL80211_CMD_GET_STATION_dump.bin | sed 1,2d | xargs rm -f
ls /tmp/cap/events/*-NL80211_CMD_GET_INTERFACE.bin | sed 1,2d | xargs rm -f
for f in /tmp/cap/*/*.bin; do
    rel="${f#/tmp/cap/}"
    echo "CAPTURE $rel $(od -An -tx1 -v "$f" | tr -d ' \n')"
done
check "captured events" [ -n "$(ls /tmp/cap/events/ | grep event)" ]
pass
