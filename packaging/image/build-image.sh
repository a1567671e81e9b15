#!/usr/bin/env bash
# Builds the Raspberry Pi card image: target/image/pinch-<version>-rpi-arm64.img.xz
# (Pi 3, 4, 400, Zero 2 W) from Debian's own packages, with the pinch .deb
# installed and its hardened unit enabled. Nothing is downloaded except
# Debian packages, from the apt sources this machine already uses.
#
#   packaging/image/build-image.sh [PINCH_DEB]
#
# PINCH_DEB defaults to target/debian/pinch_<version>-1_arm64.deb, which
# packaging/build-deb.sh arm64 builds. The Debian root filesystem
# (everything but pinch) is cached in ~/.cache/pinch/image/ keyed by the
# package list, so a rebuild after a pinch change only re-packs the image.
#
# Layout (what Debian's raspi-firmware expects):
#   p1  FAT32 "RASPIFIRM", 256 MiB: Pi firmware, kernel, initrd, DTBs,
#       config.txt, cmdline.txt, and the files a user puts there
#       (pinch.json, pinch.env, wifi.conf, ssh.pub; see README.md here)
#   p2  ext4 "RASPIROOT": Debian stable arm64; grows to the card on first boot
# Needs root (chroot under qemu-user via binfmt_misc), mmdebstrap, qemu-user-static,
# dosfstools, mtools, fdisk, e2fsprogs, xz-utils (installed when missing).
# PINCH_IMAGE_XZ=0 leaves the image uncompressed (what boot-test.sh reads).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE=packaging/image
SUITE=${PINCH_IMAGE_SUITE:-bookworm}
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
DEB=${1:-target/debian/pinch_${VERSION}-1_arm64.deb}
CACHE=${PINCH_CACHE:-$HOME/.cache/pinch}/image
OUT=target/image
IMG=$OUT/pinch-$VERSION-rpi-arm64.img
BOOT_MIB=256
T0=$(date +%s)
say() { echo "image [+$(( $(date +%s) - T0 ))s] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: run as root (chroot under qemu-user)" >&2; exit 2; }

need=()
for tool in mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static mkfs.vfat:dosfstools \
            mcopy:mtools sfdisk:fdisk mkfs.ext4:e2fsprogs xz:xz-utils; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$HERE/binfmt.sh"

# The apt sources this machine uses, with the firmware component the Pi
# needs (raspi-firmware, firmware-brcm80211 live in non-free-firmware).
sources=$(mktemp)
trap 'rm -f "$sources"' EXIT
"$HERE/sources.sh" "$SUITE" > "$sources"

# Debian packages of the image, besides pinch.
PACKAGES=(
    systemd systemd-sysv systemd-timesyncd systemd-resolved udev dbus kmod
    linux-image-arm64 raspi-firmware firmware-brcm80211 wireless-regdb iwd
    iproute2 openssh-server cloud-guest-utils e2fsprogs fdisk dosfstools
    ca-certificates adduser zstd
)
key=$( (cat "$sources"; printf '%s\n' "$SUITE" "${PACKAGES[@]}"; cat "$HERE/sources.sh") | sha256sum | cut -c1-16)
base=$CACHE/rootfs-$SUITE-$key.tar
mkdir -p "$CACHE/debs" "$OUT"
if [ ! -f "$base" ]; then
    say "debootstrapping Debian $SUITE arm64 under qemu-user (cached as $base)"
    rm -f "$CACHE"/rootfs-*.tar
    # initramfs is made once at the end (under emulation each run takes
    # minutes); our /etc/default/raspi-firmware is kept over the package's.
    mmdebstrap --arch=arm64 --variant=minbase --mode=root --dpkgopt=force-confold \
        --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --essential-hook='mkdir -p "$1/etc/default" "$1/boot/firmware" "$1/etc/initramfs-tools"' \
        --essential-hook='printf "%s\n" "ROOTPART=LABEL=RASPIROOT" "CONSOLES=\"ttyS1,115200 tty0\"" > "$1/etc/default/raspi-firmware"' \
        --essential-hook='echo update_initramfs=no > "$1/etc/initramfs-tools/update-initramfs.conf"' \
        --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
        --setup-hook="sync-in $CACHE/debs /var/cache/apt/archives" \
        --customize-hook='echo update_initramfs=yes > "$1/etc/initramfs-tools/update-initramfs.conf"' \
        --customize-hook='chroot "$1" update-initramfs -c -k all' \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE/debs" \
        "$SUITE" "$CACHE/partial.tar" "$sources"
    mv "$CACHE/partial.tar" "$base"
