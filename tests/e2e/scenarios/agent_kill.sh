# agent_kill: both agents are killed with SIGKILL and restarted while wlan5 (AP 1) and wlan6
# (AP 2) stay connected: same session ids, no stop, no duplicate.
begin agent_kill
client_up wlan5 $B1; client_up wlan6 $B2; wait_up 20 wlan5 wlan6
sleep 2
snapshot agent_kill.before e2e-ap1/5 e2e-ap2/6
agent_kill9 1; agent_kill9 2
sleep 3
c1=$(agent_connects 1); c2=$(agent_connects 2)
agent_start 1; agent_start 2
wait_connects 1 $((c1 + 1)) 30 || fail "agent 1 did not reconnect"
wait_connects 2 $((c2 + 1)) 30 || fail "agent 2 did not reconnect"
sleep 2
snapshot agent_kill.after e2e-ap1/5 e2e-ap2/6
client_down wlan5; client_down wlan6
sleep $((GRACE + 2))
end agent_kill
