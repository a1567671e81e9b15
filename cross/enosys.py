#!/usr/bin/python3
"""Runs a command as if on an old kernel (Linux 4.4, e.g. Synology DSM 7).

    /usr/bin/python3 cross/enosys.py PROGRAM [ARG...]

Installs a seccomp filter that answers ENOSYS to every system call added
after Linux 4.4 (statx, openat2, close_range, clone3, rseq, pidfd_*,
landlock_*, faccessat2, io_uring_*, ...) and EINVAL to getrandom's
GRND_INSECURE flag (5.6), then executes PROGRAM. The filter is inherited
by PROGRAM's children and across execve, so a re-executing gateway and
the tools it runs see the same old kernel. Needs Debian's python3-seccomp
(libseccomp's bindings).
"""
import errno
import os
import sys

import seccomp

# System calls newer than Linux 4.4, with the kernel release that added them.
NEWER_THAN_4_4 = [
    "copy_file_range",  # 4.5
    "preadv2", "pwritev2",  # 4.6
    "pkey_mprotect", "pkey_alloc", "pkey_free",  # 4.9
    "statx",  # 4.11
    "io_pgetevents", "rseq",  # 4.18
    "pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register",  # 5.1
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",  # 5.2
    "pidfd_open", "clone3",  # 5.3
    "openat2", "pidfd_getfd",  # 5.6
    "faccessat2",  # 5.8
    "close_range",  # 5.9
    "process_madvise",  # 5.10
    "epoll_pwait2",  # 5.11
    "mount_setattr",  # 5.12
    "quotactl_fd",  # 5.14
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",  # 5.13
    "memfd_secret",  # 5.14
    "process_mrelease",  # 5.15
    "futex_waitv",  # 5.16
    "set_mempolicy_home_node",  # 5.17
    "cachestat",  # 6.5
    "fchmodat2",  # 6.6
    "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue",  # 6.7
    "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",  # 6.8
    "mseal",  # 6.10
    "setxattrat", "getxattrat", "listxattrat", "removexattrat",  # 6.13
    "open_tree_attr",  # 6.15
]
GRND_INSECURE = 0x4


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    filtered = []
    for name in NEWER_THAN_4_4:
        try:
            f.add_rule(seccomp.ERRNO(errno.ENOSYS), name)
            filtered.append(name)
        except (RuntimeError, ValueError, OSError):
            pass  # unknown to this libseccomp or architecture
    f.add_rule(seccomp.ERRNO(errno.EINVAL), "getrandom",
               seccomp.Arg(2, seccomp.MASKED_EQ, GRND_INSECURE, GRND_INSECURE))
    for must in ("statx", "openat2", "close_range", "clone3", "landlock_create_ruleset", "pidfd_open"):
        if must not in filtered:
            sys.exit(f"enosys: this libseccomp does not know {must}; the old-kernel test would be incomplete")
    f.load()
    print(f"enosys: {len(filtered)} system calls newer than Linux 4.4 answer ENOSYS", file=sys.stderr)
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
