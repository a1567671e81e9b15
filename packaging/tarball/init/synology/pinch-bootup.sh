#!/bin/sh
# Synology DSM: start the pinch gateway at boot from a Task Scheduler task.
#
# DSM has no dpkg and no OpenRC; a "Triggered Task" starts this script:
#   Control Panel > Task Scheduler > Create > Triggered Task > User-defined script
#     General:  Task: pinch   User: pinch (a normal DSM user, not root)
#               Event: Boot-up
#     Task Settings > Run command:
#       /bin/sh /volume1/pinch/app/init/synology/pinch-bootup.sh
# with the tarball unpacked to /volume1/pinch/app and the state in
# /volume1/pinch/home (the data volume, ext4 or btrfs; the user needs
# read/write there: File Station > Properties > Permission).
# Stop it with a second task (User-defined script, run manually):
#       kill "$(cat /volume1/pinch/home/gateway.pid)"
set -eu
APP=${PINCH_APP:-/volume1/pinch/app}
export PINCH_HOME=${PINCH_HOME:-/volume1/pinch/home}
export PINCH_SKILLS_DIR="$APP/share/pinch/skills"
export RUST_LOG=${RUST_LOG:-info}
umask 077
mkdir -p "$PINCH_HOME/logs"
if [ -s "$PINCH_HOME/gateway.pid" ] && kill -0 "$(cat "$PINCH_HOME/gateway.pid")" 2>/dev/null; then
    echo "pinch is already running"; exit 0
fi
# DSM 7 runs Linux 4.4 and an old glibc: the tarball's binary is built for
# glibc 2.17 and falls back where a newer system call is missing.
nohup "$APP/bin/pinch" gateway run >>"$PINCH_HOME/logs/gateway.log" 2>&1 </dev/null &
echo $! >"$PINCH_HOME/gateway.pid"
