#!/usr/bin/env bash
# Installs everything the wifisess test suites need on Debian 12 (bookworm), as root.
# Idempotent: what is already there is left alone; `apt-get update` runs only when something is
# missing. Safe to run on every test run and in CI (no prompts, quiet output, one line per step).
#
# usage: tests/lib/install-deps.sh [GROUP...]      (default: all groups)
#   services  mosquitto, mosquitto-clients, sqlite3, netcat-openbsd, openssl, postgresql
#             (cargo test --workspace; openssl makes the CA of agent/tests/mqtt_tls.rs and the
#             certificate of the PostgreSQL TLS test; the PostgreSQL store tests start their
#             own throwaway cluster with initdb/pg_ctl, the system service is not used)
#   vmlab     qemu-system-x86, hostapd, wpasupplicant, iw, busybox-static, cpio, netcat-openbsd
#             (tests/hwsim: the mac80211_hwsim VM lab)
#   browser   chromium                                                   (dashboard tests)
#   cross     Debian's Rust 1.85 (/usr/bin/rustc, /usr/bin/cargo), its standard library for
#             s390x and armv7, the cross linkers and qemu-user           (tests/cross)
#   mips      Debian's rust-web-src (the std sources for -Zbuild-std, same version as rustc-web),
#             the MIPS gcc cross linkers and libcs, qemu-user, and Python's ziglang 0.13 (links
#             the static musl soft-float agent)                           (tests/mips)
#   python    Python module cbor2                                        (wire golden cross-check)
#   rust      rustfmt and clippy components of the rustup toolchain      (.ci/run)
#
# environment:
#   WIFISESS_DEBIAN_RUST   Debian Rust series to install for the cross tests (default 1.85, the
#                          rust-version of the agent and wire crates). The newest Debian
#                          revision of that series is taken (e.g. a later ~deb12uN).
#   WIFISESS_CACHE         download cache (default ~/.cache/wifisess); .debs go to $WIFISESS_CACHE/debs
#   WIFISESS_SKIP_INSTALL  set to 1 to do nothing (for machines set up by hand)
set -euo pipefail

LOG_TAG=install-deps
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ "${WIFISESS_SKIP_INSTALL:-0}" = 1 ]; then
    log "WIFISESS_SKIP_INSTALL=1: skipping"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
DEBIAN_RUST="${WIFISESS_DEBIAN_RUST:-1.85}"
DEB_CACHE="$WIFISESS_CACHE/debs"
LOG_DIR="$WIFISESS_CACHE/logs"
mkdir -p "$DEB_CACHE" "$LOG_DIR"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "must run as root (or with sudo available)"
    SUDO="sudo"
fi

# ---------------------------------------------------------------------------------------------
# apt helpers

APT_UPDATED=0
APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
          -o Dpkg::Options::=--force-confold)

# apt_run LOGNAME ARGS... : runs apt-get quietly into a log; retries when another apt/dpkg holds
# the lock (other engineers and scripts share this machine); shows the log's tail on failure.
apt_run() {
    local name="$1"; shift
    local logf="$LOG_DIR/apt-$name.log" try rc
    for try in 1 2 3 4 5 6; do
        set +e
        $SUDO apt-get "${APT_OPTS[@]}" "$@" </dev/null >"$logf" 2>&1
        rc=$?
        set -e
        [ "$rc" -eq 0 ] && return 0
        if grep -qiE 'could not get lock|unable to acquire|is another process using it' "$logf"; then
            log "apt is busy (another apt/dpkg is running); retrying in 20 s ($try/6)"
            sleep 20
            continue
        fi
        break
    done
    if [ "${QUIET_FAIL:-0}" != 1 ]; then
        log "apt-get $* failed (exit $rc); last lines of $logf:"
        tail -n 25 "$logf" >&2
    fi
    return "$rc"
}

# apt_update: once per run (again only after a new architecture was added). A failing index
# (e.g. a third-party source that is unreachable) is a warning, not an error: the packages
# we need are checked afterwards anyway.
apt_update() {
    [ "$APT_UPDATED" = 1 ] && return 0
    log "apt-get update"
    if ! QUIET_FAIL=1 apt_run update update; then
        log "warning: apt-get update had errors; continuing with the indexes it got:"
        grep -E '^(E|W):' "$LOG_DIR/apt-update.log" | head -n 5 | sed 's/^/    /' >&2 || true
    fi
    APT_UPDATED=1
}

is_installed() {   # is_installed PKG [VERSION]
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null) || return 1
    case "$st" in
        "ii "*) ;;
        *) return 1 ;;
    esac
    [ -z "${2:-}" ] || [ "${st#ii  }" = "$2" ] || [ "${st#ii }" = "$2" ]
}

