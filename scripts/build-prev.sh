#!/usr/bin/env bash
# Builds the previous release (a fixed commit of this repository) once into
# ~/.cache/pinch/prev-<commit>/pinch for the upgrade tests, and prints the
# binary's path. Cached: a second run only prints the path.
#   scripts/build-prev.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
COMMIT="${1:-e2492bc}"
OUT="$HOME/.cache/pinch/prev-$COMMIT"
if [ -x "$OUT/pinch" ]; then
    echo "$OUT/pinch"
    exit 0
fi
mkdir -p "$OUT"
SRC="$OUT/src"
rm -rf "$SRC" && mkdir -p "$SRC"
git archive "$COMMIT" | tar -x -C "$SRC"
CARGO=${CARGO:-cargo}
(cd "$SRC" && CARGO_TARGET_DIR="$OUT/target" $CARGO build --locked --release --bin pinch >&2)
cp "$OUT/target/release/pinch" "$OUT/pinch"
rm -rf "$SRC" "$OUT/target"
echo "$OUT/pinch"
