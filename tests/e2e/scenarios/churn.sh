# churn: six clients join at once (three per AP), leave one by one; then all join again and
# leave at once. Expected: two sessions per client on its AP, all `left`.
begin churn
client_up wlan2 $B1; client_up wlan3 $B2; client_up wlan4 $B1
client_up wlan5 $B2; client_up wlan6 $B1; client_up wlan7 $B2
wait_up 30 wlan2 wlan3 wlan4 wlan5 wlan6 wlan7
sleep 2
for i in 2 3 4 5 6 7; do client_down wlan$i; sleep 0.5; done
sleep $((GRACE + 2))
client_up wlan2 $B1; client_up wlan3 $B2; client_up wlan4 $B1
client_up wlan5 $B2; client_up wlan6 $B1; client_up wlan7 $B2
wait_up 30 wlan2 wlan3 wlan4 wlan5 wlan6 wlan7
sleep 2
# all six leave at once (not `wait`: that would also wait for hostapd and the agents)
for i in 2 3 4 5 6 7; do wpa_cli -i wlan$i terminate >/dev/null 2>&1 & done
wait_for 15 sh -c '! pidof wpa_supplicant' || fail "clients did not stop"
sleep $((GRACE + 2))
end churn
