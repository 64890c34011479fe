# shellcheck shell=bash
# The package against the openwrt-userland stand-ins: one test per fact of shared/OPENWRT.md
# (what OpenWrt's real opkg, uci, procd and reload_config did with this project's .ipk), each
# named after its fact, each in a fresh stand-in root. Sourced by tests/package/run.sh, which
# sets IPK (the .ipk of build-ipk.sh, x86_64), AGENT (the host agent it packages), WORK, and
# provides pass/fail.
#
# run_facts: runs every fact test; a fact passes only if all of its expectations hold.

. "$REPO_ROOT/tests/package/openwrt-userland.sh"

SERVICE_STANDIN="$REPO_ROOT/tests/package/service-standin.sh"
R=                  # the root of the running fact test
FACT_OK=0

expect() {   # expect DESCRIPTION CMD...: one expectation of the current fact
    local what=$1; shift
    if ! "$@"; then
        log "    not so: $what"
        FACT_OK=1
    fi
}
r() { in_root "$R" "$@"; }
fresh_root() {
    userland_stop "$R" 2>/dev/null || true
    userland_root "$R"
    cp "$IPK" "$R/tmp/wifisess.ipk"
}
opkg_install() { r 'opkg install /tmp/wifisess.ipk' >"$WORK/opkg.out" 2>&1; }
opkg_remove() { r 'opkg remove wifisess' >"$WORK/opkg.out" 2>&1; }
# The tiny service in place of the agent binary (after opkg put the package's there).
service_standin() { install -m 0755 "$SERVICE_STANDIN" "$R/usr/bin/wifisess-agent"; }
# enable_config: the router owner's usual change, committed (loopback broker: nothing connects)
enable_config() {
    r "uci set wifisess.agent.enabled=1; uci set wifisess.agent.broker=mqtt://127.0.0.1:1883;" \
      "uci set wifisess.agent.device_id=lab-ap-1; uci commit wifisess"
}
hist() { cat "$R/var/run/procd/history" 2>/dev/null; }
hist_count() { hist | grep -c -- "$1" || true; }
listing() { r 'ubus call service list' 2>/dev/null; }
instance_pid() { listing | awk -F '\t' '$1 == "instance" && $4 == "true" { print $6 }'; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
mode_of() { stat -c %a "$R$1"; }
file_md5() { md5sum "$R$1" | cut -d ' ' -f 1; }
contains() { grep -q -- "$2" <<<"$1"; }
not() { ! "$@"; }
new_alive() { alive "$1" && [ "$1" != "$2" ]; }   # new_alive PID OLD: a live process, not OLD

run_fact() {   # run_fact FUNCTION
    local fn=$1
    R="$WORK/root-$fn"
    FACT_OK=0
    log "  $fn"
    fresh_root
    local rc=0
    "$fn" || rc=$?     # (set -e does not apply inside: a failing step shows in its expectations)
    userland_stop "$R"
    if [ "$rc:$FACT_OK" = 0:0 ]; then pass "$fn"; else fail "$fn"; fi
}

# --- 1-4: opkg ------------------------------------------------------------------------------

fact_01_opkg_install_resolves_depends_records_the_conffile_and_keeps_modes() {
    expect "opkg install exits 0" opkg_install
    local st
    st=$(r 'opkg status wifisess')
    expect "status: install user installed" contains "$st" '^Status: install user installed$'
    expect "status records /etc/config/wifisess as a conffile with the md5 of the installed file" \
        contains "$st" "^ /etc/config/wifisess $(file_md5 /etc/config/wifisess)$"
    expect "/etc/config/wifisess is 0600" [ "$(mode_of /etc/config/wifisess)" = 600 ]
    expect "/usr/bin/wifisess-agent is 0755" [ "$(mode_of /usr/bin/wifisess-agent)" = 755 ]
    expect "/etc/init.d/wifisess is 0755" [ "$(mode_of /etc/init.d/wifisess)" = 755 ]
    # Depends are resolved against the status file: without libc there, nothing is installed.
    fresh_root
    sed -i '/^Package: libc$/,/^$/d' "$R/usr/lib/opkg/status"
    expect "without libc in the status file, opkg install fails" not opkg_install
    expect "... naming the unsatisfied dependency" grep -q 'Cannot satisfy the following dependencies for wifisess' "$WORK/opkg.out"
    expect "... and installs nothing" [ ! -e "$R/usr/bin/wifisess-agent" ]
}

fact_02_postinst_enables_and_starts_and_enabled_0_leaves_a_service_with_its_trigger_but_no_instance() {
    expect "opkg install exits 0" opkg_install
    expect "S95wifisess -> ../init.d/wifisess" [ "$(readlink "$R/etc/rc.d/S95wifisess")" = ../init.d/wifisess ]
    expect "K10wifisess -> ../init.d/wifisess" [ "$(readlink "$R/etc/rc.d/K10wifisess")" = ../init.d/wifisess ]
    expect "postinst ran the init script's start (procd got the service)" [ "$(hist_count '^update wifisess$')" -eq 1 ]
    expect "start_service said it is disabled" grep -q 'wifisess: disabled' "$WORK/opkg.out"
    local l
    l=$(listing)
    expect "procd knows the service" contains "$l" $'^service\twifisess$'
    expect "with its config.change trigger: /etc/init.d/wifisess reload" \
        contains "$l" $'^trigger\tconfig.change\twifisess\t/etc/init.d/wifisess\treload$'
    expect "and no instance" not contains "$l" $'^instance\t'
    expect "status: active with no instances" [ "$(r '/etc/init.d/wifisess status')" = "active with no instances" ]
}

fact_03_opkg_remove_disables_stops_and_keeps_a_modified_conffile() {
    opkg_install
    service_standin
    enable_config
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local pid
    pid=$(instance_pid)
    expect "an instance runs before the removal" alive "$pid"
    expect "opkg remove exits 0" opkg_remove
    expect "prerm disabled it (rc.d links gone)" [ -z "$(ls "$R/etc/rc.d")" ]
    expect "prerm stopped it (procd forgot the service)" [ "$(hist_count '^delete wifisess$')" -eq 1 ]
    expect "the instance's process is gone" not alive "$pid"
    expect "binary removed" [ ! -e "$R/usr/bin/wifisess-agent" ]
    expect "init script removed" [ ! -e "$R/etc/init.d/wifisess" ]
    expect "the modified conffile is kept" grep -q "lab-ap-1" "$R/etc/config/wifisess"
    expect "opkg says: Not deleting modified conffile /etc/config/wifisess." \
        grep -q 'Not deleting modified conffile /etc/config/wifisess.' "$WORK/opkg.out"
    # an unmodified conffile goes with the package
    fresh_root
    opkg_install
    opkg_remove
    expect "an unmodified conffile is removed" [ ! -e "$R/etc/config/wifisess" ]
    # a service stopped before the removal: the prerm's stop finds nothing (harmless)
    fresh_root
    opkg_install
    service_standin
    enable_config
    r '/etc/init.d/wifisess start; /etc/init.d/wifisess stop' >/dev/null 2>&1
    expect "removing an already stopped service still exits 0" opkg_remove
    expect "... with procd's 'Command failed: ubus call service delete ... (Not found)'" \
        grep -q 'Command failed: ubus call service delete { "name": "wifisess" } (Not found)' "$WORK/opkg.out"
}

fact_04_reinstall_keeps_the_users_conffile_places_the_packages_beside_it_and_starts() {
    opkg_install
    enable_config
    opkg_remove
    # The packaged agent itself runs in this root (its libraries copied in): it exits for want
    # of nl80211, as on the observed root, after procd started it.
    install_real_agent "$R" "$AGENT"
    local before
    before=$(hist_count '^start wifisess::instance1')
    expect "opkg install over the kept conffile exits 0" opkg_install
    expect "the user's conffile is kept (device_id lab-ap-1, enabled 1)" \
        [ "$(r 'uci get wifisess.agent.device_id; uci get wifisess.agent.enabled' | tr '\n' ' ')" = "lab-ap-1 1 " ]
    expect "the package's version is beside it as /etc/config/wifisess-opkg" \
        cmp -s "$R/etc/config/wifisess-opkg" "$REPO_ROOT/openwrt-package/files/wifisess.config"
    expect "opkg said where it put the new conffile" grep -q 'placed at /etc/config/wifisess-opkg' "$WORK/opkg.out"
    expect "both are 0600" [ "$(mode_of /etc/config/wifisess)$(mode_of /etc/config/wifisess-opkg)" = 600600 ]
    expect "postinst started the enabled service at once (procd started instance1)" \
        [ "$(hist_count '^start wifisess::instance1')" -gt "$before" ]
}

# --- 5-8: configuration changes -------------------------------------------------------------

fact_05_uci_commit_changes_the_file_and_nothing_else() {
    opkg_install
    service_standin
    local h0 m0
    h0=$(hist)
    m0=$(file_md5 /etc/config/wifisess)
    enable_config
    expect "uci get reads the committed value" [ "$(r 'uci get wifisess.agent.enabled')" = 1 ]
    expect "the file changed" [ "$(file_md5 /etc/config/wifisess)" != "$m0" ]
    expect "the file is still 0600" [ "$(mode_of /etc/config/wifisess)" = 600 ]
    expect "no staged change left (/tmp/.uci/wifisess)" [ ! -e "$R/tmp/.uci/wifisess" ]
    expect "procd saw nothing: no event, no update, no start" [ "$(hist)" = "$h0" ]
    expect "no instance runs" [ -z "$(instance_pid)" ]
}

fact_06_reload_config_signals_only_packages_whose_md5_changed_since_its_previous_run() {
    opkg_install
    service_standin
    enable_config
    r reload_config
    expect "the first reload_config after the install sends nothing (not in the boot's md5 list)" \
        [ "$(hist_count '^event ')" -eq 0 ]
    expect "... so nothing is started" [ -z "$(instance_pid)" ]
    r reload_config
    expect "reload_config without a change sends nothing" [ "$(hist_count '^event ')" -eq 0 ]
    r 'uci set wifisess.agent.poll_interval=20; uci commit wifisess; reload_config'
    expect "after a change, reload_config sends config.change for wifisess" \
        [ "$(hist_count '^event config.change wifisess$')" -eq 1 ]
    expect "... and for no other package" [ "$(hist_count '^event ')" -eq 1 ]
    r "uci set system.@system[0].hostname=lab; uci commit system; reload_config"
    expect "a change of another package signals that package only" \
        [ "$(hist_count '^event config.change system$'):$(hist_count '^event config.change wifisess$')" = 1:1 ]
}

fact_07_config_change_runs_the_init_scripts_reload_and_procd_restarts_a_changed_instance() {
    opkg_install
    service_standin
    enable_config
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local pid1 pid2 pid3
    pid1=$(instance_pid)
    expect "the instance runs" alive "$pid1"
    r 'ubus call service event "{ \"type\": \"config.change\", \"data\": { \"package\": \"wifisess\" } }"'
    expect "config.change for wifisess ran /etc/init.d/wifisess reload" \
        [ "$(hist_count '^trigger wifisess: /etc/init.d/wifisess reload$')" -eq 1 ]
    pid2=$(instance_pid)
    expect "nothing changed: the same instance keeps running" [ "$pid2" = "$pid1" ]
    r 'uci set wifisess.agent.poll_interval=20; uci commit wifisess'
    r 'ubus call service event "{ \"type\": \"config.change\", \"data\": { \"package\": \"wifisess\" } }"'
    pid3=$(instance_pid)
    expect "the changed file made procd restart the instance" [ "$(hist_count '^restart wifisess::instance1$')" -eq 1 ]
    expect "... a new process" new_alive "$pid3" "$pid1"
    expect "... the old one ended" not alive "$pid1"
    r 'ubus call service event "{ \"type\": \"config.change\", \"data\": { \"package\": \"network\" } }"'
    expect "config.change for another package does not touch wifisess" \
        [ "$(hist_count '^trigger wifisess')" -eq 2 ]
}

fact_08_the_commands_that_apply_a_change_are_init_reload_restart_start_and_reload_config() {
    opkg_install
    service_standin
    r reload_config    # wifisess joins the md5 list (as after the next boot)
    enable_config
    expect "after uci commit alone nothing runs" [ -z "$(instance_pid)" ]
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local p1 p2 p3 p4
    p1=$(instance_pid)
    expect "/etc/init.d/wifisess start starts it" alive "$p1"
    r 'uci set wifisess.agent.poll_interval=20; uci commit wifisess; /etc/init.d/wifisess reload' >/dev/null 2>&1
    p2=$(instance_pid)
    expect "/etc/init.d/wifisess reload applies a change (new instance)" new_alive "$p2" "$p1"
    r '/etc/init.d/wifisess restart' >/dev/null 2>&1
    p3=$(instance_pid)
    expect "/etc/init.d/wifisess restart restarts it" new_alive "$p3" "$p2"
    r 'reload_config' >/dev/null 2>&1    # md5 list now has this state
    r 'uci set wifisess.agent.poll_interval=30; uci commit wifisess; reload_config' >/dev/null 2>&1
    p4=$(instance_pid)
    expect "reload_config applies a change" new_alive "$p4" "$p3"
    r 'uci set wifisess.agent.enabled=0; uci commit wifisess; /etc/init.d/wifisess reload' >/dev/null 2>&1
    expect "reload with enabled 0 leaves no instance" [ -z "$(instance_pid)" ]
    expect "... and its process ended" not alive "$p4"
    # and the package's own words say so
    local f
    for f in docs/PACKAGING.md README.md openwrt-package/files/wifisess.config openwrt-package/files/wifisess.init; do
        expect "$f names /etc/init.d/wifisess reload" grep -q '/etc/init.d/wifisess reload' "$REPO_ROOT/$f"
        expect "$f never says uci commit starts/reloads/applies (it only writes the file)" \
            not claims_uci_commit_applies "$REPO_ROOT/$f"
    done
    expect "docs/PACKAGING.md names reload_config" grep -q 'reload_config' "$REPO_ROOT/docs/PACKAGING.md"
}

# --- 9-11: under procd ----------------------------------------------------------------------

fact_09_the_instance_carries_command_respawn_and_term_timeout_and_status_answers_through_procd() {
    opkg_install
    service_standin
    enable_config
    expect "status before start: active with no instances" \
        [ "$(r '/etc/init.d/wifisess status')" = "active with no instances" ]
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local l
    l=$(listing)
    expect "command: /usr/bin/wifisess-agent run --config /etc/config/wifisess" \
        contains "$l" $'^param\tinstance1\tcommand\t/usr/bin/wifisess-agent\trun\t--config\t/etc/config/wifisess$'
    expect "respawn 3600 5 5" contains "$l" $'^param\tinstance1\trespawn\t3600\t5\t5$'
    expect "term_timeout 10" contains "$l" $'^param\tinstance1\tterm_timeout\t10$'
    expect "file /etc/config/wifisess" contains "$l" $'^param\tinstance1\tfile\t/etc/config/wifisess$'
    expect "status: running (exit 0)" [ "$(r '/etc/init.d/wifisess status')" = running ]
    kill "$(instance_pid)"
    sleep 0.3
    local rc=0
    r '/etc/init.d/wifisess status' >"$WORK/status.out" || rc=$?
    expect "status after the process died: not running (exit 5)" [ "$(cat "$WORK/status.out"):$rc" = "not running:5" ]
}

fact_10_stderr_is_logged_at_err_and_stdout_at_info() {
    opkg_install
    service_standin
    enable_config
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local l pid n
    l=$(listing)
    expect "the init script sets procd_set_param stdout 1" contains "$l" $'^param\tinstance1\tstdout\t1$'
    expect "the init script sets procd_set_param stderr 1" contains "$l" $'^param\tinstance1\tstderr\t1$'
    pid=$(instance_pid)
    for n in $(seq 50); do
        [ "$(r 'logread -e service-standin' | wc -l)" -ge 2 ] && break
        sleep 0.1
    done
    r 'logread' >"$WORK/logread.out"
    expect "a stdout line is logged as daemon.info under the command's name and pid" \
        grep -qF "daemon.info wifisess-agent[$pid]: service-standin stdout: routine line" "$WORK/logread.out"
    expect "a stderr line is logged as daemon.err" \
        grep -qF "daemon.err wifisess-agent[$pid]: service-standin stderr: error line" "$WORK/logread.out"
    expect "nothing from stdout at err, nothing from stderr at info" \
        not grep -qE 'daemon.err .*stdout:|daemon.info .*stderr:' "$WORK/logread.out"
}

fact_11_stop_removes_the_service_from_procd() {
    opkg_install
    service_standin
    enable_config
    r '/etc/init.d/wifisess start' >/dev/null 2>&1
    local pid rc=0
    pid=$(instance_pid)
    expect "it runs" alive "$pid"
    r '/etc/init.d/wifisess stop'
    expect "procd no longer lists wifisess" [ -z "$(listing)" ]
    expect "its process is gone" not alive "$pid"
    r '/etc/init.d/wifisess status' >"$WORK/status.out" || rc=$?
    expect "status: inactive (exit 3)" [ "$(cat "$WORK/status.out"):$rc" = "inactive:3" ]
    expect "the rc.d links stay (stop is not disable)" [ -L "$R/etc/rc.d/S95wifisess" ]
}

# Fact 12: the observed root had no sysfs, and the agent without device_id exited 2 "no Ethernet
# interface". A router has /sys; some (DSA) name their ports lan1.../wan and have no eth*: the
# agent must still find its id there. Where nothing can give one (no /sys at all), it must say
# so in one line and exit 2 (configuration that says no), and a set device_id must do.
fact_12_without_eth_interfaces_the_agent_still_finds_a_device_id() {
    opkg_install
    install_real_agent "$R" "$AGENT"
    r "uci set wifisess.agent.enabled=1; uci set wifisess.agent.broker=mqtt://127.0.0.1:1883; uci commit wifisess"
    # the observed root: no /sys
    local rc=0
    r '/usr/bin/wifisess-agent check-config --config /etc/config/wifisess' >"$WORK/cc12.out" 2>&1 || rc=$?
    expect "without /sys and device_id: exit 2 (exit $rc)" [ "$rc" = 2 ]
    expect "... with one line naming option device_id ($(head -n 1 "$WORK/cc12.out"))" \
        bash -c '[ "$(wc -l <"$1")" = 1 ] && grep -q "^wifisess-agent: option device_id: not set" "$1"' _ "$WORK/cc12.out"
    rc=0
    r 'uci set wifisess.agent.device_id=lab-ap-1; uci commit wifisess;
       /usr/bin/wifisess-agent check-config --config /etc/config/wifisess' >"$WORK/cc12b.out" 2>&1 || rc=$?
    expect "... and a set device_id is enough (exit $rc)" [ "$rc" = 0 ]
    # a DSA router: switch ports lan1, lan2, wan (physical), br-lan (virtual), a wireless AP
    # interface, no eth*
    r 'uci delete wifisess.agent.device_id; uci commit wifisess'
    local n mac i=1
    for n in wan lan2 lan1 br-lan phy0-ap0; do
        mkdir -p "$R/sys/class/net/$n"
        printf '1\n' >"$R/sys/class/net/$n/type"
        mac=$(printf '02:fc:00:00:00:%02x' "$i"); i=$((i + 1))
        printf '%s\n' "$mac" >"$R/sys/class/net/$n/address"
        case "$n" in
            br-lan) ;;
            phy0-ap0) mkdir -p "$R/sys/class/net/$n/phy80211" "$R/sys/class/net/$n/device" ;;
            *) mkdir -p "$R/sys/class/net/$n/device" ;;
        esac
    done
    rc=0
    r '/usr/bin/wifisess-agent check-config --config /etc/config/wifisess' >"$WORK/cc12c.out" 2>&1 || rc=$?
    expect "with lan1, lan2, wan and no eth*: check-config exits 0 without device_id (exit $rc: $(head -n 1 "$WORK/cc12c.out"))" [ "$rc" = 0 ]
    expect "... and the device id is the first physical port's MAC (lan1: 02fc00000003)" \
        grep -qE '^device_id +"02fc00000003"' "$WORK/cc12c.out"
}

