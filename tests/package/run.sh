#!/usr/bin/env bash
# Tests of the OpenWrt packaging (openwrt-package/): the feed Makefile's invariants, the UCI
# defaults against the agent's own parser, the .ipk that build-ipk.sh assembles (layout,
# control fields, conffiles, modes, reproducibility), then the package installed, configured,
# run and removed in a chroot of the openwrt-userland stand-ins (opkg, uci, reload_config,
# ubus/procd, rc.common, procd.sh, validate_data: tests/package/README.md), one test per fact of
# shared/OPENWRT.md (tests/package/facts.sh).
#
# usage: tests/package/run.sh        (as root; needs cargo, python3, busybox: installs busybox-static)
set -euo pipefail

LOG_TAG=package
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"

PKG=openwrt-package
STANDINS="$REPO_ROOT/tests/package/standins"
[ "$(id -u)" = 0 ] || die "must run as root (the openwrt-userland root is a chroot)"
WORK=$(mktemp -d)
cleanup() {
    local r
    for r in "$WORK"/root-*; do [ -d "$r" ] && userland_stop "$r"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
fails=0
passes=0
pass() { log "ok: $*"; passes=$((passes + 1)); }
fail() { log "FAIL: $*"; fails=$((fails + 1)); }
check() {   # check DESCRIPTION CMD...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- tools --------------------------------------------------------------------------------
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing busybox-static"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
        BUSYBOX=$(command -v busybox)
    else
        die "busybox is missing (apt-get install busybox-static)"
    fi
fi

log "building wifisess-agent (debug) for check-config and as the packaged binary"
cargo build -q -p wifisess-agent --bin wifisess-agent
AGENT="$REPO_ROOT/target/debug/wifisess-agent"
[ -x "$AGENT" ] || die "$AGENT missing after cargo build"

# --- the feed Makefile ----------------------------------------------------------------------
mk() { sed -n "s/^$1:=//p" "$PKG/Makefile" | head -n 1; }
for line in 'PKG_BUILD_DEPENDS:=rust/host' 'DEPENDS:=$(RUST_ARCH_DEPENDS)' \
            'include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk' \
            '$(eval $(call RustBinPackage,wifisess))' '$(eval $(call BuildPackage,wifisess))' \
            '$(WIFISESS_SRC)/LICENSE-MIT $(WIFISESS_SRC)/LICENSE-APACHE' \
            'define Package/wifisess/conffiles' '/etc/config/wifisess' 'MAKE_PATH:=agent'; do
    check "Makefile has: $line" grep -qF -- "$line" "$PKG/Makefile"
done
check "PKG_MAINTAINER is 'Name <email>' ($(mk PKG_MAINTAINER))" \
    grep -qE '^[^<>]+ <[^@<> ]+@[^@<> ]+>$' <<<"$(mk PKG_MAINTAINER)"
check "PKG_LICENSE_FILES names LICENSE-MIT and LICENSE-APACHE" [ "$(mk PKG_LICENSE_FILES)" = "LICENSE-MIT LICENSE-APACHE" ]
check "LICENSE-MIT is the MIT text (wifisess developers)" \
    bash -c 'grep -q "^Permission is hereby granted, free of charge" LICENSE-MIT && grep -q "wifisess developers" LICENSE-MIT'
check "LICENSE-APACHE is the Apache License 2.0 text" \
    bash -c 'grep -q "Apache License" LICENSE-APACHE && grep -q "Version 2.0, January 2004" LICENSE-APACHE && grep -q "END OF TERMS AND CONDITIONS" LICENSE-APACHE'
# The packages feed sets the cargo profile of every Rust package (rust-values.mk:
# CARGO_PKG_CONFIG_VARS, panic=unwind among them); the package must not override it.
check "the Makefile leaves the feed's cargo settings alone (no CARGO_PROFILE_*, CARGO_PKG_VARS, RUSTFLAGS)" \
    bash -c '! grep -nE "CARGO_PROFILE_|CARGO_PKG_VARS|CARGO_PKG_CONFIG_VARS|RUSTFLAGS" "$1"' _ "$PKG/Makefile"
check "PKG_VERSION $(mk PKG_VERSION) is apk-valid (digits and dots)" \
    grep -qE '^[0-9]+(\.[0-9]+)*$' <<<"$(mk PKG_VERSION)"
check "PKG_RELEASE $(mk PKG_RELEASE) is a number" grep -qE '^[0-9]+$' <<<"$(mk PKG_RELEASE)"
cargo_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
check "PKG_VERSION equals the workspace version ($cargo_version)" \
    [ "$(mk PKG_VERSION)" = "$cargo_version" ]
# Build/Prepare narrows the workspace with a one-line sed on `members = [...]`.
check "Cargo.toml keeps 'members = [...]' on one line (Build/Prepare edits it)" \
    grep -qE '^members = \[.*\]$' Cargo.toml
mini="$WORK/mini"
mkdir "$mini"
cp -a Cargo.toml Cargo.lock wire agent "$mini/"
sed -n 's/^\t\$(SED) \(.*\) \$(PKG_BUILD_DIR)\/Cargo.toml$/\1/p' "$PKG/Makefile" >"$WORK/seds"
check "Build/Prepare has its two sed edits" [ "$(wc -l <"$WORK/seds")" -eq 2 ]
while read -r expr; do
    eval "sed -i -e $expr \"\$mini/Cargo.toml\""
done <"$WORK/seds"
members=$(cd "$mini" && cargo metadata --no-deps --offline --format-version 1 2>/dev/null \
    | python3 -c 'import json,sys; print(" ".join(sorted(p["name"] for p in json.load(sys.stdin)["packages"])))' \
    || true)
check "Build/Prepare's workspace has wire and agent only ($members)" \
    [ "$members" = "wifisess-agent wifisess-wire" ]

# --- UCI defaults -----------------------------------------------------------------------------
# check_config FILE OUT: the agent's own parser accepts FILE (its listing goes to OUT).
check_config() { "$AGENT" check-config --config "$1" >"$2" 2>&1 || { cat "$2" >&2; return 1; }; }
check "agent accepts files/wifisess.config" check_config "$PKG/files/wifisess.config" "$WORK/cc.out"
check "the default config keeps the service disabled" grep -qE '^enabled +"0"' "$WORK/cc.out"
# Uncommented, the placeholders' files must exist (the agent checks that they can be read).
for f in ca.crt client.crt client.key; do printf 'placeholder\n' >"$WORK/$f"; done
sed -E -e 's/^(\s*)#(option|list) /\1\2 /' \
    -e "s#^(\s*option ca_file )'[^']*'#\1'$WORK/ca.crt'#" \
    -e "s#^(\s*option cert_file )'[^']*'#\1'$WORK/client.crt'#" \
    -e "s#^(\s*option key_file )'[^']*'#\1'$WORK/client.key'#" \
    "$PKG/files/wifisess.config" >"$WORK/all.config"
check "agent accepts files/wifisess.config with every placeholder uncommented" \
    check_config "$WORK/all.config" "$WORK/cc-all.out"
for opt in enabled device_id organization group name broker username password ca_file \
           cert_file key_file topic_prefix poll_interval interim_interval rejoin_grace \
           batch_ms outbox_capacity spool_file mac_privacy mac_key log_level interface; do
    grep -qE "^$opt +\"" "$WORK/cc-all.out" || fail "option $opt (SPEC §3.4) missing from files/wifisess.config"
done
pass "files/wifisess.config names every option of SPEC §3.4"

# --- the .ipk ---------------------------------------------------------------------------------
out1=$(SOURCE_DATE_EPOCH=1700000000 "$PKG/build-ipk.sh" "$AGENT" x86_64 "$WORK/out1")
out2=$(SOURCE_DATE_EPOCH=1700000000 "$PKG/build-ipk.sh" "$AGENT" x86_64 "$WORK/out2")
check "file name is wifisess_VERSION-rRELEASE_ARCH.ipk" \
    [ "$(basename "$out1")" = "wifisess_$(mk PKG_VERSION)-r$(mk PKG_RELEASE)_x86_64.ipk" ]
check "the same inputs give the same bytes" cmp -s "$out1" "$out2"
if "$PKG/build-ipk.sh" "$AGENT" mips_24kc "$WORK/out3" >/dev/null 2>"$WORK/arch.err"; then
    fail "an x86-64 binary was packaged as mips_24kc"
else
    check "an x86-64 binary is refused for mips_24kc" grep -q 'not a mips_24kc binary' "$WORK/arch.err"
fi

WORK="$WORK" python3 - "$out1" "$AGENT" "$(mk PKG_VERSION)-r$(mk PKG_RELEASE)" >"$WORK/ipk.log" 2>&1 <<'EOF' \
    && pass "ipk layout, control fields, conffiles, modes (tests/package/run.sh python block)" \
    || { cat "$WORK/ipk.log" >&2; fail "ipk checks"; }
import gzip, io, os, sys, tarfile

ipk, agent, version = sys.argv[1:]
errors = []
def expect(cond, what):
    if not cond:
        errors.append(what)

raw = open(ipk, "rb").read()
expect(raw[:2] == b"\x1f\x8b", "outer archive is gzip (ipkg-build's tar.gz)")
outer = tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz")
names = outer.getnames()
expect(names == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"],
       f"outer members in ipkg-build order: {names}")
members = {m.name: m for m in outer.getmembers()}
expect(outer.extractfile("./debian-binary").read() == b"2.0\n", "debian-binary is 2.0")

def inner(name):
    data = outer.extractfile(name).read()
    expect(data[:2] == b"\x1f\x8b", f"{name} is gzip")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")

def common(tf, label):
    ms = tf.getmembers()
    for m in ms:
        expect(m.uid == 0 and m.gid == 0 and m.uname in ("", "root") and m.gname in ("", "root"),
               f"{label}:{m.name} owned by root (0:0), got {m.uid}:{m.gid} {m.uname}:{m.gname}")
        expect(m.mtime == 1700000000, f"{label}:{m.name} mtime is SOURCE_DATE_EPOCH")
    # sorted as tar --sort=name writes them: each directory's entries by name
    expect([m.name for m in ms] == sorted(m.name for m in ms), f"{label} entries sorted")
    return {m.name.rstrip("/"): m for m in ms}

for m in outer.getmembers():
    expect(m.uid == 0 and m.gid == 0 and m.mode == 0o644, f"outer {m.name} 0644 root")

data = inner("./data.tar.gz")
d = common(data, "data")
want = {
    ".": (tarfile.DIRTYPE, 0o755), "./usr": (tarfile.DIRTYPE, 0o755),
    "./usr/bin": (tarfile.DIRTYPE, 0o755), "./etc": (tarfile.DIRTYPE, 0o755),
    "./etc/init.d": (tarfile.DIRTYPE, 0o755), "./etc/config": (tarfile.DIRTYPE, 0o755),
    "./usr/bin/wifisess-agent": (tarfile.REGTYPE, 0o755),
    "./etc/init.d/wifisess": (tarfile.REGTYPE, 0o755),
    "./etc/config/wifisess": (tarfile.REGTYPE, 0o600),
}
expect(set(d) == set(want), f"data entries: {sorted(d)}")
for name, (typ, mode) in want.items():
    if name in d:
        expect(d[name].type == typ, f"{name} type")
        expect(d[name].mode == mode, f"{name} mode {oct(d[name].mode)} != {oct(mode)}")
expect(data.extractfile("./usr/bin/wifisess-agent").read() == open(agent, "rb").read(),
       "usr/bin/wifisess-agent is the given binary")
expect(data.extractfile("./etc/init.d/wifisess").read()
       == open("openwrt-package/files/wifisess.init", "rb").read(), "init script")
expect(data.extractfile("./etc/config/wifisess").read()
       == open("openwrt-package/files/wifisess.config", "rb").read(), "UCI config")
installed = sum(m.size for m in data.getmembers() if m.isreg())

control = inner("./control.tar.gz")
c = common(control, "control")
expect(set(c) == {".", "./control", "./conffiles", "./postinst", "./prerm"},
       f"control entries: {sorted(c)}")
for name, mode in {"./control": 0o644, "./conffiles": 0o644, "./postinst": 0o755,
                   "./prerm": 0o755}.items():
    if name in c:
        expect(c[name].mode == mode, f"control {name} mode {oct(c[name].mode)}")
text = control.extractfile("./control").read().decode()
fields, last = {}, None
for line in text.splitlines():
    if line.startswith(" ") and last:
        fields[last] += "\n" + line
    else:
        k, _, v = line.partition(": ")
        fields[k], last = v, k
expect(text.endswith("\n"), "control ends with a newline")
for k in ["Package", "Version", "Depends", "Architecture", "Installed-Size", "Description",
          "Maintainer", "License", "SourceName", "Section"]:
    expect(fields.get(k, "").strip() != "", f"control field {k}")
expect(fields.get("Package") == "wifisess", "Package: wifisess")
expect(fields.get("Version") == version, f"Version: {version}")
expect(fields.get("Architecture") == "x86_64", "Architecture: x86_64")
expect("libc" in fields.get("Depends", ""), "Depends names libc")
expect(fields.get("Installed-Size") == str(installed),
       f"Installed-Size {fields.get('Installed-Size')} = data file bytes {installed}")
expect(control.extractfile("./conffiles").read() == b"/etc/config/wifisess\n",
       "conffiles lists /etc/config/wifisess")
for s in ("./postinst", "./prerm"):
    body = control.extractfile(s).read().decode()
    expect(body.startswith("#!/bin/sh\n"), f"{s} is a sh script")
    expect(("default_postinst" if s == "./postinst" else "default_prerm") in body,
           f"{s} calls OpenWrt's default helper")
    open(os.path.join(os.environ["WORK"], s[2:]), "w").write(body)

if errors:
    print("\n".join("ipk: " + e for e in errors))
    sys.exit(1)
print("ipk ok:", ipk)
EOF
for s in postinst prerm; do
    check "$s parses under busybox ash" "$BUSYBOX" ash -n "$WORK/$s"
done

# --- the init script ------------------------------------------------------------------------
root="$WORK/root"
mkdir -p "$root"
tar -xzf "$out1" -O ./data.tar.gz | tar -xzf - -C "$root"
INIT="$root/etc/init.d/wifisess"
check "init script parses under busybox ash" "$BUSYBOX" ash -n "$INIT"
check "init script uses /etc/rc.common" grep -qx '#!/bin/sh /etc/rc.common' "$INIT"

check "init script validates its section the OpenWrt way (uci_load_validate, procd_add_validation)" \
    bash -c 'grep -q "uci_load_validate wifisess agent" "$1" && grep -q "procd_add_validation validate_wifisess_section" "$1"' _ "$INIT"

# --- the package in the openwrt-userland stand-in root: one test per fact of OPENWRT.md ------
IPK="$out1"
. "$REPO_ROOT/tests/package/facts.sh"
log "the package against the openwrt-userland stand-ins (shared/OPENWRT.md facts 1-12):"
run_facts

printf 'package: %d passed, %d failed\n' "$passes" "$fails"
if [ "$fails" -ne 0 ]; then
    die "$fails package check(s) failed"
fi
log "all package checks passed"
