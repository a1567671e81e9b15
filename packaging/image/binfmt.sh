#!/bin/sh
# Makes sure arm64 programs run through qemu-user here (binfmt_misc), so
# the image's packages can be configured in a chroot. Idempotent; root.
set -eu
[ -d /proc/sys/fs/binfmt_misc ] || exit 1
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && exit 0
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -f "$conf" ] || { echo "binfmt: $conf missing (install qemu-user-static)" >&2; exit 1; }
cat "$conf" > /proc/sys/fs/binfmt_misc/register