# ensure_pkgs GROUP PKG... : installs the packages that are not installed yet (PKG may be
# NAME=VERSION: installed at exactly that version, downgrading if needed).
ensure_pkgs() {
    local group="$1"; shift
    local missing=() p name ver
    for p in "$@"; do
        name="${p%%=*}"
        ver=""
        [ "$name" != "$p" ] && ver="${p#*=}"
        is_installed "$name" "$ver" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "$group: all present ($*)"
        return 0
    fi
    apt_update
    log "$group: installing ${missing[*]}"
    local rec=--no-install-recommends
    [ "${WITH_RECOMMENDS:-0}" = 1 ] && rec=--install-recommends
    apt_run "install-$group" install "$rec" --allow-downgrades "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# groups

group_services() {
    ensure_pkgs services mosquitto mosquitto-clients sqlite3 netcat-openbsd openssl postgresql
    # The tests start their own brokers on free ports; Debian's package also starts a system
    # broker on 1883 where systemd runs. Leave it alone: nothing of ours uses port 1883.
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || die "mosquitto missing after install"
    # Debian's package may start a system cluster on 5432 where systemd runs: left alone too.
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "PostgreSQL's initdb missing after install"
}

group_vmlab() {
    ensure_pkgs vmlab qemu-system-x86 hostapd wpasupplicant iw busybox-static cpio netcat-openbsd
}

group_browser() {
    # With its recommends (fonts among them), so screenshots show real text.
    WITH_RECOMMENDS=1 ensure_pkgs browser chromium
}

# Picks the Debian version of rustc-web for the wanted series: the newest "<series>.*" one that
# apt offers (bookworm-security may offer a newer series as the candidate; we do not want it).
pick_debian_rust_version() {
    apt-cache madison rustc-web 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
        | grep -E "^${DEBIAN_RUST//./\\.}\.[0-9]+\+" | sort -V | tail -n 1 || true
}

group_cross() {
    ensure_pkgs cross-tools qemu-user-static gcc-s390x-linux-gnu gcc-arm-linux-gnueabihf \
        libc6-dev-s390x-cross libc6-dev-armhf-cross

    # Debian's Rust. If it is installed at some revision of the wanted series, keep it.
    local ver="" cur
    cur=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || true)
    if [[ "$cur" == "$DEBIAN_RUST".* ]] && is_installed rustc-web "$cur" \
        && is_installed cargo-web "$cur" && is_installed libstd-rust-web-dev "$cur" \
        && is_installed "libstd-rust-web-$DEBIAN_RUST" "$cur"; then
        ver="$cur"
        log "debian-rust: rustc-web $ver present"
    else
        ver=$(pick_debian_rust_version)
        if [ -z "$ver" ]; then
            apt_update
            ver=$(pick_debian_rust_version)
        fi
        [ -n "$ver" ] || die "apt offers no rustc-web $DEBIAN_RUST.* (apt-cache madison rustc-web); set WIFISESS_DEBIAN_RUST to a series it offers"
        [ "$ver" = "1.85.0+dfsg3-1~deb12u3" ] || log "debian-rust: note: using $ver (LAB.md verified 1.85.0+dfsg3-1~deb12u3)"
        ensure_pkgs debian-rust "rustc-web=$ver" "cargo-web=$ver" "libstd-rust-web-dev=$ver" \
            "libstd-rust-web-$DEBIAN_RUST=$ver"
    fi
    /usr/bin/rustc --version >/dev/null 2>&1 || die "/usr/bin/rustc does not run after install"

    # Foreign standard libraries: apt cannot install them (multi-arch conflicts), so download
    # the .deb of the same version (cached) and unpack just its usr/lib/rustlib/<target>.
    local pair arch target deb tmp stamp todo=() need_download=()
    for pair in s390x:s390x-unknown-linux-gnu armhf:armv7-unknown-linux-gnueabihf; do
        arch="${pair%%:*}"
        target="${pair#*:}"
        stamp="/usr/lib/rustlib/$target/wifisess-deb-version"
        if [ -d "/usr/lib/rustlib/$target/lib" ]; then
            if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" = "$ver" ]; then
                log "rust-std $target: present"
                continue
            fi
            log "rust-std $target: is $(cat "$stamp"), want $ver: replacing"
        fi
        todo+=("$pair")
        deb="$DEB_CACHE/libstd-rust-web-dev_${ver//:/%3a}_${arch}.deb"
        [ -s "$deb" ] || need_download+=("$arch")
    done
    if [ "${#need_download[@]}" -gt 0 ]; then
        for arch in "${need_download[@]}"; do
            if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
                log "rust-std: dpkg --add-architecture $arch"
                $SUDO dpkg --add-architecture "$arch"
                APT_UPDATED=0
            fi
            if ! apt-cache show "libstd-rust-web-dev:$arch=$ver" >/dev/null 2>&1; then
                APT_UPDATED=0
            fi
        done
        apt_update
    fi
    for pair in "${todo[@]}"; do
        arch="${pair%%:*}"
        target="${pair#*:}"
        stamp="/usr/lib/rustlib/$target/wifisess-deb-version"
        deb="$DEB_CACHE/libstd-rust-web-dev_${ver//:/%3a}_${arch}.deb"
        if [ ! -s "$deb" ]; then
            log "rust-std $target: downloading libstd-rust-web-dev:$arch=$ver"
            tmp=$(mktemp -d)
            (cd "$tmp" && apt_run "download-$arch" download "libstd-rust-web-dev:$arch=$ver") \
                || die "could not download libstd-rust-web-dev:$arch=$ver"
            mv "$tmp"/*.deb "$deb"
            rm -rf "$tmp"
        else
            log "rust-std $target: using cached $(basename "$deb")"
        fi
        tmp=$(mktemp -d)
        dpkg -x "$deb" "$tmp"
        [ -d "$tmp/usr/lib/rustlib/$target/lib" ] || die "$deb has no usr/lib/rustlib/$target/lib"
        $SUDO mkdir -p /usr/lib/rustlib
        $SUDO rm -rf "/usr/lib/rustlib/$target"
        $SUDO cp -a "$tmp/usr/lib/rustlib/$target" /usr/lib/rustlib/
        echo "$ver" | $SUDO tee "$stamp" >/dev/null
        rm -rf "$tmp"
        log "rust-std $target: installed into /usr/lib/rustlib/$target"
    done
}

# The MIPS stage (tests/mips/run.sh, LAB.md §6). Needs the cross group's Debian Rust: the std
# sources must be the very version of /usr/bin/rustc, whose sysroot they land in
# (/usr/lib/rustlib/src/rust).
ZIGLANG_VERSION=0.13.0
group_mips() {
    ensure_pkgs mips-tools qemu-user-static gcc-mipsel-linux-gnu gcc-mips-linux-gnu \
        libc6-dev-mipsel-cross libc6-dev-mips-cross
    local ver
    ver=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || true)
    is_installed rustc-web "$ver" || die "mips: Debian's rustc-web is missing (install-deps.sh cross first)"
    ensure_pkgs mips-std-src "rust-web-src=$ver"
    [ -f /usr/lib/rustlib/src/rust/library/std/Cargo.toml ] \
        || die "mips: rust-web-src installed no /usr/lib/rustlib/src/rust/library/std"

    if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("ziglang"))' 2>/dev/null)" \
            = "$ZIGLANG_VERSION" ]; then
        log "mips: ziglang $ZIGLANG_VERSION present"
    else
        log "mips: pip install ziglang==$ZIGLANG_VERSION"
        pip_install "ziglang==$ZIGLANG_VERSION"
    fi
    python3 -m ziglang version >/dev/null 2>&1 || die "mips: python3 -m ziglang does not run"
}

# pip_install SPEC : pip install into python3, allowing Debian's externally-managed Python.
pip_install() {
    local logf="$LOG_DIR/pip-${1%%[=<>]*}.log"
    if ! python3 -m pip install -q --disable-pip-version-check "$1" </dev/null >"$logf" 2>&1; then
        if grep -q externally-managed "$logf"; then
            python3 -m pip install -q --disable-pip-version-check --break-system-packages "$1" \
                </dev/null >"$logf" 2>&1 || { tail -n 20 "$logf" >&2; die "pip install $1 failed"; }
        else
            tail -n 20 "$logf" >&2
            die "pip install $1 failed"
        fi
    fi
}

group_python() {
    if python3 -c 'import cbor2' 2>/dev/null; then
        log "python: cbor2 present"
        return 0
    fi
    log "python: pip install cbor2"
    pip_install cbor2
    python3 -c 'import cbor2' || die "cbor2 still not importable by $(command -v python3)"
}

group_rust() {
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "rust: rustfmt and clippy present"
        return 0
    fi
    command -v rustup >/dev/null || die "cargo ${missing[*]} missing and no rustup to add them"
    log "rust: rustup component add ${missing[*]}"
    rustup component add "${missing[@]}" </dev/null >"$LOG_DIR/rustup.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/rustup.log" >&2; die "rustup component add ${missing[*]} failed"; }
}

# ---------------------------------------------------------------------------------------------

ALL_GROUPS=(rust services vmlab python cross mips browser)
GROUPS_TO_RUN=("$@")
[ "${#GROUPS_TO_RUN[@]}" -gt 0 ] || GROUPS_TO_RUN=("${ALL_GROUPS[@]}")

t0=$(now_s)
for g in "${GROUPS_TO_RUN[@]}"; do
    case "$g" in
        rust|services|vmlab|browser|cross|mips|python) "group_$g" ;;
        *) die "unknown group '$g' (known: ${ALL_GROUPS[*]})" ;;
    esac
done
log "done in $(( $(now_s) - t0 )) s"
