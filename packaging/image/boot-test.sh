#!/usr/bin/env bash
# Boots the card image under qemu-system-aarch64 and checks what an owner
# would: with pinch.json and pinch.env put on the boot partition, the gateway
# comes up, `pinch chat` through a forwarded port is answered by a fake
# model on this machine, the secrets are gone from the boot partition and
# are 0600 in place; on a second boot a broken pinch.json is refused with
# pinch-setup.log on the boot partition and the gateway still answers.
#
#   packaging/image/boot-test.sh [IMAGE]   (default target/image/pinch-<version>-rpi-arm64.img)
#
# QEMU's `virt` machine boots the image's own kernel, initrd and root
# filesystem; the Pi boot firmware (config.txt, start*.elf, DTBs) is not
# exercised there. Everything the guest reaches is on this machine: QEMU's
# user network maps 10.0.2.2 to this machine's loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
IMG=${1:-target/image/pinch-$VERSION-rpi-arm64.img}
PINCH=${PINCH_BIN:-target/release/pinch}
BOOT_DEADLINE=${PINCH_BOOT_DEADLINE:-600}
T0=$(date +%s)
say() { echo "boot-test [+$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { echo "boot-test: FAILED: $*" >&2; exit 1; }
for t in qemu-system-aarch64 mcopy mdir debugfs python3 curl; do
    command -v "$t" >/dev/null || die "$t missing (apt-get install qemu-system-arm mtools e2fsprogs python3 curl)"
done
[ -f "$IMG" ] || { [ -f "$IMG.xz" ] && IMG_XZ=$IMG.xz; } || die "$IMG missing: run packaging/image/build-image.sh"
[ -x "$PINCH" ] || die "$PINCH missing: cargo build --release"

work=$(mktemp -d)
qemu_pid=""; fake_pid=""
cleanup() {
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
card=$work/card.img
if [ -n "${IMG_XZ:-}" ]; then xz -dc "$IMG_XZ" > "$card"; else cp --sparse=always "$IMG" "$card"; fi
# A bigger "card" than the image, so the first boot has something to grow into.
truncate -s +512M "$card"

# Partition offsets in bytes.
read -r boot_off root_off < <(python3 - "$card" <<'EOF'
import json, subprocess, sys
t = json.loads(subprocess.check_output(["sfdisk", "-J", sys.argv[1]]))["partitiontable"]
s = t.get("sectorsize", 512)
p = t["partitions"]
print(p[0]["start"] * s, p[1]["start"] * s)
EOF
)
BOOT="$card@@$boot_off"
root_part() { python3 - "$card" "$root_off" "$work/root.ext4" <<'EOF'
import sys
src, off, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(src, "rb") as f, open(dst, "wb") as o:
    f.seek(off)
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        o.write(b)
EOF
}

# The kernel and initrd come from the image's own boot partition.
kernel=$(mdir -b -i "$BOOT" ::/ | sed -n 's#^::/##p' | grep '^vmlinuz-' | sort -V | tail -1)
initrd=$(mdir -b -i "$BOOT" ::/ | sed -n 's#^::/##p' | grep '^initrd.img-' | sort -V | tail -1)
[ -n "$kernel" ] && [ -n "$initrd" ] || die "no vmlinuz-*/initrd.img-* on the boot partition"
mcopy -n -i "$BOOT" "::/$kernel" "$work/vmlinuz"
mcopy -n -i "$BOOT" "::/$initrd" "$work/initrd"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw_port=$(free_port)
python3 cross/fake_llm.py > "$work/fake.port" 2> "$work/fake.log" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
fake_port=$(head -1 "$work/fake.port")
[ -n "$fake_port" ] || die "the fake model did not start"

TOKEN=card-test-token-0123456789abcdef
cat > "$work/pinch.json" <<EOF
// Put on the boot partition before the first boot.
{
  "gateway": { "bind": "lan", "auth": { "token": "\$PINCH_CARD_TOKEN" } },
  "models": { "providers": { "host": {
    "baseUrl": "http://10.0.2.2:$fake_port/v1", "api": "openai-completions", "apiKey": "\$FAKE_API_KEY",
    "models": [{ "id": "fake", "contextWindow": 4096, "maxTokens": 256 }] } } },
  "agents": { "defaults": { "model": { "primary": "host/fake" } } },
}
EOF
printf 'PINCH_CARD_TOKEN=%s\nFAKE_API_KEY="sk-card-secret"\n' "$TOKEN" > "$work/pinch.env"
mcopy -o -i "$BOOT" "$work/pinch.json" "$work/pinch.env" ::/

boot() {  # boot LOGNAME
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -display none -no-reboot \
        -kernel "$work/vmlinuz" -initrd "$work/initrd" \
        -append "root=LABEL=RASPIROOT rw console=ttyAMA0 panic=10" \
        -drive "file=$card,format=raw,if=virtio" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$gw_port-:18789" -device virtio-net-pci,netdev=n0 \
        -serial "file:$work/$1" &
    qemu_pid=$!
    local t0
    t0=$(date +%s)
    until curl -fs "http://127.0.0.1:$gw_port/healthz" >/dev/null 2>&1; do
        kill -0 "$qemu_pid" 2>/dev/null || { tail -40 "$work/$1" >&2; die "the guest stopped before the gateway answered"; }
        if [ $(( $(date +%s) - t0 )) -gt "$BOOT_DEADLINE" ]; then
            tail -40 "$work/$1" >&2; die "no /healthz within ${BOOT_DEADLINE}s"
        fi
        sleep 2
    done
    say "boot $1: /healthz answers after $(( $(date +%s) - t0 ))s"
}
halt() {
    # The setup script syncs before the gateway starts; nothing else on the
    # card needs a clean shutdown for these checks.
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}

say "first boot (software-emulated aarch64: minutes)"
boot console-1.log
answer=$("$PINCH" chat --url "http://127.0.0.1:$gw_port" --token "$TOKEN" "hello from the host" 2>&1) \
    || die "pinch chat failed: $answer"
echo "$answer" | grep -q 'Hello from fake: hello from the host' || die "unexpected answer: $answer"
say "pinch chat answered: $answer"
grep -q 'chat/completions' "$work/fake.log" || die "the fake model saw no request"
halt

left=$(mdir -b -i "$BOOT" ::/ | sed -n 's#^::/##p')
echo "$left" | grep -qx 'pinch.env' && die "pinch.env is still on the boot partition"
echo "$left" | grep -qx 'pinch.json' && die "pinch.json is still on the boot partition"
root_part
mode_of() { debugfs -R "stat $1" "$work/root.ext4" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p' | head -1; }
for f in /etc/pinch/pinch.env /etc/pinch/pinch.json; do
    m=$(mode_of "$f")
    [ "$m" = 0600 ] || [ "$m" = 600 ] || die "$f has mode '$m', want 0600"
done
debugfs -R "cat /etc/pinch/pinch.env" "$work/root.ext4" 2>/dev/null | grep -q sk-card-secret \
    || die "/etc/pinch/pinch.env does not hold the key from the boot partition"
mcopy -n -i "$BOOT" ::/pinch-setup.log "$work/setup-1.log" || die "no pinch-setup.log after the first boot"
say "first boot: secrets moved off the boot partition, 0600 in place; setup log:"
sed 's/^/    /' "$work/setup-1.log" >&2

say "second boot with a broken pinch.json"
printf '{ "gateway": { "bind": "lan", "auth": { "token": "$PINCH_CARD_TOKEN" } }, "agents": { "defaults": { "modle": 1 } } }\n' \
    > "$work/broken.json"
mcopy -o -i "$BOOT" "$work/broken.json" ::/pinch.json
rm -f "$work/root.ext4"
boot console-2.log
"$PINCH" chat --url "http://127.0.0.1:$gw_port" --token "$TOKEN" "still there?" >/dev/null 2>&1 \
    || die "the gateway did not answer with the previous config after a broken pinch.json"
halt
mcopy -n -o -i "$BOOT" ::/pinch-setup.log "$work/setup-2.log" || die "no pinch-setup.log after the broken config"
grep -q 'ERROR' "$work/setup-2.log" || die "pinch-setup.log does not report the broken pinch.json"
grep -q 'modle' "$work/setup-2.log" || die "pinch-setup.log does not name the bad key"
mdir -b -i "$BOOT" ::/ | grep -q 'pinch.json' || die "the broken pinch.json should stay on the boot partition for fixing"
say "second boot: broken config refused, log on the boot partition:"
sed 's/^/    /' "$work/setup-2.log" >&2
say "PASSED"
