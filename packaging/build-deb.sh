#!/usr/bin/env bash
# Builds the pinch .deb packages (amd64, arm64, armhf, armel) from the release
# binaries that cross/build.sh leaves in target/<triple>/release/pinch, into
# target/debian/. Uses a staged tree and `dpkg-deb --root-owner-group`;
# timestamps come from the last commit (SOURCE_DATE_EPOCH), so the same
# commit and binaries give byte-identical packages.
#
#   packaging/build-deb.sh [ARCH...]     ARCH: amd64 arm64 armhf armhf-armv6 armel (default:
#                                        amd64 arm64 armhf, plus the others whose binary exists)
#
# armhf-armv6 is an armhf package (Architecture: armhf) holding the ARMv6
# build, for Raspberry Pi OS on a Pi 1 / Zero, whose "armhf" is ARMv6; it
# also runs on every later Pi. Its file is pinch_<version>_armhf-armv6.deb.
#
# A missing binary is built first with cross/build.sh. Environment:
#   PINCH_DEB_REVISION   Debian revision (default 1)
#   PINCH_DEB_MAINTAINER Maintainer field (default: the last commit's author)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=target/debian
if [ $# -eq 0 ]; then
    set -- amd64 arm64 armhf
    [ -x target/arm-unknown-linux-gnueabihf/release/pinch ] && set -- "$@" armhf-armv6
    [ -x target/armv5te-unknown-linux-gnueabi/release/pinch ] && set -- "$@" armel
fi

UPSTREAM=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
VERSION="$UPSTREAM-${PINCH_DEB_REVISION:-1}"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
MAINTAINER=${PINCH_DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo "pinch developers <pinch@localhost>")}
export TZ=UTC LC_ALL=C
umask 022

triple_of() {
    case "$1" in
        amd64) echo x86_64-unknown-linux-gnu ;;
        arm64) echo aarch64-unknown-linux-gnu ;;
        armhf) echo armv7-unknown-linux-gnueabihf ;;
        armel) echo armv5te-unknown-linux-gnueabi ;;
        armhf-armv6) echo arm-unknown-linux-gnueabihf ;;
        *) echo "build-deb: unknown architecture $1 (amd64, arm64, armhf, armhf-armv6, armel)" >&2; exit 2 ;;
    esac
}
strip_of() {
    case "$1" in
        amd64) echo strip ;;
        arm64) echo aarch64-linux-gnu-strip ;;
        armhf) echo arm-linux-gnueabihf-strip ;;
        armel) echo arm-linux-gnueabi-strip ;;
        armhf-armv6) echo arm-linux-gnueabihf-strip ;;
    esac
}

# Depends: from the binary's NEEDED libraries and the newest glibc symbol version.
depends_of() {
    local bin=$1 glibc deps="adduser"
    glibc=$(readelf -V --wide "$bin" | grep -o 'GLIBC_2\.[0-9]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    if readelf -d "$bin" | grep -q 'NEEDED.*libc\.so\.6'; then deps="libc6 (>= ${glibc:-2.34}), $deps"; fi
    if readelf -d "$bin" | grep -q 'NEEDED.*libgcc_s\.so\.1'; then deps="${deps/adduser/libgcc-s1, adduser}"; fi
    echo "$deps"
}

# debian/copyright: pinch's own license plus every statically linked crate's.
copyright_of() {
    local triple=$1
    cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pinch
Comment: /usr/bin/pinch is one Rust program with these crates compiled in
 (name, version, license; each crate's authors hold its copyright, see
 https://crates.io/crates/NAME). Common license texts are in
 /usr/share/common-licenses/ and at https://spdx.org/licenses/.
 .
EOF
    cargo metadata --locked --offline --format-version 1 --filter-platform "$triple" 2>/dev/null \
        | python3 -c '
import json, sys
m = json.load(sys.stdin)
pk = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
root = m["resolve"]["root"]
def proc_macro(i):
    return any("proc-macro" in t["kind"] for t in pk[i]["targets"])
seen, todo = set(), [root]
while todo:  # what is linked: normal dependencies, not build scripts, dev or proc-macros
    i = todo.pop()
    if i in seen: continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] is None for k in d["dep_kinds"]) and not proc_macro(d["pkg"]):
            todo.append(d["pkg"])
seen.discard(root)
for p in sorted((pk[i] for i in seen), key=lambda p: (p["name"], p["version"])):
    print(" %s %s: %s" % (p["name"], p["version"], p.get("license") or "see the crate"))
' || echo " (crate list unavailable: cargo metadata failed)"
    cat <<EOF

Files: *
Copyright: the pinch developers
License: MIT or Apache-2.0
 The MIT license or the Apache License, Version 2.0, at your option.
 On Debian systems the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
}

