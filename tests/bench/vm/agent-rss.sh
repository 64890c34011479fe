# agent-rss (hwsim lab scenario, run by tests/bench/agent-rss.sh): VmRSS and VmHWM of
# `wifisess-agent run` (publishing to the host's mosquitto through the guest-forward) with no
# client, two clients, and every other radio connected as a client (wlan0 is the WPA2 AP,
# wlan1..wlanN-1 are clients). Prints one "RSS LABEL stations=K VmRSS_kB=.. VmHWM_kB=.. .." line
# per point; the host script turns them into a table. The binary lives in the initramfs (tmpfs),
# so its mapped code counts as RssShmem, not RssFile.

SSID=lab-rss
PSK="correct horse battery"
NCLIENTS=$(( $(ls -d /sys/class/net/wlan* | wc -l) - 1 ))
start_ap wlan0 "$SSID" "$PSK"
mkdir -p /etc/config
cat >/etc/config/wifisess <<EOC
config agent 'agent'
	option device_id 'rss-ap'
	option broker 'mqtt://10.0.2.100:1883'
	option poll_interval '10'
	option interim_interval '10'
	option spool_file '/tmp/rss.spool'
	option log_level 'info'
EOC
wifisess-agent run --interface wlan0 >>/tmp/agent-rss.log 2>&1 &
PID=$!
wait_for 60 grep -q ': connected to ' /tmp/agent-rss.log || fail "the agent did not connect to the host broker"

stations() { iw dev wlan0 station dump | grep -c '^Station'; }
# point LABEL: one RSS line for the agent now.
point() {
    kill -0 "$PID" || fail "the agent exited"
    awk -v l="$1" -v k="$(stations)" '
        /^VmRSS/ {r=$2} /^VmHWM/ {h=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} /^RssShmem/ {m=$2}
        /^VmData/ {d=$2} /^Threads/ {t=$2}
        END {printf "RSS %s stations=%d VmRSS_kB=%d VmHWM_kB=%d RssAnon_kB=%d RssFile_kB=%d RssShmem_kB=%d VmData_kB=%d threads=%d\n", l, k, r, h, a, f, m, d, t}' \
        "/proc/$PID/status"
}
# settle: long enough for a station dump (poll_interval 10 s) and an interim round.
settle() { sleep 12; }

settle
point idle

start_client wlan1 "$SSID" "$PSK"
start_client wlan2 "$SSID" "$PSK"
wait_for 30 client_connected wlan1 || fail "wlan1 did not connect"
wait_for 30 client_connected wlan2 || fail "wlan2 did not connect"
settle
point clients-2

i=3
while [ "$i" -le "$NCLIENTS" ]; do
    start_client "wlan$i" "$SSID" "$PSK"
    i=$((i + 1))
done
i=3
while [ "$i" -le "$NCLIENTS" ]; do
    wait_for 60 client_connected "wlan$i" || fail "wlan$i did not connect"
    i=$((i + 1))
done
settle
PEAK=$(stations)
point "clients-$NCLIENTS"
settle
settle
point "clients-$NCLIENTS-after-36s"

i=1
while [ "$i" -le "$NCLIENTS" ]; do
    stop_client "wlan$i"
    i=$((i + 1))
done
settle
point after-all-left

kill "$PID"
wait_for 10 sh -c "! kill -0 $PID" || fail "the agent did not stop on SIGTERM"
grep -v ': debug: ' /tmp/agent-rss.log | tail -n 20
check "$NCLIENTS clients connected at the peak ($PEAK)" [ "$PEAK" = "$NCLIENTS" ]
pass
