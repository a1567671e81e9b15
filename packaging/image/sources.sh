#!/bin/sh
# Prints sources.list lines for the image: the Debian archive and security
# archive this machine's apt already uses, with the components a Pi needs
# (main and non-free-firmware). SUITE is the first argument.
set -eu
suite=$1
uris=$( (cat /etc/apt/sources.list 2>/dev/null; cat /etc/apt/sources.list.d/*.list 2>/dev/null) \
          | sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p'
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] && sed -n 's/^URIs: *//p' "$f"
        done | tr ' ' '\n')
main=$(printf '%s\n' "$uris" | grep -E '/debian/?$' | head -1)
security=$(printf '%s\n' "$uris" | grep -E '/debian-security/?$' | head -1)
[ -n "$main" ] || { echo "sources: no Debian archive in this machine's apt sources" >&2; exit 1; }
echo "deb $main $suite main non-free-firmware"
echo "deb $main $suite-updates main non-free-firmware"
[ -z "$security" ] || echo "deb $security $suite-security main non-free-firmware"
