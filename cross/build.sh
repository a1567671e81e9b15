#!/usr/bin/env bash
# Builds pinch release binaries for the edge targets and leaves each one at
# target/<triple>/release/pinch.
#
#   cross/build.sh [TRIPLE...]
#
# Default triples: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu and
# armv7-unknown-linux-gnueabihf. Each target is built with Debian's rustc
# 1.85 (/usr/bin/cargo + /usr/bin/rustc, the project's MSRV) when its
# standard library is in /usr/lib/rustlib, else with rustup's toolchain when
# `rustup target list --installed` has the target. PINCH_TOOLCHAIN=debian or
# PINCH_TOOLCHAIN=rustup forces one.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
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
            if debian_has "$1"; then echo debian
            elif rustup_has "$1"; then echo rustup
            else echo none
            fi ;;
    esac
}

for t in "$@"; do
    tc=$(toolchain_for "$t")
    start=$(date +%s)
    case "$tc" in
        debian)
            echo "cross/build: $t with $(/usr/bin/rustc --version)" >&2
            env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc \
                /usr/bin/cargo build --release --locked --target "$t"
            ;;
        rustup)
            echo "cross/build: $t with $(rustc --version) (rustup)" >&2
            cargo build --release --locked --target "$t"
            ;;
        *)
            echo "cross/build: no toolchain for $t." >&2
            echo "  Debian 12: sudo cross/setup.sh   (rustc 1.85 with arm64/armhf std, cross gcc, qemu)" >&2
            echo "  rustup:    rustup target add $t  (plus a cross gcc for the linker)" >&2
            exit 1
            ;;
    esac
    bin="target/$t/release/pinch"
    [ -x "$bin" ] || { echo "cross/build: $bin was not produced" >&2; exit 1; }
    printf 'cross/build: %s  %s bytes  (%ss)\n' "$bin" "$(stat -c %s "$bin")" "$(( $(date +%s) - start ))"
done