build_one() {
    local arch=$1 triple bin stage pkg deps size
    triple=$(triple_of "$arch")
    bin="target/$triple/release/pinch"
    [ -x "$bin" ] || cross/build.sh "$triple"
    stage="$OUT/stage-$arch"
    rm -rf "$stage"
    mkdir -p "$stage/DEBIAN"

    install -D -m 0755 "$bin" "$stage/usr/bin/pinch"
    if readelf -S "$stage/usr/bin/pinch" | grep -q '\.symtab'; then
        "$(strip_of "$arch")" --strip-all "$stage/usr/bin/pinch"
    fi
    install -D -m 0644 packaging/pinch.service "$stage/lib/systemd/system/pinch.service"
    # Optional local model server: shipped disabled (the postinst never enables it).
    install -D -m 0644 packaging/pinch-llama.service "$stage/lib/systemd/system/pinch-llama.service"
    install -d -m 0755 "$stage/etc/pinch"
    install -d -m 0700 "$stage/etc/pinch/credentials"
    install -m 0600 packaging/pinch.json "$stage/etc/pinch/pinch.json"
    install -m 0600 packaging/pinch.env "$stage/etc/pinch/pinch.env"
    install -m 0644 packaging/llama.env "$stage/etc/pinch/llama.env"

    # Bundled skills: the runtime reads /usr/share/pinch/skills.
    install -d -m 0755 "$stage/usr/share/pinch/skills"
    if [ -d skills ]; then
        (cd skills && find . -mindepth 1 -type d ! -name '.*' -print0) | while IFS= read -r -d '' d; do
            install -d -m 0755 "$stage/usr/share/pinch/skills/$d"
        done
        (cd skills && find . -type f ! -name '.*' -print0) | while IFS= read -r -d '' f; do
            if [ -x "skills/$f" ]; then m=0755; else m=0644; fi
            install -m "$m" "skills/$f" "$stage/usr/share/pinch/skills/$f"
        done
    fi

    local doc="$stage/usr/share/doc/pinch"
    install -d -m 0755 "$doc"
    install -m 0644 packaging/debian/README.Debian "$doc/README.Debian"
    [ -f README.md ] && install -m 0644 README.md "$doc/README.md"
    for f in docs/*.md; do [ -f "$f" ] && install -m 0644 "$f" "$doc/$(basename "$f")"; done
    install -m 0644 cross/README.md "$doc/edge-builds.md"
    copyright_of "$triple" >"$doc/copyright"; chmod 0644 "$doc/copyright"
    sed -e '/^#/d' -e "s/@VERSION@/$VERSION/" -e "s/@UPSTREAM@/$UPSTREAM/" -e "s/@MAINTAINER@/$MAINTAINER/" \
        -e "s/@DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/" packaging/debian/changelog \
        | gzip -9n >"$doc/changelog.Debian.gz"
    chmod 0644 "$doc/changelog.Debian.gz"

    for s in preinst postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"; done
    printf '%s\n' /etc/pinch/pinch.json /etc/pinch/pinch.env /etc/pinch/llama.env >"$stage/DEBIAN/conffiles"
    deps=$(depends_of "$stage/usr/bin/pinch")
    size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
    cat >"$stage/DEBIAN/control" <<EOF
Package: pinch
Version: $VERSION
Architecture: ${arch%-armv6}
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: $deps
Section: net
Priority: optional
Description: small self-hosted AI assistant gateway for edge hardware
 pinch is an always-on AI assistant gateway for a Raspberry Pi, a NAS or a
 small VM: a web chat, a WebSocket API and a command line client in front of
 OpenAI-compatible or Anthropic model providers, with sessions, skills,
 tools and chat channels.
 .
 This package runs it as the sandboxed systemd service pinch.service under
 the system user pinch, configured in /etc/pinch/pinch.json.
EOF
    (cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z \
        | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
    chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

    find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    pkg="$OUT/pinch_${VERSION}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$pkg" >/dev/null
    rm -rf "$stage"
    printf 'build-deb: %s  %s bytes  (Depends: %s)\n' "$pkg" "$(stat -c %s "$pkg")" "$deps"
}

mkdir -p "$OUT"
for a in "$@"; do build_one "$a"; done
