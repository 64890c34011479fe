# clock: the VM's clock was set to 1970 before hostapd and the agents started (boot prologue);
# the collector's times must still be within 2 s of the host's clock.
begin clock
client_up wlan2 $B1; client_up wlan3 $B2; wait_up 20 wlan2 wlan3
sleep 3
client_down wlan2
sleep 1
client_down wlan3
sleep $((GRACE + 2))
end clock
