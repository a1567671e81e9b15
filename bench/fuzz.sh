#!/usr/bin/env bash
# Long fuzz run: every in-process target (src/fuzz/) and the running
# gateway (tests/fuzz_gateway.rs), for SECONDS in total (default 1800):
# three quarters in-process, split across the targets, one quarter against
# the gateway. The seed defaults to the current time and is printed;
# rerun with PINCH_FUZZ_SEED=<seed> to repeat a run. Failing inputs are
# written to tests/data/fuzz/<target>/ and replayed by every `cargo test`.
#
#   bench/fuzz.sh [SECONDS]          ($CARGO names the cargo to run)
set -euo pipefail
cd "$(dirname "$0")/.."
total="${1:-${PINCH_FUZZ_SECONDS:-1800}}"
seed="${PINCH_FUZZ_SEED:-$(date +%s)}"
inproc=$(( total * 3 / 4 ))
gateway=$(( total - inproc ))
echo "fuzz: ${total}s total (${inproc}s in-process, ${gateway}s gateway), PINCH_FUZZ_SEED=$seed"
"${CARGO:-cargo}" test --locked --lib fuzz_ --no-run >/dev/null 2>&1 || true
"${CARGO:-cargo}" test --locked --test fuzz_gateway --no-run >/dev/null 2>&1 || true
status=0
PINCH_FUZZ_SEED="$seed" PINCH_FUZZ_SECONDS="$inproc" \
    "${CARGO:-cargo}" test --locked --lib fuzz_ -- --nocapture --test-threads 1 2>&1 \
    | grep -vE '^\s+(Compiling|Finished|Running)' || status=1
PINCH_FUZZ_SEED="$seed" PINCH_FUZZ_SECONDS="$gateway" \
    "${CARGO:-cargo}" test --locked --test fuzz_gateway -- --nocapture 2>&1 \
    | grep -vE '^\s+(Compiling|Finished|Running)' || status=1
new=$(git status --porcelain -- tests/data/fuzz | wc -l)
echo "fuzz: seed $seed, new failing inputs under tests/data/fuzz: $new"
exit "$status"
