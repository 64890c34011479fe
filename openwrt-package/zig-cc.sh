#!/usr/bin/env bash
# Linker for the static musl soft-float MIPS build of the agent: rustc's `cc` command line,
# handed to zig's clang driver (PyPI `ziglang`, `python3 -m ziglang cc`), which brings musl,
# its start files and libunwind for the target. No MIPS musl toolchain needed.
#
#   CARGO_TARGET_MIPSEL_UNKNOWN_LINUX_MUSL_LINKER=openwrt-package/zig-cc.sh \
#   RUSTC_BOOTSTRAP=1 cargo build -Zbuild-std=std,panic_abort --release \
#       --target mipsel-unknown-linux-musl -p wifisess-agent
#
# environment:
#   ZIG_TARGET  zig's target triple (default mipsel-linux-musl; big-endian: mips-linux-musl)
#   ZIG_CPU     zig's -mcpu (default mips32r2+soft_float: OpenWrt's mips(el)_24kc, which has
#               no FPU; rustc's mips*-unknown-linux-musl targets are soft-float too)
#   ZIG         how to run zig (default: python3 -m ziglang)
#
# What it changes in rustc's arguments (tests/mips/README.md):
#   - drops the crt1.o/crti.o/crtbegin.o/crtend.o/crtn.o rustc names (its self-contained musl
#     start files, which a -Zbuild-std sysroot does not have) and -nostartfiles, so zig links
#     its own start files for the musl it builds;
#   - adds zig's -target and -mcpu.
set -euo pipefail

args=()
for a in "$@"; do
    case "$a" in
        -nostartfiles) ;;
        */crt1.o|*/crti.o|*/crtn.o|*/crtbegin.o|*/crtend.o|*/crtbeginS.o|*/crtendS.o|*/rcrt1.o|*/Scrt1.o) ;;
        crt1.o|crti.o|crtn.o|crtbegin.o|crtend.o|crtbeginS.o|crtendS.o|rcrt1.o|Scrt1.o) ;;
        *) args+=("$a") ;;
    esac
done

# shellcheck disable=SC2086
exec ${ZIG:-python3 -m ziglang} cc -target "${ZIG_TARGET:-mipsel-linux-musl}" \
    -mcpu="${ZIG_CPU:-mips32r2+soft_float}" "${args[@]}"
