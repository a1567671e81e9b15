#!/usr/bin/env bash
# Upgrades of the amd64 .deb under a running systemd (packaging/check-deb-live.sh
# runs it in a booted container). Installs the previous release's package,
# fills its home through the service (a conversation, a scheduled job, a reply
# queued for a channel that is not connected), then:
#  1. upgrades to the new package while a drop-in makes the new binary's
#     start fail after it signalled readiness and migrated the store: the
#     postinst must put the previous binary and the pre-migration store back
#     and the service must run again with everything there;
#  2. removes the drop-in and upgrades again: the new binary runs, the store
#     is migrated, the conversation, the job and the queued reply are kept,
#     and the service started once.
# The drop-in is this check's own (ExecStartPost= that fails while
# /usr/bin/pinch differs from the kept previous binary); nothing in the
# package or the binary knows about it.
#
#   sudo packaging/check-deb-upgrade.sh PREVIOUS.deb NEW.deb
#
# Run as root on a disposable machine: it purges an installed pinch first
# only when PINCH_CHECK_DEB_FORCE=1.
set -uo pipefail
cd "$(dirname "$0")/.."
FAILS=0
say() { printf '\n== %s\n' "$*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" = 0 ] || { echo "check-deb-upgrade: run as root" >&2; exit 2; }
[ -d /run/systemd/system ] || { echo "check-deb-upgrade: needs a running systemd (use packaging/check-deb-live.sh)" >&2; exit 2; }
PREV=${1:-}; NEW=${2:-}
[ -f "$PREV" ] && [ -f "$NEW" ] || { echo "usage: check-deb-upgrade.sh PREVIOUS.deb NEW.deb (scripts/build-prev-deb.sh builds the previous one)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' pinch 2>/dev/null | grep -q 'install ok\|config-files'; then
    if [ "${PINCH_CHECK_DEB_FORCE:-0}" = 1 ]; then dpkg --purge pinch >/dev/null
    else echo "check-deb-upgrade: pinch is already installed here; set PINCH_CHECK_DEB_FORCE=1 to purge it first" >&2; exit 2; fi
fi
echo "previous: $PREV ($(dpkg-deb -f "$PREV" Version)); new: $NEW ($(dpkg-deb -f "$NEW" Version))"
URL=http://127.0.0.1:18789
STATE=/var/lib/pinch/state.redb
DROPIN=/etc/systemd/system/pinch.service.d/upgrade-check.conf
wait_active() {
    for _ in $(seq 300); do [ "$(systemctl is-active pinch.service)" = active ] && return 0; sleep 0.1; done
    return 1
}
# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
has() { echo "$2" | grep -qF -- "$1"; }
sessions() { curl -s "$URL/api/sessions"; }
queued() { /usr/bin/pinch queue list --json --url "$URL" 2>&1; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }
new_sum=$(dpkg-deb --fsys-tarfile "$NEW" | tar -xO ./usr/bin/pinch | sha256sum | cut -d' ' -f1)

fakedir=$(mktemp -d)
python3 cross/fake_llm.py >"$fakedir/port" 2>"$fakedir/log" &
fake=$!
cleanup() { kill "$fake" 2>/dev/null; rm -rf "$fakedir"; rm -f "$DROPIN"; }
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$fakedir/port" ] && break; sleep 0.1; done

# --- the previous release fills its home -------------------------------------
say "install the previous release and use it"
check "dpkg -i the previous package" dpkg -i "$PREV"
cat >/etc/pinch/pinch.json <<EOF
{
  "gateway": {"bind": "loopback", "port": 18789},
  "models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:$(cat "$fakedir/port")/v1",
    "api": "openai-completions", "apiKey": "fake-key",
    "models": [{"id": "m1", "contextWindow": 4096, "maxTokens": 256}]}}},
  "agents": {"defaults": {"model": {"primary": "fake/m1"}}}
}
EOF
systemctl restart pinch.service
check "the previous release runs" wait_active
old_sum=$(sum_of /usr/bin/pinch)
out=$(/usr/bin/pinch chat --url "$URL" "my cat is called Miso" 2>&1)
check "a chat with the previous release: $(echo "$out" | head -1)" has "Hello from fake: my cat is called Miso" "$out"
check "a repeating job" /usr/bin/pinch cron add --name water --every 2h --message "water the plants" --url "$URL"
at=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
check "a one-shot job answering to telegram:4242 (no Telegram configured: the reply stays queued)" \
    /usr/bin/pinch cron add --name standup --at "$at" --message "standup reminder" --to telegram:4242 --url "$URL"
