#!/usr/bin/env bash
# Upgrades of the release tarball as a NAS owner runs them (upgrade.sh of
# the unpacked new release), under the SysV script in a scratch root as an
# unprivileged user. The previous release is the new tarball's layout with
# the previous release's binary (scripts/build-prev.sh); it fills its home
# (a conversation, a scheduled job, a reply queued for a channel that is not
# configured). Then:
#  1. upgrade.sh while this check's restart command stops the new version
#     right after it migrated the store (it never answers /healthz): the link
#     must point at the previous folder again, the pre-migration store must
#     be back (the migrated one kept aside) and the previous binary must run
#     with everything there;
#  2. upgrade.sh again, without the failure: the new binary runs (started
#     once), the previous folder is kept as <link>.prev, the store is
#     migrated, the config is byte for byte the same and the conversation,
#     the job and the queued reply are there.
# The failure is this check's own (its PINCH_RESTART wrapper); nothing in
# the tarball or the binary knows about it.
#
#   packaging/check-tarball-upgrade.sh [TARBALL] PREVIOUS_BINARY
#   PINCH_CHECK_USER=nobody     the unprivileged user to run as
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
TARBALL=${1:-}
[ -n "$TARBALL" ] || TARBALL=target/tarball/pinch-$VERSION-x86_64-unknown-linux-gnu.tar.gz
PREV_BIN=${2:-${PINCH_PREV_BIN:-}}
RUN_AS=${PINCH_CHECK_USER:-nobody}
[ "$(id -u)" = 0 ] || { echo "check-tarball-upgrade: run as root (it starts the gateway as $RUN_AS)" >&2; exit 2; }
[ -f "$TARBALL" ] || { echo "check-tarball-upgrade: $TARBALL is missing: run packaging/build-tarball.sh" >&2; exit 2; }
[ -x "$PREV_BIN" ] || { echo "usage: check-tarball-upgrade.sh [TARBALL] PREVIOUS_BINARY (scripts/build-prev.sh builds it)" >&2; exit 2; }
FAILS=0
say() { printf '\n== %s\n' "$*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
has() { echo "$2" | grep -qF -- "$1"; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }
# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

ROOT=$(mktemp -d /tmp/pinch-tarball-upgrade.XXXXXX)
chmod 0755 "$ROOT"
fake=""
cleanup() {
    [ -s "$ROOT/run/pinch.pid" ] && kill -KILL "$(cat "$ROOT/run/pinch.pid")" 2>/dev/null
    [ -n "$fake" ] && kill "$fake" 2>/dev/null
    rm -rf "$ROOT"
}
trap cleanup EXIT
mkdir -p "$ROOT/opt/new" "$ROOT/opt/prev" "$ROOT/run" "$ROOT/var/lib"
tar -xzf "$TARBALL" -C "$ROOT/opt/new"
top=$(tar -tzf "$TARBALL" | sed -n '1s|/.*||p')
NEW="$ROOT/opt/new/$top"
OLD="$ROOT/opt/pinch-previous"
tar -xzf "$TARBALL" -C "$ROOT/opt/prev"
mv "$ROOT/opt/prev/$top" "$OLD"
install -m 0755 "$PREV_BIN" "$OLD/bin/pinch"
LINK="$ROOT/opt/pinch"
ln -s "$OLD" "$LINK"
[ -x "$NEW/upgrade.sh" ] || { echo "check-tarball-upgrade: the tarball has no upgrade.sh" >&2; exit 1; }
old_sum=$(sum_of "$OLD/bin/pinch"); new_sum=$(sum_of "$NEW/bin/pinch")
[ "$old_sum" != "$new_sum" ] || { echo "check-tarball-upgrade: the previous binary is the new one" >&2; exit 2; }

python3 cross/fake_llm.py >"$ROOT/fake.port" 2>"$ROOT/fake.log" &
fake=$!
for _ in $(seq 50); do [ -s "$ROOT/fake.port" ] && break; sleep 0.1; done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

HOME_DIR="$ROOT/var/lib/pinch"
install -d -m 0700 -o "$RUN_AS" "$HOME_DIR"
cat >"$HOME_DIR/pinch.json" <<EOF
{
  "gateway": {"bind": "loopback", "port": $PORT},
  "models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:$(cat "$ROOT/fake.port")/v1",
    "api": "openai-completions", "apiKey": "fake-key",
    "models": [{"id": "m1", "contextWindow": 4096, "maxTokens": 256}]}}},
  "agents": {"defaults": {"model": {"primary": "fake/m1"}}}
}
EOF
chown "$RUN_AS" "$HOME_DIR/pinch.json"; chmod 0600 "$HOME_DIR/pinch.json"
config_sum=$(sum_of "$HOME_DIR/pinch.json")
STATE="$HOME_DIR/state.redb"
LOG="$HOME_DIR/logs/gateway.log"
export PINCH_BIN="$LINK/bin/pinch" PINCH_USER="$RUN_AS" PINCH_HOME="$HOME_DIR" PINCH_PIDFILE="$ROOT/run/pinch.pid"
INIT="$NEW/init/sysv/pinch"
running_sum() { local pid; pid=$(cat "$PINCH_PIDFILE" 2>/dev/null); sum_of "/proc/${pid:-0}/exe" 2>/dev/null; }
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]; }
cli() { "$LINK/bin/pinch" "$@" --url "$URL" 2>&1; }

