#!/usr/bin/env bash
# The real-AP lab (LAB §1): boots a mac80211_hwsim VM (QEMU TCG) with hostapd, wpa_supplicant,
# iw and a static wifisess-agent, runs one scenario script inside it and reports pass/fail.
#
# usage: tests/hwsim/lab.sh [--radios N] [--mqtt-port PORT] [--timeout S] [--log FILE] [--release]
#                           SCENARIO
#
#   SCENARIO      a busybox-ash script, run inside the VM after /lab/helpers.sh is sourced
#                 (tests/hwsim/vm/helpers.sh). It must end with `pass`; `fail MSG` aborts.
#                 (A scenario with a host half, tests/hwsim/host/NAME.sh, is run through that:
#                 e.g. roam needs a broker and a collector on the host.)
#   --radios N    mac80211_hwsim radios, wlan0..wlanN-1 (default 4; env HWSIM_RADIOS)
#   --mqtt-port P forward 10.0.2.100:1883 in the VM to 127.0.0.1:P on the host (env
#                 HWSIM_MQTT_PORT); the VM has no other network. eth0 is 10.0.2.15/24.
#   --timeout S   kill the VM after S seconds (default 300; env HWSIM_TIMEOUT)
#   --log FILE    also write the console to FILE (default target/hwsim/logs/NAME.log)
#   --release     put the release (size-optimised) agent build in the VM instead of the debug
#                 one (env HWSIM_AGENT_PROFILE=release)
#   (env HWSIM_AGENT_FEATURES: cargo features of the agent build, default "devtools"; empty
#                 gives the exact router build, e.g. for tests/bench/agent-rss.sh)
#
# Prints the VM console on stdout. Exit 0 when the scenario printed "SCENARIO PASS", 1 when it
# failed or the VM did not finish, 2 on bad usage. Everything is cached under target/hwsim/:
# the kernel and Debian's wireless-regdb (apt-get download + dpkg -x, /boot and /lib/firmware
# are left alone; the VM gets /lib/firmware/regulatory.db for 5 GHz), the static agent build (its own
# target dir) and the base initramfs (keyed by a hash of its inputs). The scenario is packed
# into a second small cpio appended to the base one, so a new scenario rebuilds nothing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${HWSIM_WORK:-$REPO/target/hwsim}"
RADIOS="${HWSIM_RADIOS:-4}"
MQTT_PORT="${HWSIM_MQTT_PORT:-}"
TIMEOUT="${HWSIM_TIMEOUT:-300}"
LOGFILE=""
SCENARIO=""
PROFILE="${HWSIM_AGENT_PROFILE:-debug}"
FEATURES="${HWSIM_AGENT_FEATURES-devtools}"

log() { printf 'lab: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --radios) RADIOS="$2"; shift 2 ;;
        --mqtt-port) MQTT_PORT="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --log) LOGFILE="$2"; shift 2 ;;
        --release) PROFILE=release; shift ;;
        -h|--help) usage ;;
        -*) log "unknown option $1"; usage ;;
        *) [ -z "$SCENARIO" ] || usage; SCENARIO="$1"; shift ;;
    esac
done
[ -n "$SCENARIO" ] || usage
[ -f "$SCENARIO" ] || die "no such scenario: $SCENARIO"
NAME="$(basename "$SCENARIO" .sh)"
mkdir -p "$WORK/logs"
LOGFILE="${LOGFILE:-$WORK/logs/$NAME.log}"

# ---- packages (idempotent) -----------------------------------------------------------------
install_deps() {
    if [ -x "$REPO/tests/install-deps.sh" ] || [ -f "$REPO/tests/install-deps.sh" ]; then
        bash "$REPO/tests/install-deps.sh" vmlab >&2
    else
        local missing=() p
        for p in qemu-system-x86 hostapd wpasupplicant iw busybox-static cpio netcat-openbsd; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
        fi
    fi
}

