#!/usr/bin/env bash
# Proves the edge builds: with rustc 1.85 (the MSRV) it builds the release
# binaries (host, aarch64, armv7), checks their size budgets and that no
# aws-lc-rs is in the dependency tree, runs an end-to-end smoke test of each
# binary (ARM ones under qemu-user) against cross/fake_llm.py, and runs the
# library's unit tests for both ARM targets under qemu-user.
#
#   cross/test.sh [TRIPLE...]      default: aarch64 and armv7 (the host binary
#                                  is always built and smoke-tested)
#   PINCH_CROSS_UNIT=0             skip the ARM unit tests (the slow part)
#   PINCH_SIZE_BUDGET=BYTES        size budget per stripped binary (4 MiB)
#
# Needs cross/setup.sh's toolchain (or rustup targets plus cross gcc and qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HOST=x86_64-unknown-linux-gnu
ARM=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
[ $# -gt 0 ] && ARM=("$@")
BUDGET=${PINCH_SIZE_BUDGET:-4194304}
export CARGO_TARGET_DIR=target
FAILS=()

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; FAILS+=("$*"); }

# The Debian 1.85 toolchain when it has the target's std, else rustup.
cargo185() {
    local t=$1; shift
    if ls "/usr/lib/rustlib/$t/lib"/libstd-*.rlib >/dev/null 2>&1 && [ "${PINCH_TOOLCHAIN:-}" != rustup ]; then
        env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc /usr/bin/cargo "$@"
    else
        cargo "$@"
    fi
}

runner() {
    case "$1" in
        # QEMU_LD_PREFIX rather than -L: it also reaches the gateway's
        # re-exec of itself where binfmt_misc runs ARM binaries.
        aarch64-unknown-linux-gnu) echo "env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64-static" ;;
        armv7-unknown-linux-gnueabihf) echo "env QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf qemu-arm-static" ;;
        *) echo "" ;;
    esac
}

strip_tool() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo aarch64-linux-gnu-strip ;;
        armv7-unknown-linux-gnueabihf) echo arm-linux-gnueabihf-strip ;;
        *) echo strip ;;
    esac
}

# --- 1. no aws-lc-rs anywhere (it needs cmake and breaks the cross build) ---
say "guard: cargo tree -i aws-lc-rs"
out=$(cargo tree --locked -i aws-lc-rs --target all -e normal,build 2>&1 || true)
if echo "$out" | grep -q "did not match any packages"; then
    echo "ok: aws-lc-rs is not in the tree"
else
    echo "$out" | head -20
    fail "aws-lc-rs is in the dependency tree (use default-features = false on rustls and its users)"
fi

# --- 2. release builds with 1.85, including the host (the MSRV proof) -------
say "release builds: $HOST ${ARM[*]}"
cross/build.sh "$HOST" "${ARM[@]}"

# --- 3. size budgets --------------------------------------------------------
say "size budgets (stripped, budget $BUDGET bytes)"
for t in "$HOST" "${ARM[@]}"; do
    bin="target/$t/release/pinch"
    tmp=$(mktemp)
    "$(strip_tool "$t")" -o "$tmp" "$bin"
    size=$(stat -c %s "$tmp"); rm -f "$tmp"
    printf '%-32s %9d bytes  (%s KiB)\n' "$t" "$size" "$((size / 1024))"
    if [ "$t" != "$HOST" ] && [ "$size" -gt "$BUDGET" ]; then
        fail "$t binary is $size bytes, over the budget of $BUDGET"
    fi
done

# --- 4. end-to-end smoke: gateway + healthz + chat through the fake model ---
smoke() {
    local t=$1 run bin dir fake_pid gw_pid addr="" out code
    run=$(runner "$t")
    bin="$ROOT/target/$t/release/pinch"
    dir=$(mktemp -d); chmod 700 "$dir"
    python3 cross/fake_llm.py >"$dir/fake.port" 2>"$dir/fake.log" &
    fake_pid=$!
    for _ in $(seq 50); do [ -s "$dir/fake.port" ] && break; sleep 0.1; done
    local port; port=$(head -1 "$dir/fake.port")
    cat >"$dir/pinch.json" <<EOF
{
  // smoke test config: one provider, the fake model server
  "models": {"providers": {"fake": {
    "baseUrl": "http://127.0.0.1:$port/v1", "api": "openai-completions", "apiKey": "smoke-key",
    "models": [{"id": "m1", "contextWindow": 4096, "maxTokens": 256}]}}},
  "agents": {"defaults": {"model": {"primary": "fake/m1"}}},
  // qemu-user has no Landlock syscalls: without this, exec is refused
  "tools": {"exec": {"sandbox": "off"}}
}
EOF
    chmod 600 "$dir/pinch.json"
    PINCH_HOME="$dir" RUST_LOG=info $run "$bin" gateway run --port 0 2>"$dir/gw.log" &
    gw_pid=$!
    for _ in $(seq 300); do
        addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$dir/gw.log" | head -1)
        [ -n "$addr" ] && break
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    local ok=1
    if [ -z "$addr" ]; then
        fail "$t: gateway did not start"; cat "$dir/gw.log" >&2; ok=0
    else
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/healthz" || true)
        [ "$code" = 200 ] || { fail "$t: /healthz answered $code"; ok=0; }
        out=$(PINCH_HOME="$dir" $run "$bin" chat --url "http://$addr" "ping from $t" 2>"$dir/chat.err" || true)
        if [ "$out" != "Hello from fake: ping from $t" ]; then
            fail "$t: chat returned ${out@Q}"; cat "$dir/chat.err" "$dir/gw.log" >&2; ok=0
        fi
        grep -q "auth='Bearer smoke-key'" "$dir/fake.log" || { fail "$t: the fake saw no Bearer key"; ok=0; }
        # The exec tool: the model asks for `date`, the gateway runs it (fork,
        # resource limits, exec) and sends the output back to the model.
        out=$(PINCH_HOME="$dir" $run "$bin" chat --url "http://$addr" "exec: date +tool-ok-%Y" 2>>"$dir/chat.err" || true)
        case "$out" in
            "tool output: tool-ok-"*) ;;
            *) fail "$t: exec tool round trip returned ${out@Q}"; cat "$dir/chat.err" >&2; ok=0 ;;
        esac
    fi
    kill -TERM "$gw_pid" 2>/dev/null || true
    local st=0; wait "$gw_pid" || st=$?
    [ "$st" = 0 ] || [ -z "$addr" ] || { fail "$t: gateway exited $st after SIGTERM"; ok=0; }
    kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true
    rm -rf "$dir"
    [ "$ok" = 1 ] && echo "ok: $t gateway on $addr: /healthz 200, chat streamed the fake's reply, exec tool ran date, clean SIGTERM exit"
    return 0
}
say "smoke tests"
for t in "$HOST" "${ARM[@]}"; do smoke "$t"; done

# --- 5. unit tests under qemu-user (the cargo runner in .cargo/config.toml) -
if [ "${PINCH_CROSS_UNIT:-1}" != 0 ]; then
    for t in "${ARM[@]}"; do
        say "unit tests (--lib) for $t under qemu"
        start=$(date +%s)
        if cargo185 "$t" test --locked --lib --target "$t"; then
            echo "ok: $t unit tests ($(( $(date +%s) - start ))s incl. build)"
        else
            fail "$t unit tests"
        fi
    done
fi

say "summary"
if [ ${#FAILS[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILS[@]}" >&2
    exit 1
fi
echo "cross/test: all checks passed"
