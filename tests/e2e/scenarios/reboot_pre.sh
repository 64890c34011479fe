# reboot (first boot): wlan6 (AP 1) and wlan7 (AP 2) connected, an interim update, then the
# VM is powered off hard (no agent shutdown, no client leave). Continued by reboot_post.sh.
begin reboot
client_up wlan6 $B1; client_up wlan7 $B2; wait_up 20 wlan6 wlan7
sleep 12
snapshot reboot.before e2e-ap1/6 e2e-ap2/7
agent_logs
dump_hostapd
clockmark
e2e POWEROFF
poweroff -f
