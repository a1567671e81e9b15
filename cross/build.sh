#!/usr/bin/env bash
# Builds pinch release binaries for the edge targets and leaves each one at
# target/<triple>/release/pinch, linked against the glibc baseline.
#
#   cross/build.sh [TRIPLE...]
#
# Default triples: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu,
# armv7-unknown-linux-gnueabihf, arm-unknown-linux-gnueabihf (ARMv6 with
# hard float: Raspberry Pi OS on a Pi 1 / Zero) when Debian's rust-web-src
# is installed, and armv5te-unknown-linux-gnueabi when its toolchain is
# installed (cross/setup-armel.sh).
#
# Linking: through Zig with cargo-zigbuild (cross/setup-zig.sh puts both in
# ~/.cache/pinch/zig-venv), against glibc $PINCH_GLIBC (default 2.17): the
# binary then needs no glibc symbol newer than that. PINCH_ZIG=0 links with
# the cross gcc instead (the build machine's glibc becomes the floor).
#
# Compiler: Debian's rustc 1.85 (/usr/bin/rustc, the project's MSRV) when
# its standard library for the target is in /usr/lib/rustlib; for armv5te
# the Debian 13 rustc 1.85.1 that cross/setup-armel.sh unpacks under
# ~/.cache/pinch/rust-armel; for arm-unknown-linux-gnueabihf, which no
# Debian release packages a standard library for, Debian's rustc 1.85
# building the standard library from Debian's rust-web-src (cargo's
# -Zbuild-std, enabled on the stable compiler with RUSTC_BOOTSTRAP=1); else
# rustup's toolchain when
# `rustup target list --installed` has the target. PINCH_TOOLCHAIN=debian or
# PINCH_TOOLCHAIN=rustup forces one.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PINCH_CACHE:-$HOME/.cache/pinch}
ZIGBIN="$CACHE/zig-venv/bin"
ARMEL_RUSTC="$CACHE/rust-armel/rustc"
BASELINE=${PINCH_GLIBC:-2.17}
STD_SRC=/usr/lib/rustlib/src/rust/library
DEFAULT=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
[ -d "$STD_SRC/std" ] && [ -x /usr/bin/rustc ] && DEFAULT+=(arm-unknown-linux-gnueabihf)
[ -x "$ARMEL_RUSTC" ] && DEFAULT+=(armv5te-unknown-linux-gnueabi)
[ $# -gt 0 ] || set -- "${DEFAULT[@]}"
export CARGO_TARGET_DIR=target

debian_has() {
    [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] \
        && ls "/usr/lib/rustlib/$1/lib"/libstd-*.rlib >/dev/null 2>&1
}
rustup_has() {
    command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$1"
}

toolchain_for() {
    case "${PINCH_TOOLCHAIN:-auto}" in
        debian) echo debian ;;
        rustup) echo rustup ;;
        *)
            if [ "$1" = armv5te-unknown-linux-gnueabi ] && [ -x "$ARMEL_RUSTC" ] && [ -x /usr/bin/cargo ]; then echo armel
            elif debian_has "$1"; then echo debian
            elif [ "$1" = arm-unknown-linux-gnueabihf ] && [ -d "$STD_SRC/std" ] && [ -x /usr/bin/cargo ]; then echo build-std
            elif rustup_has "$1"; then echo rustup
            else echo none
            fi ;;
    esac
}

# $CARGO names the cargo to run (default: the first in PATH).
CARGO=${CARGO:-cargo}

use_zig() { [ "${PINCH_ZIG:-1}" != 0 ]; }
if use_zig && [ ! -x "$ZIGBIN/cargo-zigbuild" ]; then
    echo "cross/build: cargo-zigbuild is not in $ZIGBIN: run cross/setup-zig.sh (or PINCH_ZIG=0 to link with gcc against this machine's glibc)" >&2
    exit 1
fi

for t in "$@"; do
    tc=$(toolchain_for "$t")
    start=$(date +%s)
    # `cargo zigbuild --target T.2.17` links with `zig cc` against glibc 2.17
    # stubs; the output still lands in target/T/release.
    if use_zig; then build=(zigbuild --release --locked --target "$t.$BASELINE"); how="zig, glibc $BASELINE"
    else build=(build --release --locked --target "$t"); how="gcc, this machine's glibc"; fi
    case "$tc" in
        debian)
            echo "cross/build: $t with $(/usr/bin/rustc --version) ($how)" >&2
            env PATH="$ZIGBIN:/usr/bin:$PATH" RUSTC=/usr/bin/rustc "$CARGO" "${build[@]}"
            ;;
        build-std)
            echo "cross/build: $t with $(/usr/bin/rustc --version), standard library built from $STD_SRC ($how)" >&2
            env PATH="$ZIGBIN:/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
                "$CARGO" "${build[@]}" -Zbuild-std=std,panic_abort
            ;;
        armel)
            echo "cross/build: $t with $("$ARMEL_RUSTC" --version) ($how)" >&2
            env PATH="$ZIGBIN:/usr/bin:$PATH" RUSTC="$ARMEL_RUSTC" "$CARGO" "${build[@]}"
            ;;
        rustup)
            echo "cross/build: $t with $(rustc --version) (rustup; $how)" >&2
            env PATH="$ZIGBIN:$PATH" "$CARGO" "${build[@]}"
            ;;
        *)
            echo "cross/build: no toolchain for $t." >&2
            echo "  Debian 12: sudo cross/setup.sh   (rustc 1.85 with arm64/armhf std, cross gcc, qemu)" >&2
            echo "  armv5te:   sudo cross/setup-armel.sh" >&2
            echo "  armv6 hf:  sudo cross/setup.sh (installs rust-web-src)" >&2
            echo "  rustup:    rustup target add $t" >&2
            exit 1
            ;;
    esac
    bin="target/$t/release/pinch"
    [ -x "$bin" ] || { echo "cross/build: $bin was not produced" >&2; exit 1; }
    printf 'cross/build: %s  %s bytes  (%ss)\n' "$bin" "$(stat -c %s "$bin")" "$(( $(date +%s) - start ))"
done