# ---- kernel: the version apt offers, unpacked into the cache ----------------------------------
fetch_kernel() {
    local pkg
    pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')"
    if [ -z "$pkg" ]; then
        apt-get update -qq >&2 || true
        pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')"
    fi
    [ -n "$pkg" ] || die "apt offers no linux-image-amd64"
    KVER="${pkg#linux-image-}"
    KDIR="$WORK/kernel/$KVER"
    if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
        log "downloading $pkg"
        rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
        (cd "$KDIR.tmp" && apt-get download -qq "$pkg" >&2)
        dpkg -x "$KDIR.tmp"/*.deb "$KDIR.tmp/root"
        rm -rf "$KDIR" && mv "$KDIR.tmp/root" "$KDIR" && rm -rf "$KDIR.tmp"
    fi
    VMLINUZ="$KDIR/boot/vmlinuz-$KVER"
    MODDIR="$KDIR/lib/modules/$KVER/kernel"
}

# ---- the regulatory database (LAB §5): without it 5 GHz channels stay disabled in the VM ------
# Debian's wireless-regdb, unpacked into the cache like the kernel (the host is left alone);
# a scenario that wants 5 GHz runs `iw reg set US` before hostapd. Not fatal when apt does not
# offer it: only such scenarios fail.
fetch_regdb() {
    REGDB="$WORK/regdb/lib/firmware"
    [ -f "$REGDB/regulatory.db-upstream" ] && return
    log "downloading wireless-regdb"
    rm -rf "$WORK/regdb.tmp" && mkdir -p "$WORK/regdb.tmp"
    if (cd "$WORK/regdb.tmp" && apt-get download -qq wireless-regdb >&2 2>/dev/null) \
        && dpkg -x "$WORK/regdb.tmp"/*.deb "$WORK/regdb.tmp/root"; then
        rm -rf "$WORK/regdb" && mv "$WORK/regdb.tmp/root" "$WORK/regdb"
    else
        log "no wireless-regdb: 5 GHz stays disabled in the VM"
    fi
    rm -rf "$WORK/regdb.tmp"
}

# ---- the agent, static, in its own target dir (does not disturb other builds) ----------------
build_agent() {
    log "building wifisess-agent (static, $PROFILE, features: ${FEATURES:-none})"
    local rel=()
    [ "$PROFILE" = release ] && rel=(--release)
    # devtools: the scenarios use `watch` and WIFISESS_NL_CAPTURE (not in the router build).
    (cd "$REPO" && RUSTFLAGS='-C target-feature=+crt-static' cargo build -q -p wifisess-agent \
        --features "$FEATURES" "${rel[@]}" --target x86_64-unknown-linux-gnu \
        --target-dir "$WORK/cargo" >&2)
    AGENT="$WORK/cargo/x86_64-unknown-linux-gnu/$PROFILE/wifisess-agent"
    [ -x "$AGENT" ] || die "agent build produced no binary"
}

# Modules in LAB §1 order: crypto for WPA2, then the wireless stack, then virtio-net.
MODULES="crypto/ctr crypto/ccm crypto/cmac crypto/gf128mul crypto/ghash-generic crypto/gcm
crypto/seqiv net/rfkill/rfkill net/wireless/cfg80211 lib/crypto/libarc4 net/mac80211/mac80211
drivers/virtio/virtio_ring drivers/virtio/virtio drivers/net/wireless/virtual/mac80211_hwsim
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
net/core/failover drivers/net/net_failover drivers/net/virtio_net"
BINARIES="/usr/sbin/hostapd /usr/sbin/hostapd_cli /sbin/wpa_supplicant /sbin/wpa_cli /sbin/iw"

find_module() { # PATH-WITHOUT-.ko -> the file (some kernels move drivers around)
    local m="$1" f
    for f in "$MODDIR/$m.ko" "$MODDIR/$m.ko.xz"; do [ -f "$f" ] && { echo "$f"; return; }; done
    f="$(find "$MODDIR" -name "$(basename "$m").ko*" | head -n1)"
    [ -n "$f" ] || die "module $m not found in $MODDIR"
    echo "$f"
}

resolve_bin() { local b="$1"; [ -x "$b" ] || b="$(command -v "$(basename "$b")")"; echo "$b"; }

build_initramfs() {
    local key files=() b m
    for b in $BINARIES; do files+=("$(resolve_bin "$b")"); done
    key="$( {
        echo "$KVER $MODULES"
        sha256sum "$AGENT" "$HERE/vm/init" "$HERE/vm/helpers.sh" /bin/busybox "${files[@]}"
        sha256sum "$REGDB"/regulatory.db*-upstream 2>/dev/null || true
    } | sha256sum | cut -c1-16)"
    BASE="$WORK/initramfs/base-$key.cpio.gz"
    [ -f "$BASE" ] && return
    log "building initramfs $key"
    local root="$WORK/initramfs/root-$key"
    rm -rf "$root" && mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/modules,lab,etc,proc,sys,dev,tmp,run,var/run,root}
    cp /bin/busybox "$root/bin/busybox"
    for b in "${files[@]}"; do
        cp "$b" "$root/usr/sbin/"
        ldd "$b" | awk '/=>/{print $3} /^\t\//{print $1}' | while read -r lib; do
            [ -f "$lib" ] || continue
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    done
    # The dynamic loader under the path binaries ask for.
    mkdir -p "$root/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    strip -o "$root/usr/bin/wifisess-agent" "$AGENT"
    : >"$root/lab/modules"
    for m in $MODULES; do
        f="$(find_module "$m")"
        case "$f" in
            *.xz) xz -dc "$f" >"$root/lib/modules/$(basename "$m").ko" ;;
            *) cp "$f" "$root/lib/modules/" ;;
        esac
        basename "$m" >>"$root/lab/modules"
    done
    # The upstream-signed database (the kernel trusts its key; Debian's postinst would pick one
    # with update-alternatives).
    if [ -f "$REGDB/regulatory.db-upstream" ]; then
        mkdir -p "$root/lib/firmware"
        cp "$REGDB/regulatory.db-upstream" "$root/lib/firmware/regulatory.db"
        cp "$REGDB/regulatory.db.p7s-upstream" "$root/lib/firmware/regulatory.db.p7s"
    fi
    cp "$HERE/vm/init" "$root/init" && chmod +x "$root/init"
    cp "$HERE/vm/helpers.sh" "$root/lab/helpers.sh"
    echo "$KVER" >"$root/lab/kernel"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$BASE.tmp"
    mv "$BASE.tmp" "$BASE"
    rm -rf "$root"
}

scenario_cpio() { # packs the scenario as /scenario/run.sh into OUT
    local out="$1" d
    d="$(mktemp -d)"
    mkdir -p "$d/scenario"
    cp "$SCENARIO" "$d/scenario/run.sh"
    echo "$NAME" >"$d/scenario/name"
    (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
    rm -rf "$d"
}

install_deps
fetch_kernel
fetch_regdb
build_agent
build_initramfs

RUN="$(mktemp -d "$WORK/run-$NAME.XXXXXX")"
trap 'rm -rf "$RUN"' EXIT
scenario_cpio "$RUN/scenario.cpio.gz"
cat "$BASE" "$RUN/scenario.cpio.gz" >"$RUN/initrd.gz"

NET=(-nic none)
if [ -n "$MQTT_PORT" ]; then
    NET=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1883-cmd:nc 127.0.0.1 $MQTT_PORT"
         -device virtio-net-pci,netdev=n0)
fi

log "booting $NAME (kernel $KVER, radios $RADIOS, timeout ${TIMEOUT}s)"
t0=$(date +%s)
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -smp 1 -m 512 -nographic \
    -no-reboot -kernel "$VMLINUZ" -initrd "$RUN/initrd.gz" "${NET[@]}" \
    -append "console=ttyS0 panic=-1 loglevel=3 hwsim_radios=$RADIOS hwsim_net=${MQTT_PORT:+1}" \
    </dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$LOGFILE"
qrc=${PIPESTATUS[0]}
set -e
dt=$(( $(date +%s) - t0 ))
if grep -q '^SCENARIO PASS' "$LOGFILE"; then
    log "$NAME: PASS in ${dt}s (console: $LOGFILE)"
    exit 0
fi
[ "$qrc" = 124 ] && log "$NAME: VM timed out after ${TIMEOUT}s"
log "$NAME: FAIL in ${dt}s (qemu exit $qrc, console: $LOGFILE)"
exit 1
