#!/bin/sh
# Installs or upgrades pinch from an unpacked release tarball, as the .deb
# does: the folder this script is in becomes the installed version by
# pointing the link (default /opt/pinch) at it; the version it replaces
# stays unpacked beside it, linked as <link>.prev; the service is restarted
# once and must answer /healthz within PINCH_READY_SECONDS, else the link
# goes back to the previous folder, the store is put back as it was before
# the new binary migrated it (state.redb.v<N>.bak, the migrated one kept as
# state.redb.failed-upgrade) and the previous version is started again.
# PINCH_HOME (config, store, workspace) is never touched otherwise.
#
#   /opt/pinch-NEW/upgrade.sh [LINK]
#
# Settings (environment, or /etc/default/pinch):
#   PINCH_HOME           the state folder (default /var/lib/pinch)
#   PINCH_RESTART        the command that restarts the service (default: the
#                        first of systemctl, rc-service, /etc/init.d/pinch found)
#   PINCH_STOP           the command that stops it (same default)
#   PINCH_READY_URL      what must answer 200 (default
#                        http://127.0.0.1:<gateway.port>/healthz, port 18789)
#   PINCH_READY_SECONDS  how long the new version has to answer (default 30)
set -eu

[ -r /etc/default/pinch ] && . /etc/default/pinch
NEW=$(cd "$(dirname "$0")" && pwd -P)
LINK=${1:-/opt/pinch}
LINK=${LINK%/}
: "${PINCH_HOME:=/var/lib/pinch}"
: "${PINCH_READY_SECONDS:=30}"
say() { echo "pinch upgrade: $*"; }

[ -x "$NEW/bin/pinch" ] || { say "$NEW/bin/pinch is missing: run the upgrade.sh of an unpacked release" >&2; exit 2; }
"$NEW/bin/pinch" --version >/dev/null 2>&1 \
    || { say "$NEW/bin/pinch does not run on this machine (wrong archive for $(uname -m)?); nothing changed" >&2; exit 2; }

if [ ! -e "$LINK" ] && [ ! -L "$LINK" ]; then
    ln -s "$NEW" "$LINK"
    say "installed $NEW as $LINK (first install: see README-NAS.md for the user, config and service)"
    exit 0
fi
[ -L "$LINK" ] || { say "$LINK is not a link to an unpacked release; move it aside first" >&2; exit 2; }
OLD=$(cd "$LINK/" && pwd -P)
if [ "$OLD" = "$NEW" ]; then
    say "$LINK already points at $NEW"
    exit 0
fi

restart() {
    if [ -n "${PINCH_RESTART:-}" ]; then sh -c "$PINCH_RESTART"
    elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl restart pinch
    elif command -v rc-service >/dev/null 2>&1; then rc-service pinch restart
    elif [ -x /etc/init.d/pinch ]; then /etc/init.d/pinch restart
    else say "no service manager found: set PINCH_RESTART to the command that restarts pinch" >&2; return 1
    fi
}

stop_service() {
    if [ -n "${PINCH_STOP:-}" ]; then sh -c "$PINCH_STOP"
    elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl stop pinch
    elif command -v rc-service >/dev/null 2>&1; then rc-service pinch stop
    elif [ -x /etc/init.d/pinch ]; then /etc/init.d/pinch stop
    fi
}

ready_url() {
    if [ -n "${PINCH_READY_URL:-}" ]; then echo "$PINCH_READY_URL"; return; fi
    port=$(PINCH_HOME="$PINCH_HOME" "$1/bin/pinch" config get gateway.port 2>/dev/null | tr -dc 0-9)
    echo "http://127.0.0.1:${port:-18789}/healthz"
}

# wait_ready BIN_DIR: /healthz answers 200 within PINCH_READY_SECONDS.
wait_ready() {
    url=$(ready_url "$1")
    i=0
    while [ "$i" -lt $((PINCH_READY_SECONDS * 5)) ]; do
        if command -v curl >/dev/null 2>&1; then
            code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)
        else
            code=$(wget -q -T 2 -O /dev/null "$url" 2>/dev/null && echo 200 || true)
        fi
        [ "$code" = 200 ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# The store backups before this upgrade (name and checksum): one that is new
# or changed afterwards was written by the new binary's migration.
marker=""
[ -d "$PINCH_HOME" ] && marker=$(mktemp "$PINCH_HOME/.upgrade-XXXXXX" 2>/dev/null || echo "")
backups() { for b in "$PINCH_HOME"/state.redb.v*.bak; do [ -f "$b" ] && cksum "$b"; done; true; }
[ -n "$marker" ] && backups >"$marker"
ln -sfn "$OLD" "$LINK.prev"
ln -sfn "$NEW" "$LINK"
say "$LINK -> $NEW (previous: $LINK.prev -> $OLD)"
if restart && wait_ready "$NEW"; then
    say "the new version answers at $(ready_url "$NEW")"
    [ -n "$marker" ] && rm -f "$marker"
    exit 0
fi

say "the new version did not become ready within ${PINCH_READY_SECONDS}s; rolling back to $OLD" >&2
stop_service || true
ln -sfn "$OLD" "$LINK"
if [ -n "$marker" ]; then
    for bak in "$PINCH_HOME"/state.redb.v*.bak; do
        [ -f "$bak" ] || continue
        if ! grep -qxF "$(cksum "$bak")" "$marker" || [ "$bak" -nt "$marker" ]; then
            mv -f "$PINCH_HOME/state.redb" "$PINCH_HOME/state.redb.failed-upgrade"
            cp -p "$bak" "$PINCH_HOME/state.redb"
            say "restored the store from $bak (the migrated one is state.redb.failed-upgrade)" >&2
        fi
    done
    rm -f "$marker"
fi
if restart && wait_ready "$OLD"; then
    say "running the previous version again ($OLD)" >&2
else
    say "the previous version did not become ready either; see the service's log" >&2
fi
exit 1
