#!/usr/bin/env bash
# Runs packaging/check-deb.sh inside a booted systemd, on a machine whose own
# init is not systemd (CI VMs, containers): boots this machine's root file
# system, read-only under a throwaway overlay, as a systemd-nspawn container
# with a private network, and runs the check there as a boot-time unit. The
# check then also covers the live service: start by the postinst, the
# sandbox, sd_notify readiness, the watchdog, LoadCredential= and the exec
# tool. With a previous release's package (PREVIOUS.deb or $PINCH_PREV_DEB,
# from scripts/build-prev-deb.sh) it then runs packaging/check-deb-upgrade.sh
# in the same container: an upgrade rolled back, then one that succeeds.
# Nothing on the host changes; the overlay is discarded.
#
#   sudo packaging/check-deb-live.sh [PATH.deb [PREVIOUS.deb]]
#
# Needs systemd installed (not running) and systemd-nspawn: from the
# systemd-container package, or, without installing it, unpacked from the
# .deb matching the installed systemd (apt-get download).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
[ "$(id -u)" = 0 ] || { echo "check-deb-live: run as root" >&2; exit 2; }
[ -x /lib/systemd/systemd ] || { echo "check-deb-live: systemd is not installed" >&2; exit 2; }
DEB=${1:-$(ls -t target/debian/pinch_*_amd64.deb 2>/dev/null | head -1)}
[ -f "$DEB" ] || { echo "check-deb-live: no .deb (run packaging/build-deb.sh amd64 first)" >&2; exit 2; }
DEB=$(realpath "$DEB")
PREV=${2:-${PINCH_PREV_DEB:-}}
if [ -n "$PREV" ]; then
    [ -f "$PREV" ] || { echo "check-deb-live: no previous package $PREV" >&2; exit 2; }
    PREV=$(realpath "$PREV")
fi
if [ -d /run/systemd/system ]; then
    echo "check-deb-live: systemd already runs here; running the checks directly" >&2
    rc=0; packaging/check-deb.sh "$DEB" || rc=$?
    if [ -n "$PREV" ]; then packaging/check-deb-upgrade.sh "$PREV" "$DEB" || rc=1; fi
    exit "$rc"
fi

work=$(mktemp -d /var/tmp/pinch-live.XXXXXX)
cleanup() {
    umount "$work/root" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

NSPAWN=$(command -v systemd-nspawn || true)
if [ -z "$NSPAWN" ]; then
    v=$(dpkg-query -W -f='${Version}' systemd)
    echo "systemd-nspawn missing: unpacking systemd-container $v (matching the installed systemd)"
    (cd "$work" && apt-get download -qq "systemd-container=$v" 2>/dev/null) \
        || { echo "check-deb-live: cannot download systemd-container=$v; apt-get install systemd-container" >&2; exit 2; }
    dpkg -x "$work"/systemd-container_*.deb "$work/nspawn"
    NSPAWN="$work/nspawn/usr/bin/systemd-nspawn"
fi

mkdir -p "$work/upper" "$work/ovl" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/ovl" "$work/root"
R="$work/root"
# The checkout and the packages may live anywhere on the host (under /tmp,
# say, which the booted container hides under its own tmpfs): copy them to
# a fixed path inside the container's root (the overlay, discarded after).
IN=/opt/pinch-check
rm -rf "$R$IN"
mkdir -p "$R$IN/repo"
chmod 755 "$R$IN"
tar -C "$REPO" --exclude=./target --exclude=./.git -cf - . | tar -C "$R$IN/repo" -xf -
cp "$DEB" "$R$IN/"
DEB_IN="$IN/$(basename "$DEB")"
PREV_IN=""
if [ -n "$PREV" ]; then
    mkdir -p "$R$IN/previous"
    cp "$PREV" "$R$IN/previous/"
    PREV_IN="$IN/previous/$(basename "$PREV")"
fi
cat >"$R/etc/systemd/system/pinch-check.service" <<EOF
[Unit]
Description=packaging/check-deb.sh in a booted container
After=basic.target
[Service]
Type=oneshot
StandardOutput=file:/root/pinch-check.log
StandardError=inherit
ExecStart=/bin/bash -c 'cd $IN/repo && packaging/check-deb.sh $DEB_IN; echo "check-deb-rc=\$?"; if [ -n "$PREV_IN" ]; then packaging/check-deb-upgrade.sh $PREV_IN $DEB_IN; echo "check-deb-upgrade-rc=\$?"; fi'
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/pinch-check.service "$R/etc/systemd/system/multi-user.target.wants/"
# Only what the check needs starts in the container: mask this machine's
# own services, and let maintainer scripts start units as on a real system.
for w in "$R"/etc/systemd/system/multi-user.target.wants/*.service; do
    u=$(basename "$w")
    [ "$u" = pinch-check.service ] || ln -sf /dev/null "$R/etc/systemd/system/$u"
done
rm -f "$R/usr/sbin/policy-rc.d"
rm -f "$R/etc/systemd/system/multi-user.target.wants/pinch.service" "$R/etc/systemd/system/pinch.service"

# systemd-nspawn puts its own seccomp allowlist on the whole container
# (unlisted calls fail with EPERM), and in systemd 252 (Debian 12) that list
# lacks Landlock's three calls: every process in the container, the unit
# included, would see "Landlock not permitted" where a real machine has it.
# Allowing them here makes the container match a booted Debian 12 box; the
# unit's own SystemCallFilter= is then what the check exercises.
LANDLOCK_CALLS="landlock_create_ruleset landlock_add_rule landlock_restrict_self"
echo "booting $(. /etc/os-release; echo "$PRETTY_NAME") with systemd $(dpkg-query -W -f='${Version}' systemd) in systemd-nspawn"
timeout 600 "$NSPAWN" -D "$R" --boot --private-network --register=no --keep-unit --link-journal=no \
    --system-call-filter="$LANDLOCK_CALLS" \
    --uuid="$(tr -d - </proc/sys/kernel/random/uuid)" --console=read-only -q >"$work/console.log" 2>&1 || true
if [ ! -f "$R/root/pinch-check.log" ]; then
    tail -40 "$work/console.log" >&2
    echo "check-deb-live: the container did not run the check" >&2
    exit 1
fi
cat "$R/root/pinch-check.log"
rc=$(sed -n 's/^check-deb-rc=//p' "$R/root/pinch-check.log")
if [ -n "$PREV" ]; then
    urc=$(sed -n 's/^check-deb-upgrade-rc=//p' "$R/root/pinch-check.log")
    [ "${urc:-1}" = 0 ] || rc=${urc:-1}
fi
exit "${rc:-1}"