fi

[ -f "$DEB" ] || { echo "build-image: $DEB missing: build it with packaging/build-deb.sh arm64" >&2; exit 1; }
work=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -f "$sources"; rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir "$rootfs"
say "unpacking the cached root filesystem"
tar -C "$rootfs" --numeric-owner -xpf "$base"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb

say "installing $(basename "$DEB") and the card's own files"
cp "$DEB" "$rootfs/tmp/pinch.deb"
mount_chroot() { for d in proc sys dev; do mount --rbind "/$d" "$rootfs/$d"; mount --make-rslave "$rootfs/$d"; done; }
umount_chroot() { for d in dev sys proc; do umount -R "$rootfs/$d" 2>/dev/null || true; done; }
trap 'umount_chroot; rm -f "$sources"; rm -rf "$work"' EXIT
mount_chroot
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/pinch.deb >/dev/null
rm -f "$rootfs/tmp/pinch.deb"
cp -a "$HERE/rootfs/." "$rootfs/"
chmod 0755 "$rootfs/usr/lib/pinch-image/firstboot"
chroot "$rootfs" systemctl enable pinch-firstboot.service systemd-networkd.service \
    systemd-resolved.service systemd-timesyncd.service iwd.service pinch.service >/dev/null 2>&1
# SSH stays off until a key is given on the boot partition.
chroot "$rootfs" systemctl disable ssh.service >/dev/null 2>&1 || true
rm -f "$rootfs"/etc/ssh/ssh_host_*
# A unique identity per card: machine-id and host keys are made on first boot.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
echo pinch > "$rootfs/etc/hostname"
# No password anywhere: root is locked, logins only by an SSH key.
chroot "$rootfs" passwd -l root >/dev/null
# The kernel and initrd on the FAT partition for the Pi firmware.
kver=$(ls "$rootfs/lib/modules" | sort -V | tail -1)
chroot "$rootfs" /etc/kernel/postinst.d/z50-raspi-firmware "$kver" >/dev/null
umount_chroot
trap 'rm -f "$sources"; rm -rf "$work"' EXIT

say "packing: FAT boot partition and ext4 root"
bootimg=$work/boot.vfat
rootimg=$work/root.ext4
mkfs.vfat -F 32 -n RASPIFIRM -C "$bootimg" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -i "$bootimg" "$rootfs/boot/firmware/"* ::/
cp "$HERE/boot/README.txt" "$work/README.txt"
mcopy -i "$bootimg" "$work/README.txt" ::/README-pinch.txt
find "$rootfs/boot/firmware" -mindepth 1 -delete
used_kib=$(du -sk "$rootfs" | cut -f1)
root_mib=$(( used_kib / 1024 * 13 / 10 + 200 ))   # 30 % + 200 MiB head-room until the first boot grows it
mkfs.ext4 -q -L RASPIROOT -E root_owner=0:0 \
    -d "$rootfs" "$rootimg" "${root_mib}M"
rm -rf "$rootfs"

say "assembling $IMG"
total_mib=$(( 4 + BOOT_MIB + root_mib ))
rm -f "$IMG" "$IMG.xz"
truncate -s "${total_mib}M" "$IMG"
printf 'label: dos\nstart=4MiB, size=%sMiB, type=c, bootable\nstart=%sMiB, type=83\n' \
    "$BOOT_MIB" $(( 4 + BOOT_MIB )) | sfdisk -q "$IMG"
dd if="$bootimg" of="$IMG" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$rootimg" of="$IMG" bs=1M seek=$(( 4 + BOOT_MIB )) conv=notrunc,sparse status=none
if [ "${PINCH_IMAGE_XZ:-1}" = 0 ]; then
    say "done: $IMG ($total_mib MiB; PINCH_IMAGE_XZ=0: not compressed)"
    exit 0
fi
say "compressing (xz, about 9 minutes on 2 cores)"
xz -T2 -6 -k -f "$IMG"
ls -l "$IMG" "$IMG.xz" >&2
say "done: $IMG.xz ($(du -m "$IMG.xz" | cut -f1) MiB compressed, $total_mib MiB raw)"
