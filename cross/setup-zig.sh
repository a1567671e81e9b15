#!/usr/bin/env bash
# Installs the Zig toolchain and cargo-zigbuild from PyPI into a virtualenv
# under ~/.cache/pinch/zig-venv (no root needed). cross/build.sh links every
# release binary through them against an old glibc (the baseline, 2.17), so
# one binary runs on old NAS firmware as well as on current distributions.
# Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
ZIG_VERSION=${PINCH_ZIG_VERSION:-0.17.1}
ZIGBUILD_VERSION=${PINCH_ZIGBUILD_VERSION:-0.24.1}
VENV="${PINCH_CACHE:-$HOME/.cache/pinch}/zig-venv"
have() {
    [ -x "$VENV/bin/cargo-zigbuild" ] && [ -x "$VENV/bin/python3" ] \
        && [ "$("$VENV/bin/python3" -m ziglang version 2>/dev/null)" = "$ZIG_VERSION" ] \
        && "$VENV/bin/cargo-zigbuild" --version 2>/dev/null | grep -qx "cargo-zigbuild $ZIGBUILD_VERSION"
}
if have; then echo "cross: zig $ZIG_VERSION and cargo-zigbuild $ZIGBUILD_VERSION in $VENV"; exit 0; fi
echo "cross: installing zig $ZIG_VERSION and cargo-zigbuild $ZIGBUILD_VERSION into $VENV" >&2
PY=$(command -v python3)
"$PY" -m venv --clear "$VENV" 2>/dev/null || {
    # Debian's python3 needs python3-venv for ensurepip.
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv --clear "$VENV"
}
"$VENV/bin/pip" install -q --disable-pip-version-check \
    "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
have || { echo "cross: zig or cargo-zigbuild did not install into $VENV" >&2; exit 1; }
echo "cross: zig $("$VENV/bin/python3" -m ziglang version), $("$VENV/bin/cargo-zigbuild" --version)"
