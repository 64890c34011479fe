# reboot (second boot, new kernel boot id): the agents come back; the collector closes the old
# boot's sessions at the device's last-seen time with device_reboot.
sleep 3
end reboot