# --- validation (procd_add_validation, uci_load_validate) ------------------------------------

validate_rejects_an_invalid_option_and_procd_lists_the_options() {
    opkg_install
    service_standin
    enable_config
    r 'uci set wifisess.agent.poll_interval=abc; uci commit wifisess'
    r '/etc/init.d/wifisess start' >"$WORK/start.out" 2>&1
    expect "no instance with poll_interval abc" [ -z "$(instance_pid)" ]
    expect "the init script says validation failed" grep -q 'validation failed' "$WORK/start.out"
    expect "validate_data's verdict names the option" \
        grep -q 'wifisess.agent.poll_interval=abc validates as range(1,3600) with false' "$WORK/start.out"
    local v
    v=$(r 'ubus call service validate')
    expect "procd lists the validation of package wifisess" contains "$v" $'^validate\tpackage\twifisess$'
    expect "... section type agent" contains "$v" $'^validate\ttype\tagent$'
    expect "... enabled: bool" contains "$v" $'^validate\tenabled\tbool$'
    expect "... poll_interval: range(1,3600)" contains "$v" $'^validate\tpoll_interval\trange(1,3600)$'
    r 'uci set wifisess.agent.poll_interval=20; uci commit wifisess; /etc/init.d/wifisess start' >/dev/null 2>&1
    expect "a valid value starts it" alive "$(instance_pid)"
    r 'uci set wifisess.agent.enabled=maybe; uci commit wifisess; /etc/init.d/wifisess reload' >/dev/null 2>&1
    expect "enabled maybe (not a bool) stops it rather than guessing" [ -z "$(instance_pid)" ]
}

