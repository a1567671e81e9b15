#!/bin/sh
# QNAP QTS: start the pinch gateway at boot from autorun.sh.
#
# 1. Control Panel > System > Hardware > General: enable "Run user defined
#    processes during startup" (QTS 4.3.3 and later).
# 2. Unpack the tarball to /share/CACHEDEV1_DATA/pinch/app and create an
#    unprivileged user for it (Control Panel > Users), e.g. "pinch", with
#    read/write on /share/CACHEDEV1_DATA/pinch.
# 3. Put the lines below into autorun.sh on the boot partition (QTS mounts
#    it at /tmp/config after `/etc/init.d/init_disk.sh mount_flash_config`;
#    see QNAP's documentation for your model), make it executable, unmount.
# autorun.sh runs as admin (root); the SysV script drops to PINCH_USER.
APP=/share/CACHEDEV1_DATA/pinch/app
PINCH_BIN="$APP/bin/pinch" PINCH_USER=pinch PINCH_HOME=/share/CACHEDEV1_DATA/pinch/home \
    PINCH_PIDFILE=/var/run/pinch.pid \
    /bin/sh "$APP/init/sysv/pinch" start >>/share/CACHEDEV1_DATA/pinch/autorun.log 2>&1 &
