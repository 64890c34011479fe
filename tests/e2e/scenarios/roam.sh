# roam: wlan4 joins AP 1 and roams to AP 2 (wpa_cli roam; AP 2 is on another channel). The
# kernel sends AP 1 no deauthentication, so AP 1 drops the client when its inactivity poll
# goes unanswered (ap_max_inactivity, ~10 s): one session per device; `presence` for the group
# counts the client's minutes once (when the collector has `presence`).
begin roam
client_up wlan4 $B1; wait_up 20 wlan4
sleep 3
n=$(grep -c "AP-STA-DISCONNECTED $(mac_of wlan4)" /tmp/hostapd-wlan0.log)
roam wlan4 $B2
wait_for $((INACTIVITY + 20)) sh -c "[ \$(grep -c 'AP-STA-DISCONNECTED $(mac_of wlan4)' /tmp/hostapd-wlan0.log) -gt $n ]" \
    || say "AP 1 did not drop wlan4"
sleep 2
client_down wlan4
sleep $((GRACE + 2))
end roam
