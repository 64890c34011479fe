#!/usr/bin/env bash
# The live demo: real Wi-Fi sessions without Wi-Fi hardware. One command starts mosquitto, the
# collector with its SQLite database (and its HTTP dashboard when this build has one), and the
# hwsim VM (tests/hwsim/lab.sh) with two access points (two agents, devices e2e-ap1 and
# e2e-ap2, group e2e-group) and six clients that keep joining, roaming and leaving, until you
# press Ctrl-C. It installs what it needs (tests/install-deps.sh) and cleans up after itself.
#
# usage: tests/e2e/demo.sh [--duration S] [--db PATH] [--http ADDR]
#   --duration S   stop after S seconds and check that sessions arrived (exit 1 if none);
#                  for CI. Default: run until interrupted.
#   --db PATH      the collector's database (default target/e2e/demo/wifisess.db, kept)
#   --http ADDR    the dashboard address (default 127.0.0.1:8080, when the collector has HTTP)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
DURATION=0
DEMO="$REPO/target/e2e/demo"
DB="$DEMO/wifisess.db"
HTTP=127.0.0.1:8080
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --db) DB="$2"; shift 2 ;;
        --http) HTTP="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
mkdir -p "$DEMO" "$(dirname "$DB")"
DB="$(cd "$(dirname "$DB")" && pwd)/$(basename "$DB")"

say "installing what the demo needs (once) and building the collector"
bash tests/install-deps.sh services vmlab >"$DEMO/install.log" 2>&1 || { cat "$DEMO/install.log"; exit 1; }
cargo build -q -p wifisess-collector
COLLECTOR="${CARGO_TARGET_DIR:-$REPO/target}/debug/wifisess-collector"

PIDS=()
LAB_PID=""
SHOW_PID=""
cleanup() {
    trap - INT TERM EXIT
    echo
    say "cleaning up"
    [ -n "$LAB_PID" ] && kill -- -"$LAB_PID" 2>/dev/null
    [ -n "$SHOW_PID" ] && kill -- -"$SHOW_PID" 2>/dev/null
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    say "the database stays: $COLLECTOR sessions --db $DB"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$DEMO/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
EOF
mosquitto -c "$DEMO/mosquitto.conf" >"$DEMO/mosquitto.log" 2>&1 &
PIDS+=($!)
sleep 0.5
say "mosquitto on 127.0.0.1:$PORT"

HTTP_ARGS=()
if "$COLLECTOR" run --help 2>&1 | grep -q 'NOT IMPLEMENTED'; then
    DASH="(this collector build has no HTTP server yet)"
else
    HTTP_ARGS=(--http "$HTTP")
    DASH="http://$HTTP/"
fi
(cd "$DEMO" && exec "$COLLECTOR" run --db "$DB" --broker "mqtt://127.0.0.1:$PORT" "${HTTP_ARGS[@]}" \
    >"$DEMO/collector.log" 2>&1) &
PIDS+=($!)
say "collector storing into $DB (log $DEMO/collector.log)"

# The VM: the e2e library, both APs and agents, then clients at random until the time is up.
{
    cat "$HERE/vm/lib.sh"
    echo "DEMO_SECS=$DURATION"
    cat <<'EOF'
boot_start
say "demo: two APs up (e2e-ap1 on channel 1, e2e-ap2 on channel 6), agents connected"
t_end=$(( $(cut -d. -f1 /proc/uptime) + DEMO_SECS ))
where() { cat /tmp/demo-$1 2>/dev/null; }
while [ "$DEMO_SECS" = 0 ] || [ "$(cut -d. -f1 /proc/uptime)" -lt "$t_end" ]; do
    k=$(( RANDOM % 6 + 2 )); ap=$(( RANDOM % 2 + 1 )); b=$B1; [ $ap = 2 ] && b=$B2
    cur="$(where $k)"
    if [ -z "$cur" ]; then
        say "demo: wlan$k ($(mac_of wlan$k)) joins AP $ap"
        client_up wlan$k $b; echo $ap >/tmp/demo-$k
    elif [ $(( RANDOM % 3 )) = 0 ] && [ "$cur" != "$ap" ]; then
        say "demo: wlan$k roams from AP $cur to AP $ap"
        # (not lib.sh's roam: its `fail` would power the VM off)
        wpa_cli -i wlan$k bssid 0 $b >/dev/null; wpa_cli -i wlan$k scan >/dev/null
        sleep 2; wpa_cli -i wlan$k roam $b >/dev/null; echo $ap >/tmp/demo-$k
    elif [ $(( RANDOM % 2 )) = 0 ]; then
        say "demo: wlan$k leaves AP $cur"
        client_down wlan$k; rm -f /tmp/demo-$k
    fi
    sleep $(( RANDOM % 4 + 2 ))
done
for k in 2 3 4 5 6 7; do [ -n "$(where $k)" ] && client_down wlan$k; done
sleep $((GRACE + 2))
boot_end
EOF
} >"$DEMO/demo-vm.sh"

say "booting the VM (about 20 s; console in $DEMO/console.log)"
rm -f "$DEMO/console.log"   # only this run's console is shown below
setsid "$REPO/tests/hwsim/lab.sh" --radios 8 --mqtt-port "$PORT" --log "$DEMO/console.log" \
    --timeout $(( DURATION > 0 ? DURATION + 300 : 7 * 86400 )) "$DEMO/demo-vm.sh" \
    >"$DEMO/lab.out" 2>&1 &
LAB_PID=$!

cat <<EOF

  Where to look while it runs:
    sessions:   $COLLECTOR sessions --db $DB
                $COLLECTOR sessions --open --db $DB
    JSON:       $COLLECTOR sessions --format json --db $DB
    presence:   $COLLECTOR presence --group e2e-group --from=-1h --to=2100-01-01T00:00:00Z --db $DB
    dashboard:  $DASH
    VM console: tail -f $DEMO/console.log
  Ctrl-C stops everything (the database is kept).

EOF
t0=$(date +%s)
# Show the clients' comings and goings as the VM reports them.
setsid bash -c "tail -n +1 -F '$DEMO/console.log' 2>/dev/null | grep --line-buffered 'demo:' \
    | sed -u 's/^\[[0-9.]*\] //'" &
SHOW_PID=$!
lab_rc=0
wait "$LAB_PID" || lab_rc=$?
LAB_PID=""
kill -- -"$SHOW_PID" 2>/dev/null || true
SHOW_PID=""
sleep 2
n="$("$COLLECTOR" sessions --format json --db "$DB" | grep -c '"id"' || true)"
say "VM finished after $(( $(date +%s) - t0 )) s; $n sessions in $DB"
"$COLLECTOR" sessions --db "$DB" | tail -n 15
if [ "$lab_rc" -ne 0 ] && [ "$lab_rc" -ne 130 ]; then
    say "FAIL: the VM lab ended with exit $lab_rc; its output:"
    tail -n 20 "$DEMO/lab.out" >&2
    exit 1
fi
# The database is kept between runs: count this run's sessions.
new="$("$COLLECTOR" sessions --format json --start-after="$(date -u -d "@$t0" +%Y-%m-%dT%H:%M:%SZ)" \
    --db "$DB" | grep -c '"id"' || true)"
if [ "$DURATION" -gt 0 ] && [ "$new" -lt 1 ]; then
    say "FAIL: no sessions arrived in this run"
    exit 1
fi
exit 0
