# shellcheck shell=bash
# openwrt-userland: a stand-in OpenWrt root for the package tests. Source it from
# tests/package/run.sh (after common.sh; needs root for chroot and mknod, and busybox).
#
# The stand-ins in tests/package/standins/ (opkg, uci, reload_config, ubus + procd,
# /etc/rc.common, /lib/functions.sh, /lib/functions/procd.sh, validate_data, logread) model the
# real OpenWrt userland as observed with this project's .ipk: ../shared/OPENWRT.md (facts 1-12)
# and the raw openwrt-userland transcript beside it, ../shared/openwrt-observed.log. They are
# written for busybox ash and run in a chroot of busybox and themselves, so the init script,
# opkg's maintainer scripts and procd's triggers see the paths they see on a router.
#
# Defines: userland_root ROOT, in_root ROOT CMD, userland_stop ROOT, install_real_agent ROOT BIN

STANDINS="$REPO_ROOT/tests/package/standins"

# userland_root ROOT: a fresh root: busybox (every applet but the ones stood in for), the
# stand-ins, /etc/opkg.conf (x86_64), a status file with libc and libgcc1 installed, a system
# config, and the boot's reload_config run (the md5 baseline of fact 6).
userland_root() {
    local root=$1 a
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/config,etc/init.d,etc/rc.d,lib/functions} \
        "$root"/{usr/lib/opkg/info,var/run,var/log,tmp,dev,root}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    for a in $("$BUSYBOX" --list); do
        [ -e "$STANDINS/bin/$a" ] || [ -e "$STANDINS/sbin/$a" ] || [ -e "$root/bin/$a" ] \
            || ln -s busybox "$root/bin/$a"
    done
    cp -a "$STANDINS/." "$root/"
    chmod 0755 "$root"/bin/{opkg,ubus} "$root"/sbin/{uci,reload_config,validate_data,logread} \
        "$root/etc/rc.common"
    mknod -m 666 "$root/dev/null" c 1 3
    mknod -m 444 "$root/dev/urandom" c 1 9
    printf 'dest root /\nlists_dir ext /var/opkg-lists\narch all 1\narch noarch 1\narch x86_64 10\n' \
        >"$root/etc/opkg.conf"
    printf 'Package: %s\nVersion: 1\nStatus: install ok installed\nArchitecture: x86_64\n\n' \
        libc libgcc1 >"$root/usr/lib/opkg/status"
    printf "\nconfig system\n\toption hostname 'OpenWrt'\n" >"$root/etc/config/system"
    in_root "$root" /sbin/reload_config
}

# in_root ROOT CMD: runs CMD (a shell command line) in the root, with a clean environment.
in_root() {
    local root=$1
    shift
    chroot "$root" /bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
        /bin/sh -c "$*"
}

# userland_stop ROOT: ends the instances procd started in ROOT (and their supervisors).
userland_stop() {
    local f p
    for f in "$1"/var/run/procd/services/*/inst/*/pid "$1"/var/run/procd/services/*/inst/*/supervisor; do
        [ -s "$f" ] || continue
        p=$(cat "$f")
        kill "$p" 2>/dev/null || true
    done
}

# install_real_agent ROOT BIN: BIN as ROOT/usr/bin/wifisess-agent with the shared libraries it
# needs (a host build is dynamically linked), so the packaged agent itself can run in the root.
install_real_agent() {
    local root=$1 bin=$2 lib
    install -m 0755 "$bin" "$root/usr/bin/wifisess-agent"
    for lib in $(ldd "$bin" | grep -oE '/[^ ]+'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