# The restart command upgrade.sh runs. With $ROOT/break present, a new
# binary is stopped again once it has migrated the store and listens.
cat >"$ROOT/restart.sh" <<EOF
#!/bin/sh
sh "$INIT" stop >/dev/null
sh "$INIT" start >/dev/null
if [ -e "$ROOT/break" ] && [ "\$(readlink -f "$LINK")" != "$OLD" ]; then
    n=0
    until [ -f "$STATE.v1.bak" ] && grep -q "listening on" "$LOG"; do
        n=\$((n + 1)); [ \$n -gt 200 ] && break; sleep 0.1
    done
    sh "$INIT" stop >/dev/null
fi
EOF
export PINCH_RESTART="sh $ROOT/restart.sh" PINCH_STOP="sh $INIT stop" PINCH_READY_URL="$URL/healthz"

# --- the previous release fills its home -------------------------------------
say "the previous release runs and is used"
sh "$INIT" start >/dev/null
check "the previous release answers /healthz" wait_for 20 healthy
check "it is the previous binary" test "$(running_sum)" = "$old_sum"
out=$(cli chat "my cat is called Miso")
check "a chat: $(echo "$out" | head -1)" has "Hello from fake: my cat is called Miso" "$out"
check "a repeating job" cli cron add --name water --every 2h --message "water the plants"
at=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
check "a one-shot job answering to telegram:4242 (no Telegram: the reply stays queued)" \
    cli cron add --name standup --at "$at" --message "standup reminder" --to telegram:4242
check "the reply is queued" wait_for 30 sh -c "'$LINK/bin/pinch' queue list --json --url $URL | grep -q 4242"

# --- an upgrade whose new version does not become ready -----------------------
say "upgrade whose new version stops after migrating: rolled back"
touch "$ROOT/break"
t0=$(date +%s)
PINCH_READY_SECONDS=5 "$NEW/upgrade.sh" "$LINK" >"$ROOT/upgrade1.log" 2>&1
rc=$?
cat "$ROOT/upgrade1.log"
echo "rollback took $(( $(date +%s) - t0 )) s (PINCH_READY_SECONDS=5)"
check "upgrade.sh fails (rc $rc) and says it rolled back" \
    sh -c "[ $rc = 1 ] && grep -q 'rolling back to' '$ROOT/upgrade1.log'"
check "the link points at the previous folder again" test "$(readlink -f "$LINK")" = "$OLD"
check "the new binary had migrated the store (v1 backup written)" test -f "$STATE.v1.bak"
check "the migrated store is kept aside" test -f "$STATE.failed-upgrade"
check "the pre-migration store is put back" grep -q "restored the store from $STATE.v1.bak" "$ROOT/upgrade1.log"
check "the previous release answers again" wait_for 20 healthy
check "it is the previous binary" test "$(running_sum)" = "$old_sum"
check "the conversation is there" has "cli:" "$(curl -s "$URL/api/sessions")"
check "the job is there" has water "$(cli cron list)"
check "the queued reply is there" has 4242 "$(cli queue list --json)"

# --- the same upgrade, now succeeding ----------------------------------------
say "upgrade again without the failure: the new version runs"
rm -f "$ROOT/break"
starts_before=$(grep -c "listening on" "$LOG")
"$NEW/upgrade.sh" "$LINK" >"$ROOT/upgrade2.log" 2>&1
rc=$?
cat "$ROOT/upgrade2.log"
check "upgrade.sh succeeds (rc $rc)" test "$rc" = 0
check "the link points at the new folder" test "$(readlink -f "$LINK")" = "$NEW"
check "the previous folder is kept beside it as $LINK.prev" test "$(readlink -f "$LINK.prev")" = "$OLD"
check "the previous binary is kept" test "$(sum_of "$LINK.prev/bin/pinch")" = "$old_sum"
check "the new release answers" healthy
check "it is the new binary" test "$(running_sum)" = "$new_sum"
starts=$(( $(grep -c "listening on" "$LOG") - starts_before ))
check "the upgrade started the gateway once ($starts)" test "$starts" = 1
schema=$(curl -s "$URL/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["storage"]["schemaVersion"])' 2>/dev/null)
check "the store is migrated (schema $schema)" test "$schema" = 2
check "the config is unchanged" test "$(sum_of "$HOME_DIR/pinch.json")" = "$config_sum"
check "the conversation is there" has "cli:" "$(curl -s "$URL/api/sessions")"
check "the job is there" has water "$(cli cron list)"
check "the queued reply is there" has 4242 "$(cli queue list --json)"
out=$(cli chat "still there?")
check "a chat with the new release: $(echo "$out" | head -1)" has "Hello from fake: still there?" "$out"
sh "$INIT" stop >/dev/null

say "summary"
if [ "$FAILS" -gt 0 ]; then echo "check-tarball-upgrade: $FAILS check(s) failed" >&2; exit 1; fi
echo "check-tarball-upgrade: all checks passed"
