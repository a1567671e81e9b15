#!/usr/bin/env bash
# Builds the release tarballs for machines without dpkg (NAS firmware,
# Alpine, old distributions): target/tarball/pinch-<version>-<triple>.tar.gz
# from the release binaries that cross/build.sh leaves in
# target/<triple>/release/pinch. Each holds the stripped binary, the bundled
# skills, an annotated pinch.json, README-NAS.md, upgrade.sh (install or
# upgrade with rollback) and the service files of
# packaging/tarball/init (systemd, OpenRC, SysV, Synology, QNAP) under one
# top directory pinch-<version>-<triple>/. Timestamps come from the last
# commit (SOURCE_DATE_EPOCH), so the same inputs give the same archive.
#
#   packaging/build-tarball.sh [TRIPLE...]   default: every target whose binary exists
#
# A missing binary named on the command line is built first with cross/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/tarball
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export TZ=UTC LC_ALL=C
umask 022

if [ $# -eq 0 ]; then
    for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf arm-unknown-linux-gnueabihf armv5te-unknown-linux-gnueabi; do
        [ -x "target/$t/release/pinch" ] && set -- "$@" "$t"
    done
    [ $# -gt 0 ] || { echo "build-tarball: no release binaries: run cross/build.sh first" >&2; exit 1; }
fi

strip_of() {
    case "$1" in
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        armv7-* | arm-unknown-linux-gnueabihf) echo arm-linux-gnueabihf-strip ;;
        armv5te-*) echo arm-linux-gnueabi-strip ;;
        *) echo strip ;;
    esac
}

build_one() {
    local triple=$1 bin name stage tarball
    bin="target/$triple/release/pinch"
    [ -x "$bin" ] || cross/build.sh "$triple"
    name="pinch-$VERSION-$triple"
    stage="$OUT/stage/$name"
    rm -rf "$OUT/stage"; mkdir -p "$stage"
    install -D -m 0755 "$bin" "$stage/bin/pinch"
    if readelf -S "$stage/bin/pinch" | grep -q '\.symtab'; then
        "$(strip_of "$triple")" --strip-all "$stage/bin/pinch"
    fi
    install -d -m 0755 "$stage/share/pinch/skills"
    if [ -d skills ]; then
        (cd skills && find . -mindepth 1 -type d ! -name '.*' -print0) | while IFS= read -r -d '' d; do
            install -d -m 0755 "$stage/share/pinch/skills/$d"
        done
        (cd skills && find . -type f ! -name '.*' -print0) | while IFS= read -r -d '' f; do
            if [ -x "skills/$f" ]; then m=0755; else m=0644; fi
            install -m "$m" "skills/$f" "$stage/share/pinch/skills/$f"
        done
    fi
    install -m 0644 packaging/tarball/pinch.json "$stage/pinch.json"
    install -m 0644 packaging/tarball/README-NAS.md "$stage/README-NAS.md"
    install -m 0755 packaging/tarball/upgrade.sh "$stage/upgrade.sh"
    install -m 0644 README.md "$stage/README.md"
    (cd packaging/tarball && find init -type d -print0) | while IFS= read -r -d '' d; do
        install -d -m 0755 "$stage/$d"
    done
    (cd packaging/tarball && find init -type f -print0) | while IFS= read -r -d '' f; do
        if [ -x "packaging/tarball/$f" ]; then m=0755; else m=0644; fi
        install -m "$m" "packaging/tarball/$f" "$stage/$f"
    done
    tarball="$OUT/$name.tar.gz"
    tar -C "$OUT/stage" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -9n >"$tarball"
    rm -rf "$OUT/stage"
    printf 'build-tarball: %s  %s bytes\n' "$tarball" "$(stat -c %s "$tarball")"
}

mkdir -p "$OUT"
for t in "$@"; do build_one "$t"; done