check "the reply is queued" wait_for 30 sh -c "/usr/bin/pinch queue list --json --url $URL | grep -q 4242"

# --- an upgrade whose new binary does not become ready ------------------------
say "upgrade whose first start fails: rolled back"
mkdir -p "$(dirname "$DROPIN")"
cat >"$DROPIN" <<'EOF'
[Service]
ExecStartPost=/bin/sh -c '[ ! -e /usr/lib/pinch/pinch.prev ] || cmp -s /usr/bin/pinch /usr/lib/pinch/pinch.prev'
EOF
systemctl daemon-reload
t0=$(date +%s)
PINCH_READY_SECONDS=20 dpkg -i "$NEW" >"$fakedir/dpkg.log" 2>&1
rc=$?
cat "$fakedir/dpkg.log"
check "dpkg -i completes (rc $rc) and says it rolled back" sh -c "[ $rc = 0 ] && grep -q 'rolling back to the previous binary' '$fakedir/dpkg.log'"
echo "rollback took $(( $(date +%s) - t0 )) s (PINCH_READY_SECONDS=20)"
check "the kept previous binary is /usr/lib/pinch/pinch.prev" test "$(sum_of /usr/lib/pinch/pinch.prev)" = "$old_sum"
check "/usr/bin/pinch is the previous binary again" test "$(sum_of /usr/bin/pinch)" = "$old_sum"
check "the store the new binary migrated is kept aside" test -f "$STATE.failed-upgrade"
check "the pre-migration store is put back" grep -q "restored the store from $STATE.v1.bak" "$fakedir/dpkg.log"
check "the service runs again" wait_active
pid=$(systemctl show -p MainPID --value pinch.service)
check "it runs the previous binary" test "$(sum_of "/proc/$pid/exe" 2>/dev/null)" = "$old_sum"
check "the conversation is there" has "cli:" "$(sessions)"
check "the queued reply is there" has 4242 "$(queued)"
check "the job is there" has water "$(/usr/bin/pinch cron list --url "$URL" 2>&1)"

# --- the same upgrade, now succeeding ----------------------------------------
say "upgrade again without the failure: the new binary runs"
rm -f "$DROPIN"; systemctl daemon-reload
# The journal's --since has whole seconds: the rollback's own start must
# fall before t1.
sleep 1.1
t1=$(date +%s)
check "dpkg -i succeeds" dpkg -i "$NEW"
check "/usr/bin/pinch is the new binary" test "$(sum_of /usr/bin/pinch)" = "$new_sum"
check "the service runs" wait_active
pid=$(systemctl show -p MainPID --value pinch.service)
check "it runs the new binary" test "$(sum_of "/proc/$pid/exe" 2>/dev/null)" = "$new_sum"
journalctl -u pinch.service --since "@$t1" -o short-precise --no-pager 2>/dev/null | grep -E 'Started |Stopp' | head
starts=$(journalctl -u pinch.service --since "@$t1" -o cat --no-pager 2>/dev/null | grep -c '^Started ' || true)
check "the upgrade started the service once ($starts)" test "$starts" = 1
check "no restarts by systemd" test "$(systemctl show -p NRestarts --value pinch.service)" = 0
schema=$(curl -s "$URL/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["storage"]["schemaVersion"])' 2>/dev/null)
check "the store is migrated (schema $schema)" test "$schema" = 2
# The store the rollback left was the previous release's (schema 1): the
# new binary migrates it again.
check "the new binary found schema 1 and migrated it" sh -c \
    "journalctl -u pinch.service --since @$t1 -o cat --no-pager | grep -q 'migrating schema 1 -> 2'"
check "the pre-migration backup is kept" test -f "$STATE.v1.bak"
check "the conversation is there" has "cli:" "$(sessions)"
check "the job is there" has water "$(/usr/bin/pinch cron list --url "$URL" 2>&1)"
check "the queued reply is there" has 4242 "$(queued)"
out=$(/usr/bin/pinch chat --url "$URL" "still there?" 2>&1)
check "a chat with the new release: $(echo "$out" | head -1)" has "Hello from fake: still there?" "$out"

say "purge"
check "dpkg --purge succeeds" dpkg --purge pinch
check "the kept binary is gone" test ! -e /usr/lib/pinch

say "summary"
if [ "$FAILS" -gt 0 ]; then echo "check-deb-upgrade: $FAILS check(s) failed" >&2; exit 1; fi
echo "check-deb-upgrade: all checks passed"
