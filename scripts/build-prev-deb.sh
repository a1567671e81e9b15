#!/usr/bin/env bash
# Builds the previous release's amd64 .deb once, with that release's own
# packaging (unit, maintainer scripts) at COMMIT and its binary from
# scripts/build-prev.sh, into ~/.cache/pinch/prev-<commit>/, and prints its
# path. Debian revision 0, so the current package (revision 1) upgrades it.
# Cached: a second run only prints the path.
#   scripts/build-prev-deb.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
COMMIT="${1:-e2492bc}"
OUT="$HOME/.cache/pinch/prev-$COMMIT"
cached=$(ls "$OUT"/pinch_*-0_amd64.deb 2>/dev/null | head -1 || true)
if [ -n "$cached" ]; then
    echo "$cached"
    exit 0
fi
BIN=$(scripts/build-prev.sh "$COMMIT")
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git archive "$COMMIT" | tar -x -C "$src"
install -D -m 0755 "$BIN" "$src/target/x86_64-unknown-linux-gnu/release/pinch"
epoch=$(git log -1 --format=%ct "$COMMIT")
(cd "$src" && SOURCE_DATE_EPOCH=$epoch PINCH_DEB_REVISION=0 \
    PINCH_DEB_MAINTAINER="${PINCH_DEB_MAINTAINER:-pinch maintainers <pinch@localhost>}" \
    packaging/build-deb.sh amd64 >&2)
cp "$src"/target/debian/pinch_*-0_amd64.deb "$OUT/"
ls "$OUT"/pinch_*-0_amd64.deb | head -1
