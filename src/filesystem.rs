//! Which filesystem `$PINCH_HOME` lives on, and whether the delivery queue
//! can trust it. The queue's crash safety rests on two things the
//! filesystem must keep: `fsync` reaching the disk before a commit is
//! acknowledged, and Unix permissions keeping the config and state private.
//! FAT/exFAT/NTFS sticks ignore permissions and corrupt on unplugging,
//! network shares (SMB, NFS) depend on the server for both, RAM filesystems
//! lose everything at reboot. `pinch doctor` reports the class; the
//! classification is a pure function of statfs's `f_type` magic number.

use std::path::Path;

/// How far the queue can rely on a filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A local disk filesystem with Unix permissions and working fsync.
    Local,
    /// Ignores Unix ownership and modes (FAT, exFAT, NTFS): anyone who can
    /// mount it reads the config's keys; a yanked stick loses commits.
    NoPermissions,
    /// A network share: fsync, locking and permissions are the server's.
    Network,
    /// Kept in RAM: fine for tests, gone at reboot with every queued message.
    Volatile,
    /// FUSE: the user-space driver decides (ntfs-3g, sshfs, exfat-fuse...).
    Userspace,
    /// A magic number not in the table.
    Unknown,
}

/// One filesystem type: its statfs magic, a short name, and the trust class.
pub struct Kind {
    pub name: &'static str,
    pub trust: Trust,
}

/// `f_type` values from the kernel's `linux/magic.h` and filesystems' own headers.
const TABLE: &[(u64, &str, Trust)] = &[
    (0xEF53, "ext2/ext3/ext4", Trust::Local),
    (0x9123_683E, "btrfs", Trust::Local),
    (0x5846_5342, "xfs", Trust::Local),
    (0xF2F5_2010, "f2fs", Trust::Local),
    (0x2FC1_2FC1, "zfs", Trust::Local),
    (0x3153_464A, "jfs", Trust::Local),
    (0x5265_4973, "reiserfs", Trust::Local),
    (0xF15F, "ecryptfs", Trust::Local),
    (0x794C_7630, "overlayfs", Trust::Local),
    (0xCA45_1A4E, "bcachefs", Trust::Local),
    (0x4D44, "vfat/FAT", Trust::NoPermissions),
    (0x2011_BAB0, "exfat", Trust::NoPermissions),
    (0x5346_544E, "ntfs", Trust::NoPermissions),
    (0xFF53_4D42, "cifs (SMB)", Trust::Network),
    (0xFE53_4D42, "smb3", Trust::Network),
    (0x517B, "smbfs", Trust::Network),
    (0x6969, "nfs", Trust::Network),
    (0x0102_1997, "9p", Trust::Network),
    (0x786F_4256, "vboxsf", Trust::Network),
    (0x00C3_6400, "ceph", Trust::Network),
    (0x6573_5546, "fuse", Trust::Userspace),
    (0x0102_1994, "tmpfs", Trust::Volatile),
    (0x8584_58F6, "ramfs", Trust::Volatile),
];

/// Classifies a statfs `f_type` magic number.
pub fn classify(magic: u64) -> Kind {
    // f_type is a signed word on some 32-bit ABIs: compare the low 32 bits.
    let low = magic & 0xFFFF_FFFF;
    match TABLE.iter().find(|(m, _, _)| *m == low) {
        Some((_, name, trust)) => Kind {
            name,
            trust: *trust,
        },
        None => Kind {
            name: "unknown",
            trust: Trust::Unknown,
        },
    }
}

/// The statfs magic number of the filesystem holding `path`.
pub fn magic_of(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statfs fills a zeroed struct we own; the path is a valid C string.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field's width and signedness differ between ABIs; the magic is
    // at most 32 bits wide, and classify() compares those.
    #[allow(clippy::unnecessary_cast)]
    Ok(s.f_type as u64 & 0xFFFF_FFFF)
}

/// What to tell the user for a class, or None when there is nothing to say.
pub fn advice(trust: Trust) -> Option<&'static str> {
    match trust {
        Trust::Local | Trust::Unknown => None,
        Trust::NoPermissions => Some("this filesystem ignores Unix permissions (anyone with the disk reads the config's keys) and loses recent commits when unplugged: put PINCH_HOME on an ext4/btrfs/xfs volume"),
        Trust::Network => Some("on a network share fsync, file locks and permissions depend on the server, so the delivery queue's crash safety does not hold: put PINCH_HOME on a local disk"),
        Trust::Volatile => Some("this filesystem lives in RAM: the queue, sessions and config are lost at reboot; put PINCH_HOME on a disk"),
        Trust::Userspace => Some("a FUSE filesystem (ntfs-3g, exfat-fuse, sshfs...) may not honour fsync or permissions: prefer a native ext4/btrfs/xfs volume"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_are_classified() {
        for (magic, name, trust) in [
            (0xEF53u64, "ext2/ext3/ext4", Trust::Local),
            (0x9123_683E, "btrfs", Trust::Local),
            (0x4D44, "vfat/FAT", Trust::NoPermissions),
            (0x2011_BAB0, "exfat", Trust::NoPermissions),
            (0xFF53_4D42, "cifs (SMB)", Trust::Network),
            (0xFE53_4D42, "smb3", Trust::Network),
            (0x6969, "nfs", Trust::Network),
            (0x6573_5546, "fuse", Trust::Userspace),
            (0x0102_1994, "tmpfs", Trust::Volatile),
            (0x1234_5678, "unknown", Trust::Unknown),
        ] {
            let k = classify(magic);
            assert_eq!((k.name, k.trust), (name, trust), "magic {magic:#x}");
        }
    }

    #[test]
    fn sign_extended_magic_matches() {
        // A 32-bit ABI with a signed f_type sign-extends 0xFF534D42.
        let k = classify(0xFFFF_FFFF_FF53_4D42);
        assert_eq!(k.trust, Trust::Network);
        assert_eq!(classify(0xFFFF_FFFF_F2F5_2010).name, "f2fs");
    }

    #[test]
    fn every_untrusted_class_has_advice() {
        for t in [
            Trust::NoPermissions,
            Trust::Network,
            Trust::Volatile,
            Trust::Userspace,
        ] {
            assert!(advice(t).is_some_and(|a| a.contains("PINCH_HOME") || a.contains("volume")));
        }
        assert!(advice(Trust::Local).is_none());
        assert!(advice(Trust::Unknown).is_none());
    }

    #[test]
    fn the_temp_directory_has_a_magic() {
        let m = magic_of(&std::env::temp_dir()).expect("statfs on the temp dir");
        assert_ne!(m, 0);
        assert!(magic_of(Path::new("/nonexistent/pinch/path")).is_err());
    }
}
