#!/usr/bin/env bash
# Idle footprint of each channel adapter: builds the release binary once,
# then starts it with no channel, Telegram only, Slack only, Discord only
# and all three (each against its local fake on 127.0.0.1, measured once
# /status says every adapter is up and after PINCH_IDLE_SECS of idle, 10 by
# default) and prints VmRSS, anonymous and file-backed memory, PSS and
# Private (smaps_rollup) and the thread count per case, with each adapter's
# cost over the no-channel case. Budget: all three connected <= 3.5 MB.
# PINCH_FOOTPRINT_CASES="no channel,all three" picks cases;
# PINCH_FOOTPRINT_COLD=1 drops the binary from the page cache before each
# start; PINCH_FOOTPRINT_SMAPS=1 lists the largest mappings.
#
#   bench/channels_rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo="cargo"
command -v cargo-locked >/dev/null && cargo="cargo-locked"
$cargo build --release --locked
PINCH_FOOTPRINT_BIN="$PWD/target/release/pinch" \
    $cargo test --locked --test channels_footprint -- --ignored --nocapture --test-threads=1
