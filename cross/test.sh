#!/usr/bin/env bash
# Proves the edge builds: with rustc 1.85 (the MSRV) it builds the release
# binaries (host, aarch64, armv7, and armv5te when cross/setup-armel.sh has
# run) linked against the glibc baseline, checks each binary's highest
# GLIBC_ symbol version against that baseline, their size budgets and that
# no aws-lc-rs is in the dependency tree, runs an end-to-end smoke test of
# each binary (ARM ones under qemu-user) against cross/fake_llm.py, the host
# one also as on a Linux 4.4 kernel (cross/enosys.py: every newer system call
# answers ENOSYS), and runs the library's unit tests for the ARM targets
# under qemu-user.
#
#   cross/test.sh [TRIPLE...]      default: aarch64, armv7 (and armv5te); the
#                                  host binary is always built and smoke-tested
#   PINCH_CROSS_UNIT=0             skip the ARM unit tests (the slow part)
#   PINCH_SIZE_BUDGET=BYTES        size budget per stripped binary (4 MiB)
#   PINCH_GLIBC=2.17               the glibc baseline (see cross/build.sh)
#
# Needs cross/setup.sh's toolchain and cross/setup-zig.sh's linker (or
# rustup targets plus cross gcc and qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HOST=x86_64-unknown-linux-gnu
ARM=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
[ -d /usr/lib/rustlib/src/rust/library/std ] && ARM+=(arm-unknown-linux-gnueabihf)
[ -x "${PINCH_CACHE:-$HOME/.cache/pinch}/rust-armel/rustc" ] && ARM+=(armv5te-unknown-linux-gnueabi)
[ $# -gt 0 ] && ARM=("$@")
BUDGET=${PINCH_SIZE_BUDGET:-4194304}
BASELINE=${PINCH_GLIBC:-2.17}
export CARGO_TARGET_DIR=target
FAILS=()

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; FAILS+=("$*"); }

# The Debian 1.85 toolchain when it has the target's std, else rustup.
cargo185() {
    local t=$1; shift
    local armel="${PINCH_CACHE:-$HOME/.cache/pinch}/rust-armel/rustc"
    local cargo=${CARGO:-cargo}
    if [ "$t" = armv5te-unknown-linux-gnueabi ] && [ -x "$armel" ]; then
        env PATH="/usr/bin:$PATH" RUSTC="$armel" "$cargo" "$@"
    elif ls "/usr/lib/rustlib/$t/lib"/libstd-*.rlib >/dev/null 2>&1 && [ "${PINCH_TOOLCHAIN:-}" != rustup ]; then
        env PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc "$cargo" "$@"
    else
        "$cargo" "$@"
    fi
}

runner() {
    case "$1" in
        # QEMU_LD_PREFIX rather than -L: it also reaches the gateway's
        # re-exec of itself where binfmt_misc runs ARM binaries.
        aarch64-unknown-linux-gnu) echo "env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64-static" ;;
        armv7-unknown-linux-gnueabihf) echo "env QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf qemu-arm-static" ;;
        # Debian's armhf C library is ARMv7 code, so this one runs on qemu's
        # default CPU; the ARMv6 check is on the binary's build attributes.
        arm-unknown-linux-gnueabihf) echo "env QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf qemu-arm-static" ;;
        # An ARM926EJ-S (ARMv5TE), the CPU of Kirkwood NAS boxes.
        armv5te-unknown-linux-gnueabi) echo "env QEMU_LD_PREFIX=/usr/arm-linux-gnueabi QEMU_CPU=arm926 qemu-arm-static" ;;
        *) echo "" ;;
    esac
}

strip_tool() {
    case "$1" in
        aarch64-unknown-linux-gnu) echo aarch64-linux-gnu-strip ;;
        armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) echo arm-linux-gnueabihf-strip ;;
        armv5te-unknown-linux-gnueabi) echo arm-linux-gnueabi-strip ;;
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

# --- 3b. glibc ceiling: no symbol version newer than the baseline ----------
# The highest GLIBC_x.y the binary needs (readelf reads any architecture).
glibc_ceiling() {
    readelf -V --wide "$1" | sed -n 's/.*Name: GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -uV | tail -1
}
say "glibc ceilings (baseline $BASELINE)"
for t in "$HOST" "${ARM[@]}"; do
    ceiling=$(glibc_ceiling "target/$t/release/pinch")
    printf '%-32s GLIBC_%s\n' "$t" "${ceiling:-none}"
    if [ -z "$ceiling" ]; then
        fail "$t: no GLIBC_ symbol versions found (not a dynamically linked glibc binary?)"
    elif [ "$(printf '%s\n%s\n' "$ceiling" "$BASELINE" | sort -V | tail -1)" != "$BASELINE" ]; then
        fail "$t needs GLIBC_$ceiling, newer than the baseline $BASELINE: build with cross/build.sh (zig) and handle the new symbol at run time"
        readelf -V --wide "target/$t/release/pinch" | grep -E "GLIBC_$ceiling" | head -5 >&2
    fi
done

# --- 3c. 32-bit ARM: every object was built for the oldest CPU of the target
# (the ARM build attributes the linker merges), so no newer instruction from
# C or assembly (ring) slipped in.
say "ARM CPU architecture attributes"
for t in "${ARM[@]}"; do
    case "$t" in
        armv5te-*) want="v5TE" ;;
        arm-unknown-linux-gnueabihf) want="v6" ;;
        armv7-*) want="v7" ;;
        *) continue ;;
    esac
    arch=$(readelf -A "target/$t/release/pinch" | sed -n 's/.*Tag_CPU_arch: //p' | head -1)
    printf '%-32s Tag_CPU_arch %s\n' "$t" "${arch:-none}"
    [ "$arch" = "$want" ] || fail "$t is built for ${arch:-an unknown CPU}, not $want"
done

# --- 4. end-to-end smoke: gateway + healthz + chat through the fake model ---
# smoke TRIPLE [old-kernel]: with "old-kernel", the gateway and the client
# run under cross/enosys.py (Linux 4.4's system calls only).
smoke() {
    local t=$1 mode=${2:-} run bin dir fake_pid gw_pid addr="" out code
    run=$(runner "$t")
    if [ "$mode" = old-kernel ]; then
        run="/usr/bin/python3 $ROOT/cross/enosys.py"
        t="$t (Linux 4.4 system calls)"
    fi
    bin="$ROOT/target/${1}/release/pinch"
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
    # The log exists before the gateway starts: the background job opens it
    # only once it is scheduled.
    : >"$dir/gw.log"
    PINCH_HOME="$dir" RUST_LOG=info $run "$bin" gateway run --port 0 2>>"$dir/gw.log" &
    gw_pid=$!
    for _ in $(seq 300); do
        addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$dir/gw.log" | head -1 || true)
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
if /usr/bin/python3 -c 'import seccomp' 2>/dev/null; then
    smoke "$HOST" old-kernel
else
    fail "old-kernel smoke test not run: /usr/bin/python3 lacks the seccomp module (apt-get install python3-seccomp)"
fi

# --- 5. unit tests under qemu-user (the cargo runner in .cargo/config.toml) -
if [ "${PINCH_CROSS_UNIT:-1}" != 0 ]; then
    for t in "${ARM[@]}"; do
        # ARMv6 hard float shares its code paths with armv7 and armv5te (both
        # tested); building its test binary with its own standard library
        # would add minutes for no new coverage.
        [ "$t" = arm-unknown-linux-gnueabihf ] && { echo "not run: $t unit tests (covered by armv7 and armv5te)"; continue; }
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
