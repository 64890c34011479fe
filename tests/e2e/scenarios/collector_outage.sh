# collector_outage: the collector is killed (SIGKILL) for 30 s while clients join and leave;
# the broker keeps its persistent session: nothing lost, nothing doubled.
begin collector_outage
client_up wlan6 $B1; client_up wlan7 $B2; wait_up 20 wlan6 wlan7
sleep 2
host collector-kill
sleep 3
client_down wlan6
client_up wlan2 $B2; wait_up 20 wlan2
client_up wlan3 $B1; wait_up 20 wlan3
sleep 2
client_down wlan7
flap wlan3
sleep 12
host collector-start
sleep 5
client_down wlan2; client_down wlan3
sleep $((GRACE + 2))
end collector_outage
