#!/usr/bin/env bash
# Footprint report: the stripped size of each built target's release binary
# (target/<triple>/release/pinch), then the wall time and peak memory
# ("Maximum resident set size" from /usr/bin/time -v) of one clean release
# build of the host target with rustc 1.85 in a fresh target directory.
# The budget for peak build memory is 1.5 GB.
#
#   bench/footprint.sh            sizes + clean build (minutes of both cores)
#   bench/footprint.sh --sizes    sizes only
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=x86_64-unknown-linux-gnu
MEM_BUDGET_KB=$((1536 * 1024))

echo "== stripped release binaries"
found=0
for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf armv5te-unknown-linux-gnueabi; do
    bin="target/$t/release/pinch"
    [ -f "$bin" ] || { printf '%-32s (not built: cross/build.sh %s)\n' "$t" "$t"; continue; }
    case "$t" in
        aarch64-*) s=aarch64-linux-gnu-strip ;; armv7-*) s=arm-linux-gnueabihf-strip ;;
        armv5te-*) s=arm-linux-gnueabi-strip ;; *) s=strip ;;
    esac
    tmp=$(mktemp); "$s" -o "$tmp" "$bin"; size=$(stat -c %s "$tmp"); rm -f "$tmp"
    printf '%-32s %9d bytes  %6.2f MiB\n' "$t" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')"
    found=1
done
[ "$found" = 1 ] || echo "(no binaries yet: cross/build.sh)"
[ "${1:-}" = --sizes ] && exit 0

echo "== clean release build of $HOST (rustc 1.85, fresh target dir)"
dir=target-footprint
rm -rf "$dir"
trap 'rm -rf "$dir"' EXIT
if [ -x /usr/bin/rustc ] && ls /usr/lib/rustlib/$HOST/lib/libstd-*.rlib >/dev/null 2>&1; then
    cmd=(env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$dir" /usr/bin/cargo)
else
    cmd=(env CARGO_TARGET_DIR="$dir" cargo)
fi
log=$(mktemp)
/usr/bin/time -v "${cmd[@]}" build --release --locked --target "$HOST" --quiet 2>"$log" \
    || { cat "$log" >&2; exit 1; }
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
cpu_u=$(sed -n 's/.*User time (seconds): //p' "$log")
cpu_s=$(sed -n 's/.*System time (seconds): //p' "$log")
rm -f "$log"
echo "wall time:          $wall  (cpu user ${cpu_u}s, sys ${cpu_s}s, $(nproc) cores)"
echo "peak build memory:  $rss KiB ($((rss / 1024)) MiB; budget $((MEM_BUDGET_KB / 1024)) MiB)"
if [ "$rss" -gt "$MEM_BUDGET_KB" ]; then
    echo "FAIL: peak build memory over budget" >&2
    exit 1
fi
