#!/usr/bin/env bash
# Checks the host's release tarball like a NAS install: unpacks it into a
# scratch root, checks its contents, then starts the gateway with the
# OpenRC script's start/stop functions and with the SysV script, as an
# unprivileged user with PINCH_HOME in the scratch root, and checks that
# /healthz answers and that the process runs as that user; then stops it.
# Run as root (it switches users). OpenRC's own helpers (ebegin, eend,
# checkpath) are stubbed when OpenRC is not installed; start-stop-daemon is
# the machine's (Debian's dpkg ships it).
#
#   packaging/check-tarball.sh [TARBALL]   default: target/tarball/pinch-<version>-x86_64-unknown-linux-gnu.tar.gz
#   PINCH_CHECK_USER=nobody                the unprivileged user to run as
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
TARBALL=${1:-target/tarball/pinch-$VERSION-x86_64-unknown-linux-gnu.tar.gz}
RUN_AS=${PINCH_CHECK_USER:-nobody}
[ "$(id -u)" = 0 ] || { echo "check-tarball: run as root (it starts the gateway as $RUN_AS)" >&2; exit 1; }
[ -f "$TARBALL" ] || { echo "check-tarball: $TARBALL is missing: run packaging/build-tarball.sh" >&2; exit 1; }
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

ROOT=$(mktemp -d /tmp/pinch-tarball.XXXXXX)
chmod 0755 "$ROOT"
cleanup() {
    # Whatever is still running from the scratch root is stopped.
    [ -s "$ROOT/run/pinch.pid" ] && kill -KILL "$(cat "$ROOT/run/pinch.pid")" 2>/dev/null || true
    rm -rf "$ROOT"
}
trap cleanup EXIT

mkdir -p "$ROOT/opt" "$ROOT/run" "$ROOT/var/lib"
tar -xzf "$TARBALL" -C "$ROOT/opt"
top=$(tar -tzf "$TARBALL" | sed -n '1s|/.*||p')
ln -s "$top" "$ROOT/opt/pinch"
APP="$ROOT/opt/pinch"
for f in bin/pinch pinch.json README-NAS.md README.md upgrade.sh init/systemd/pinch.service init/systemd/pinch-user.service \
         init/openrc/pinch init/openrc/pinch.confd init/sysv/pinch init/synology/pinch-bootup.sh init/qnap/autorun.sh; do
    [ -e "$APP/$f" ] || fail "the tarball has no $f"
done
[ -n "$(find "$APP/share/pinch/skills" -name SKILL.md 2>/dev/null)" ] || fail "the tarball has no bundled skills"
[ "$top" = "pinch-$VERSION-x86_64-unknown-linux-gnu" ] || fail "top directory is $top"
"$APP/bin/pinch" --version >/dev/null || fail "bin/pinch --version"
ok "$(basename "$TARBALL"): contents ($(tar -tzf "$TARBALL" | wc -l) entries)"

HOME_DIR="$ROOT/var/lib/pinch"
install -d -m 0700 -o "$RUN_AS" "$HOME_DIR"
# The annotated example, with an ephemeral port (the test must not use 18789).
sed 's/"port": 18789/"port": 0/' "$APP/pinch.json" >"$HOME_DIR/pinch.json"
chown "$RUN_AS" "$HOME_DIR/pinch.json"; chmod 0600 "$HOME_DIR/pinch.json"
grep -q '"port": 0' "$HOME_DIR/pinch.json" || fail "example pinch.json has no \"port\": 18789 to replace"
su -s /bin/sh "$RUN_AS" -c "PINCH_HOME='$HOME_DIR' '$APP/bin/pinch' config check" >/dev/null \
    || fail "the example pinch.json does not pass \`pinch config check\`"

export PINCH_BIN="$APP/bin/pinch" PINCH_USER="$RUN_AS" PINCH_HOME="$HOME_DIR" PINCH_PIDFILE="$ROOT/run/pinch.pid"
LOG="$HOME_DIR/logs/gateway.log"

