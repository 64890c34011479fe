# publish (issue 4 item 5): the agent publishes through the guest-forward to the host's
# mosquitto; the host's subscriber decodes a client's start and stop with the wire crate.
# Also measures each agent's VmRSS with two clients connected to AP 1.
begin publish
client_up wlan2 $B1
client_up wlan3 $B1
wait_up 20 wlan2 wlan3
sleep 3
rss 1
rss 2
client_down wlan2
client_down wlan3
sleep $((GRACE + 2))
end publish
