#!/usr/bin/env bash
# Where the bytes of the release binary are.
#
#   bench/size.sh               sizes + sections of the built release binaries,
#                               then the top crates, functions and generic
#                               copies of the host binary (cargo-bloat)
#   bench/size.sh --sizes       sizes and sections only (no build)
#   bench/size.sh -n 60         show 60 functions (default 40)
#
# 1. For every target/<triple>/release/pinch that exists (cross/build.sh
#    builds them: rustc 1.85, Zig-linked for glibc 2.17), the stripped size,
#    the headroom under the 4 MiB budget (PINCH_SIZE_BUDGET) for ARM, and
#    the largest ELF sections: .text (code), .rodata (strings, tables),
#    .eh_frame(+_hdr) (unwind tables, about a quarter of the code size),
#    .rela.dyn and .data.rel.ro (pointers the loader relocates in a PIE:
#    vtables, format-string pieces, panic locations).
# 2. The host binary built with the `size` profile (the release profile
#    with its symbol table; rustc 1.85 when Debian's is installed, as the
#    shipped build) analysed by cargo-bloat (`cargo install cargo-bloat`):
#    per crate, the largest functions, and the generic functions with the
#    most copies (one per type they are instantiated for: the cost of
#    monomorphization). Code of other crates instantiated for pinch's types
#    counts under pinch in the crate table.
#
# The first run of part 2 builds every dependency in target/<host>/size
# (about 4 minutes on 2 cores); later runs relink only pinch (about 1.5).
# CARGO (default cargo) is the cargo to run, e.g. CARGO=cargo-locked.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=x86_64-unknown-linux-gnu
BUDGET=${PINCH_SIZE_BUDGET:-4194304}
CARGO=${CARGO:-cargo}
TOP=40
SIZES_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES_ONLY=1 ;;
        -n) shift; TOP=${1:?-n needs a number} ;;
        *) echo "usage: bench/size.sh [--sizes] [-n N]" >&2; exit 2 ;;
    esac
    shift
done

strip_tool() {
    case "$1" in
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        armv7-* | arm-unknown-linux-gnueabihf) echo arm-linux-gnueabihf-strip ;;
        armv5te-*) echo arm-linux-gnueabi-strip ;;
        *) echo strip ;;
    esac
}

# section_sizes FILE: "name bytes" for the sections worth naming.
section_sizes() {
    readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] //p' | while read -r name _type _addr _off size _rest; do
        case "$name" in
            .text | .rodata | .eh_frame | .eh_frame_hdr | .ARM.exidx | .ARM.extab | .rela.dyn | .rel.dyn | .data.rel.ro | .gcc_except_table)
                printf '%s %d\n' "$name" "$((16#$size))" ;;
        esac
    done
}

echo "== stripped release binaries (budget $BUDGET bytes for ARM)"
found=0
for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf \
    arm-unknown-linux-gnueabihf armv5te-unknown-linux-gnueabi; do
    bin="target/$t/release/pinch"
    [ -f "$bin" ] || continue
    found=1
    tmp=$(mktemp)
    "$(strip_tool "$t")" -o "$tmp" "$bin"
    size=$(stat -c %s "$tmp")
    if [ "$t" = "$HOST" ]; then
        room="(no budget)"
    else
        room="headroom $((BUDGET - size)) bytes"
    fi
    printf '%-32s %9d bytes  %6.2f MiB  %s\n' "$t" "$size" \
        "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')" "$room"
    section_sizes "$tmp" | awk '{ printf "    %-18s %9d\n", $1, $2 }'
    rm -f "$tmp"
done
[ "$found" = 1 ] || echo "(no release binaries yet: cross/build.sh)"
[ "$SIZES_ONLY" = 1 ] && exit 0

echo
echo "== $HOST, profile \`size\` (release with symbols): cargo-bloat"
if ! "$CARGO" bloat --version >/dev/null 2>&1; then
    echo "cargo-bloat is not installed: cargo install cargo-bloat" >&2
    exit 1
fi
if [ -x /usr/bin/rustc ] && ls /usr/lib/rustlib/$HOST/lib/libstd-*.rlib >/dev/null 2>&1; then
    run=(env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc "$CARGO")
else
    run=("$CARGO")
fi
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"${run[@]}" bloat --locked --profile size --target "$HOST" -n 0 --message-format json >"$json"
python3 - "$json" "$TOP" <<'EOF'
import collections, json, re, sys

data = json.load(open(sys.argv[1]))
top = int(sys.argv[2])
fns = data["functions"]
text = data["text-section-size"]
print(f"file {data['file-size']} bytes (unstripped), .text {text} bytes, {len(fns)} functions")

crates = collections.Counter()
for f in fns:
    crates[f.get("crate") or "?"] += f["size"]
print(f"\n-- crates (code inlined into or instantiated for pinch counts as pinch)")
for name, size in crates.most_common(20):
    print(f"{size:9d}  {100 * size / text:5.1f}%  {name}")

print(f"\n-- largest {top} functions")
for f in sorted(fns, key=lambda f: -f["size"])[:top]:
    print(f"{f['size']:9d}  {f['name'][:140]}")

# A generic function appears once per set of type arguments, under the same
# name: the copies are what monomorphization costs.
groups = collections.defaultdict(lambda: [0, 0])
for f in fns:
    g = groups[f["name"]]
    g[0] += 1
    g[1] += f["size"]
dups = sorted(((s, c, n) for n, (c, s) in groups.items() if c > 1), reverse=True)
print(f"\n-- generic functions with the most bytes in copies (copies x)")
for size, count, name in dups[:top]:
    print(f"{size:9d}  {count:3d}x  {name[:130]}")

def total(pattern):
    r = re.compile(pattern)
    return sum(f["size"] for f in fns if r.search(f["name"]))

print("\n-- families")
for label, pattern in [
    ("redb (tables: one copy per key/value type pair)", r"redb::"),
    ("serde derive + serde_json", r"serde"),
    ("formatting (core::fmt, Debug/Display impls)", r"core::fmt|as core::fmt::"),
    ("std backtrace printing (gimli, addr2line, miniz)", r"backtrace|gimli|addr2line|miniz_oxide|rustc_demangle"),
    ("slice sorting", r"core::slice::sort"),
    ("TLS (rustls, webpki, ring)", r"rustls|webpki|ring::|ring_core"),
]:
    size = total(pattern)
    print(f"{size:9d}  {100 * size / text:5.1f}%  {label}")
EOF