validate_data_standin_follows_ubox_semantics() {
    local out
    expect "range(1,3600) accepts 10" r "validate_data 'range(1,3600)' 10 2>/dev/null"
    expect "range(1,3600) refuses 0" not r "validate_data 'range(1,3600)' 0 2>/dev/null"
    expect "bool accepts yes" r "validate_data bool yes 2>/dev/null"
    expect "bool refuses maybe" not r "validate_data bool maybe 2>/dev/null"
    expect "or(\"off\",\"hmac\") accepts hmac" r "validate_data 'or(\"off\",\"hmac\")' hmac 2>/dev/null"
    opkg_install
    out=$(r "uci set wifisess.agent.enabled=yes; validate_data wifisess agent agent 'enabled:bool:0' 'broker:string' 'poll_interval:range(1,3600):10' 2>/dev/null")
    expect "a bool is exported as 0/1, an unset string as unset, an unset option as its default ($out)" \
        [ "$out" = "enabled=1; unset -v broker; poll_interval=10; " ]
}

# claims_uci_commit_applies FILE: a sentence of FILE has `uci commit` start, reload, restart or
# apply something (without saying it does not); prints it.
claims_uci_commit_applies() {
    python3 - "$1" <<'PY'
import re, sys
text = re.sub(r"\s+", " ", open(sys.argv[1]).read())
bad = [s for s in re.split(r"(?<=[.;:!?])\s", text)
       if "uci commit" in s and re.search(r"\b(starts?|reloads?|restarts?|applies|triggers?)\b", s)
       and not re.search(r"\b(only|nothing|no event|not|alone|then)\b", s)]
for s in bad:
    print("   claims:", s.strip()[:160])
sys.exit(0 if bad else 1)
PY
}

run_facts() {
    local f
    for f in $(declare -F | awk '{ print $3 }' | grep -E '^(fact_[0-9]+|validate)_' | sort); do
        run_fact "$f"
    done
}
