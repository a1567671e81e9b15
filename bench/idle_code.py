#!/usr/bin/env python3
"""Writes cross/idle-code.ld from a callgrind profile of an idle gateway.

Reads callgrind output files (--demangle=no, counts zeroed once the
gateway was quiet), keeps every function of the pinch binary with a cost
since, and writes a linker script that places those functions' sections
first, in one output section before .text. The patterns wildcard what a
build or a target changes in a mangled Rust name (crate disambiguators,
back-references, legacy hashes), so they still match after unrelated code
changes and in the ARM builds; a pattern that matches nothing costs
nothing.

Small functions come first, so the code that runs most densely shares
the fewest 64 KiB blocks; the sizes are read from BINARY's symbols.

    bench/idle_code.py OUT.ld BINARY CALLGRIND_FILE...
"""
import subprocess
import re
import sys

HASH = re.compile(r"17h[0-9a-f]{16}E$")
SAFE = re.compile(r"^[A-Za-z0-9_$.]+$")


def functions(path):
    """Names of the functions of object *pinch* with a cost in `path`."""
    names, objects, out = {}, {}, set()
    current_ob, current_fn = "", None
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(c?ob|c?fn|c?fl|fi|fe)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            key = ("ob" if kind.endswith("ob") else "fn" if kind.endswith("fn") else "fl", ident)
            if name is not None:
                (objects if key[0] == "ob" else names)[key] = name
            if kind == "ob":
                current_ob = objects.get(key, "")
            elif kind == "fn":
                current_fn = names.get(key) if current_ob.endswith("/pinch") else None
            continue
        # A cost line: "<position> <Ir>"; a positive count means it ran.
        parts = line.split()
        if current_fn and len(parts) >= 2 and parts[-1].isdigit() and int(parts[-1]) > 0:
            if parts[0][0].isdigit() or parts[0][0] in "+-*":
                out.add(current_fn)
    return out


def pattern(symbol):
    """The input-section pattern for one function."""
    if symbol.startswith("_R"):
        # v0: crate disambiguators and back-references vary by build.
        stem = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", symbol)
        stem = re.sub(r"B[0-9A-Za-z]{0,3}_", "B*_", stem)
        return f".text.{stem}"
    stem = HASH.sub("", symbol)
    if stem != symbol:
        return f".text.{stem}17h*"
    return f".text.{symbol}"


def sizes(binary):
    """Each function symbol of `binary` and its size in bytes."""
    out = subprocess.run(
        ["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True
    ).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            table[parts[3]] = int(parts[1], 16)
    return table


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    found = set()
    for path in sys.argv[3:]:
        found |= functions(path)
    symbol_size = sizes(sys.argv[2])
    size_of = {}
    for s in found:
        if SAFE.match(s):
            p = pattern(s)
            size_of[p] = max(size_of.get(p, 0), symbol_size.get(s, 0))
    patterns = sorted(size_of, key=lambda p: (size_of[p], p))
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write(
            "/* The functions an idle gateway runs (every adapter connected),\n"
            "   placed next to each other before .text, smallest first: idle\n"
            "   wake-ups then touch a few 64 KiB blocks of code instead of\n"
            "   dozens. Written by bench/idle_code.sh; a pattern that matches\n"
            "   nothing is harmless. */\n"
            "SECTIONS\n{\n  .text.idle : {\n"
        )
        for p in patterns:
            f.write(f"    *({p})\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    total = sum(size_of.values())
    print(f"{len(patterns)} functions, {total} bytes -> {sys.argv[1]}")


if __name__ == "__main__":
    main()
