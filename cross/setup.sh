#!/usr/bin/env bash
# Installs what a cross build needs on a Debian 12 machine: Debian's rustc
# 1.85 (rustc-web) with its standard library for arm64 and armhf and its
# source (rust-web-src, to build the standard library for ARMv6 hard float),
# the cross linkers and qemu-user for running the results. Idempotent; run
# as root.
# On a machine with rustup and internet, `rustup target add` works instead
# (see cross/README.md).
set -euo pipefail
V="${PINCH_RUSTC_WEB:-1.85.0+dfsg3-1~deb12u3}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
have_std() { [ -d "/usr/lib/rustlib/$1/lib" ] && ls "/usr/lib/rustlib/$1/lib"/libstd-*.rlib >/dev/null 2>&1; }
if [ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85' \
   && have_std aarch64-unknown-linux-gnu && have_std armv7-unknown-linux-gnueabihf \
   && command -v aarch64-linux-gnu-gcc >/dev/null && command -v arm-linux-gnueabihf-gcc >/dev/null \
   && command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null \
   && [ -d /usr/lib/rustlib/src/rust/library/std ]; then
    echo "cross: toolchain already installed"; exit 0
fi
echo "cross: installing Debian rustc $V, cross linkers and qemu-user" >&2
$SUDO dpkg --add-architecture arm64
$SUDO dpkg --add-architecture armhf
$SUDO apt-get update -qq >/dev/null 2>&1 || true   # an arm index of the security suite may be mid-sync
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --allow-downgrades \
    "rustc-web=$V" "cargo-web=$V" "libstd-rust-web-dev=$V" "libstd-rust-web-1.85=$V" "rust-web-src=$V" \
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross \
    qemu-user-static >/dev/null
# The arm std packages are unpacked rather than installed: apt's multiarch
# resolution trips over version skew between architectures.
tmp=$(mktemp -d)
( cd "$tmp" && apt-get download -qq "libstd-rust-web-dev:arm64=$V" "libstd-rust-web-1.85:arm64=$V" \
      "libstd-rust-web-dev:armhf=$V" "libstd-rust-web-1.85:armhf=$V" >/dev/null )
for f in "$tmp"/*.deb; do $SUDO dpkg -x "$f" /; done
rm -rf "$tmp"
$SUDO apt-mark hold rustc-web cargo-web libstd-rust-web-dev libstd-rust-web-1.85 rust-web-src >/dev/null
/usr/bin/rustc --version
ls /usr/lib/rustlib/
