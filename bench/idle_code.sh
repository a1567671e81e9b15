#!/usr/bin/env bash
# Regenerates cross/idle-code.ld: which functions an idle gateway runs.
# Builds the release binary with its symbols (profile `size`), starts it
# under callgrind with Telegram, Slack and Discord connected to their local
# fakes (the `all three` case of tests/channels_footprint.rs), zeroes the
# counts when the gateway reports its first quiet release (the moment idle
# starts), collects for PINCH_IDLE_PROFILE_SECS (75 by default: a
# Telegram long poll, Discord heartbeats, a Slack ping) and writes the
# linker script from the functions that ran. Needs valgrind.
#
#   bench/idle_code.sh && bench/channels_rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo="cargo"
command -v cargo-locked >/dev/null && cargo="cargo-locked"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
secs="${PINCH_IDLE_PROFILE_SECS:-75}"
$cargo build --profile size --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/wrap.sh" <<WRAP
#!/bin/sh
# No re-exec for the stack-cache setting under valgrind.
export GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0
exec valgrind --tool=callgrind --demangle=no \
    --dump-instr=no --callgrind-out-file="$work/cg.%p" "$PWD/target/size/pinch" "\$@"
WRAP
chmod +x "$work/wrap.sh"
$cargo test --locked --test channels_footprint --no-run
PINCH_FOOTPRINT_BIN="$work/wrap.sh" PINCH_FOOTPRINT_SMAPS=1 \
    PINCH_FOOTPRINT_CASES="all three" PINCH_IDLE_SECS=$((secs + 30)) \
    $cargo test --locked --test channels_footprint -- --ignored --nocapture \
    > "$work/run.log" 2>&1 &
runner=$!
# Idle starts with the gateway's first quiet release of code pages.
until grep -q "quiet: released" "$work/run.log"; do
    kill -0 "$runner" 2>/dev/null || { cat "$work/run.log" >&2; exit 1; }
    sleep 1
done
callgrind_control -z >/dev/null
echo "collecting ${secs} s of idle"
sleep "$secs"
callgrind_control -d >/dev/null
wait "$runner" || true
python3 bench/idle_code.py cross/idle-code.ld target/size/pinch "$work"/cg.*
