# rejoin: wlan2 leaves and rejoins AP 1 within rejoin_grace (wpa_cli disconnect/reconnect) (one session, whose stop is the
# second leave), then leaves and rejoins after the grace (a second session).
begin rejoin
client_up wlan2 $B1; wait_up 20 wlan2
sleep 2
flap wlan2
sleep 3
client_down wlan2
sleep $((GRACE + 3))
client_up wlan2 $B1; wait_up 20 wlan2
sleep 2
client_down wlan2
sleep $((GRACE + 2))
end rejoin
