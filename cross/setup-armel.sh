#!/usr/bin/env bash
# Installs a Rust 1.85 toolchain for armv5te-unknown-linux-gnueabi (Debian's
# armel: Raspberry Pi 1 / Zero / Zero W, ARMv5 NAS boxes) on a Debian 12
# build machine. Run as root; idempotent.
#
# Debian 12 packages no Rust standard library for armel. Debian 13 does
# (rustc 1.85.1), but a standard library only loads into the very compiler
# that built it, so this unpacks Debian 13's rustc 1.85.1 for amd64 with its
# amd64 and armel standard libraries and the shared libraries it needs
# (Debian 13's glibc, LLVM 19, ...) under ~/.cache/pinch/rust-armel/root,
# without installing any of it into the system, and writes
# ~/.cache/pinch/rust-armel/rustc, which starts that compiler through
# Debian 13's own dynamic loader. cross/build.sh and cross/test.sh use it
# for armv5te. Also installs the armel cross gcc and C library (the unit
# tests' linker and qemu-user's loader).
set -euo pipefail
CACHE=${PINCH_CACHE:-$HOME/.cache/pinch}
DIR="$CACHE/rust-armel"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

if ! command -v arm-linux-gnueabi-gcc >/dev/null || [ ! -e /usr/arm-linux-gnueabi/lib/ld-linux.so.3 ]; then
    echo "cross: installing the armel cross gcc and C library" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        gcc-arm-linux-gnueabi libc6-dev-armel-cross >/dev/null
fi

if [ -x "$DIR/rustc" ] && "$DIR/rustc" --version 2>/dev/null | grep -q '^rustc 1\.85' \
   && ls "$DIR/root/usr/lib/rustlib/armv5te-unknown-linux-gnueabi/lib"/libstd-*.rlib >/dev/null 2>&1; then
    echo "cross: armv5te toolchain in $DIR ($("$DIR/rustc" --version))"; exit 0
fi

echo "cross: unpacking Debian 13's rustc 1.85 with its armel standard library into $DIR" >&2
rm -rf "$DIR"; mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/debs" "$DIR/root"
echo "deb [arch=amd64,armel] http://deb.debian.org/debian trixie main" >"$DIR/apt/sources.list"
APT=(-o "Dir::Etc::SourceList=$DIR/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::Cache=$DIR/apt/cache" -o Dir::State::status=/dev/null
     -o APT::Architecture=amd64 -o APT::Architectures::=amd64 -o APT::Architectures::=armel
     -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update -qq >/dev/null
( cd "$DIR/debs" && apt-get "${APT[@]}" download -qq \
    rustc libstd-rust-1.85 libstd-rust-dev libstd-rust-1.85:armel libstd-rust-dev:armel \
    libc6 libgcc-s1 libstdc++6 libllvm19 libedit2 libffi8 libxml2 libz3-4 libzstd1 zlib1g \
    libbsd0 libmd0 libtinfo6 liblzma5 libicu76 >/dev/null )
for f in "$DIR"/debs/*.deb; do dpkg -x "$f" "$DIR/root"; done
rm -rf "$DIR/debs" "$DIR/apt"
cat >"$DIR/rustc" <<WRAP
#!/bin/sh
# Debian 13's rustc 1.85 with Debian 13's own loader and libraries (cross/setup-armel.sh).
R='$DIR/root'
exec "\$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" "\$R/usr/bin/rustc" "\$@"
WRAP
chmod 0755 "$DIR/rustc"
"$DIR/rustc" --version
ls "$DIR/root/usr/lib/rustlib/"