# Waits for the gateway started by an init script: its address in the log,
# /healthz 200, and the pidfile's process owned by RUN_AS.
check_running() {
    local how=$1 addr="" pid code owner
    for _ in $(seq 100); do
        addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$LOG" 2>/dev/null | tail -1 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { fail "$how: the gateway did not start"; cat "$LOG" >&2 2>/dev/null || true; return; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/healthz" || true)
    [ "$code" = 200 ] || fail "$how: /healthz answered $code"
    pid=$(cat "$PINCH_PIDFILE" 2>/dev/null || true)
    owner=$(ps -o user= -p "${pid:-0}" 2>/dev/null | tr -d ' ' || true)
    comm=$(ps -o comm= -p "${pid:-0}" 2>/dev/null | tr -d ' ' || true)
    [ "$owner" = "$RUN_AS" ] || fail "$how: the pidfile's process ($pid) runs as '${owner}', not $RUN_AS"
    case "$comm" in pinch*) ;; *) fail "$how: the pidfile's process ($pid) is '${comm}', not pinch" ;; esac
    [ "$code" = 200 ] && ok "$how: gateway on $addr, /healthz 200, pid $pid as $owner"
    STARTED_PID=$pid
}
check_stopped() {
    local how=$1
    for _ in $(seq 100); do kill -0 "$STARTED_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$STARTED_PID" 2>/dev/null; then fail "$how: pid $STARTED_PID still runs after stop"
    else ok "$how: stopped"; fi
    [ ! -e "$PINCH_PIDFILE" ] || fail "$how: the pidfile is left behind"
}

# --- OpenRC: `pinch service install --openrc` stages /etc/init.d/pinch and
# /etc/conf.d/pinch in the scratch root; then, as openrc-run does, the
# conf.d file is sourced, then the script, and its start()/stop() run. ---------
"$APP/bin/pinch" service install --openrc --root "$ROOT" --run-as "$RUN_AS" >/dev/null \
    || fail "pinch service install --openrc --root failed"
cmp -s "$ROOT/etc/init.d/pinch" "$APP/init/openrc/pinch" \
    || fail "the installed OpenRC script differs from the tarball's"
grep -qx "PINCH_HOME='$HOME_DIR'" "$ROOT/etc/conf.d/pinch" || fail "conf.d does not name PINCH_HOME"
openrc() {
    (
        if ! command -v checkpath >/dev/null; then
            ebegin() { echo " * $*"; }
            eend() { local s=${1:-0}; shift || true; [ "$s" = 0 ] || echo " * failed: $*" >&2; return "$s"; }
            einfo() { echo " * $*"; }; ewarn() { echo " * $*" >&2; }; eerror() { echo " * $*" >&2; }
            # checkpath -d -m MODE -o OWNER DIR...
            checkpath() {
                local mode=0755 owner=root
                while [ $# -gt 0 ]; do
                    case "$1" in -d) shift ;; -m) mode=$2; shift 2 ;; -o) owner=$2; shift 2 ;; *) break ;; esac
                done
                install -d -m "$mode" -o "${owner%%:*}" "$@"
            }
        fi
        # shellcheck disable=SC1090,SC1091
        . "$ROOT/etc/conf.d/pinch"
        # shellcheck disable=SC1090,SC1091
        . "$ROOT/etc/init.d/pinch"
        "$1"
    )
}
STARTED_PID=""
rm -f "$LOG"
openrc start || fail "OpenRC start() failed"
check_running "OpenRC start()"
openrc stop || fail "OpenRC stop() failed"
check_stopped "OpenRC stop()"

# --- SysV: the script as init runs it ------------------------------------------
: >"$LOG"
sh "$APP/init/sysv/pinch" start || fail "SysV start failed"
check_running "SysV start"
sh "$APP/init/sysv/pinch" status >/dev/null || fail "SysV status says not running"
sh "$APP/init/sysv/pinch" stop || fail "SysV stop failed"
check_stopped "SysV stop"
st=0; sh "$APP/init/sysv/pinch" status >/dev/null || st=$?
[ "$st" = 3 ] || fail "SysV status after stop exited $st, not 3"

# --- SysV without start-stop-daemon (Synology, some BusyBox builds): su -------
if command -v su >/dev/null && [ -x /usr/bin/su ] || [ -x /bin/su ]; then
    : >"$LOG"
    PATH=/usr/bin:/bin sh -c 'command -v start-stop-daemon' >/dev/null 2>&1 \
        && fail "start-stop-daemon is in /usr/bin or /bin: the su fallback cannot be isolated"
    PATH=/usr/bin:/bin sh "$APP/init/sysv/pinch" start || fail "SysV start (su) failed"
    check_running "SysV start (su, no start-stop-daemon)"
    PATH=/usr/bin:/bin sh "$APP/init/sysv/pinch" stop || fail "SysV stop (su) failed"
    check_stopped "SysV stop (su)"
else
    fail "no su: the SysV script's fallback was not tested"
fi

if [ "$FAILS" -gt 0 ]; then echo "check-tarball: $FAILS check(s) failed" >&2; exit 1; fi
echo "check-tarball: all checks passed"
