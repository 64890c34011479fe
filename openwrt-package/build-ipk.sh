#!/usr/bin/env bash
# Assembles an installable wifisess .ipk from an already built agent binary, without the
# OpenWrt SDK (for quick field tests; release packages come from the feed Makefile).
#
# usage: openwrt-package/build-ipk.sh BINARY ARCH [OUTDIR]
#   BINARY  a wifisess-agent built for the router (e.g. target/mipsel-unknown-linux-musl/
#           release/wifisess-agent, see docs/PACKAGING.md), stripped
#   ARCH    the OpenWrt package architecture: mipsel_24kc, mips_24kc, aarch64_cortex-a53,
#           arm_cortex-a7_neon-vfpv4, x86_64, ... (`opkg print-architecture` on the router)
#   OUTDIR  where the .ipk goes (default: the current directory)
# environment:
#   SOURCE_DATE_EPOCH  mtime of every archive entry (default: the commit time of HEAD, else 0)
#
# The .ipk is what OpenWrt's ipkg-build makes: a gzip'd tar of ./debian-binary, ./data.tar.gz
# and ./control.tar.gz, entries owned by root (0:0), sorted, with a fixed mtime, so the same
# inputs give the same bytes. Install with `opkg install /tmp/wifisess_*.ipk`.
set -euo pipefail

die() { printf 'build-ipk: %s\n' "$*" >&2; exit 2; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 BINARY ARCH [OUTDIR]"
BINARY=$1
ARCH=$2
OUTDIR=${3:-.}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ -f "$BINARY" ] || die "$BINARY: no such file"
[[ "$ARCH" =~ ^[a-z0-9_-]+$ ]] || die "$ARCH: not an OpenWrt architecture name"
[ "$(head -c 4 "$BINARY" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] \
    || die "$BINARY: not an ELF executable"

# --- the binary must be for ARCH (a mips_24kc router cannot run a mipsel binary) ----------
elf_machine=$(LC_ALL=C readelf -h "$BINARY" | sed -n 's/^ *Machine: *//p')
elf_data=$(LC_ALL=C readelf -h "$BINARY" | sed -n 's/^ *Data: *//p')
case "$ARCH" in
    x86_64) want='X86-64'; endian=little ;;
    aarch64_*) want='AArch64'; endian=little ;;
    arm_*) want='ARM'; endian=little ;;
    mipsel_*) want='MIPS'; endian=little ;;
    mips_*) want='MIPS'; endian=big ;;
    i386_*) want='80386'; endian=little ;;
    *) want=''; endian='' ;;
esac
if [ -n "$want" ]; then
    [[ "$elf_machine" == *"$want"* && "$elf_data" == *"$endian endian"* ]] \
        || die "$BINARY is '$elf_machine, $elf_data', not a $ARCH binary"
else
    printf 'build-ipk: warning: %s: unknown architecture, binary not checked\n' "$ARCH" >&2
fi

# --- version and metadata from the feed Makefile (one place to bump) ----------------------
mk_var() { sed -n "s/^$1:=//p" "$HERE/Makefile" | head -n 1; }
PKG_NAME=$(mk_var PKG_NAME)
PKG_VERSION=$(mk_var PKG_VERSION)
PKG_RELEASE=$(mk_var PKG_RELEASE)
LICENSE=$(mk_var PKG_LICENSE)
MAINTAINER=$(mk_var PKG_MAINTAINER)
[ -n "$PKG_NAME" ] && [ -n "$PKG_VERSION" ] && [ -n "$PKG_RELEASE" ] \
    || die "$HERE/Makefile: PKG_NAME, PKG_VERSION or PKG_RELEASE not found"
VERSION="$PKG_VERSION-r$PKG_RELEASE"     # as OpenWrt 23.05+ and apk name it

# libgcc_s is a package of its own on OpenWrt (a dynamically linked musl build needs it;
# the static builds of `cross` do not).
DEPENDS=libc
if LC_ALL=C readelf -d "$BINARY" 2>/dev/null | grep -q 'NEEDED.*libgcc_s'; then
    DEPENDS="libc, libgcc1"
fi

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$HERE" log -1 --format=%ct 2>/dev/null || echo 0)
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH: not a number"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 022

# --- data ---------------------------------------------------------------------------------
D="$WORK/data"
install -d -m 0755 "$D/usr/bin" "$D/etc/init.d" "$D/etc/config"
install -m 0755 "$BINARY" "$D/usr/bin/wifisess-agent"
install -m 0755 "$HERE/files/wifisess.init" "$D/etc/init.d/wifisess"
# 0600: the file may hold the broker password and the MAC privacy key.
install -m 0600 "$HERE/files/wifisess.config" "$D/etc/config/wifisess"
installed_size=$(find "$D" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

# --- control ------------------------------------------------------------------------------
C="$WORK/control"
install -d -m 0755 "$C"
cat >"$C/control" <<EOF
Package: $PKG_NAME
Version: $VERSION
Depends: $DEPENDS
Source: openwrt-package
SourceName: $PKG_NAME
License: $LICENSE
Section: net
SourceDateEpoch: $SOURCE_DATE_EPOCH
Maintainer: $MAINTAINER
Architecture: $ARCH
Installed-Size: $installed_size
Description: Wi-Fi client sessions over MQTT (wifisess agent). wifisess-agent watches the
 access point's Wi-Fi clients through nl80211, turns associations into sessions and
 publishes them as CBOR batches over MQTT to a wifisess collector.
EOF
printf '/etc/config/wifisess\n' >"$C/conffiles"
# OpenWrt's own maintainer scripts: default_postinst enables (and starts) the package's init
# scripts, default_prerm stops and disables them. The service starts nothing until
# `option enabled 1` is set.
cat >"$C/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
cat >"$C/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
chmod 0755 "$C/postinst" "$C/prerm"
chmod 0644 "$C/control" "$C/conffiles"

# --- archives -----------------------------------------------------------------------------
TAR_OPTS=(--format=gnu --sort=name --owner=0 --group=0 --numeric-owner
          "--mtime=@$SOURCE_DATE_EPOCH")
P="$WORK/pkg"
mkdir "$P"
tar "${TAR_OPTS[@]}" -C "$D" -cf - . | gzip -9n >"$P/data.tar.gz"
tar "${TAR_OPTS[@]}" -C "$C" -cf - . | gzip -9n >"$P/control.tar.gz"
printf '2.0\n' >"$P/debian-binary"
chmod 0644 "$P"/*
touch -d "@$SOURCE_DATE_EPOCH" "$P"/*

mkdir -p "$OUTDIR"
OUT="$OUTDIR/${PKG_NAME}_${VERSION}_${ARCH}.ipk"
# Member order as ipkg-build writes it (--sort only orders what tar finds in directories).
tar "${TAR_OPTS[@]}" -C "$P" -cf - \
    ./debian-binary ./data.tar.gz ./control.tar.gz | gzip -9n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
printf '%s\n' "$OUT"
