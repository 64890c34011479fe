# broker_outage: the broker is stopped for 30 s while clients join and leave; nothing is lost.
begin broker_outage
client_up wlan2 $B1; client_up wlan3 $B2; wait_up 20 wlan2 wlan3
sleep 2
c1=$(agent_connects 1); c2=$(agent_connects 2)
host broker-stop
sleep 3
client_down wlan2
client_up wlan4 $B2; wait_up 20 wlan4
client_up wlan5 $B1; wait_up 20 wlan5
sleep 2
client_down wlan3
client_down wlan5
sleep 14
host broker-start
wait_connects 1 $((c1 + 1)) 90 || fail "agent 1 did not reconnect"
wait_connects 2 $((c2 + 1)) 90 || fail "agent 2 did not reconnect"
sleep 1
client_down wlan4
sleep $((GRACE + 2))
end broker_outage
