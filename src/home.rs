//! `$PINCH_HOME` (default `~/.pinch`): where pinch keeps its config, secrets,
//! state store, workspace and logs. Created 0700 on first use; files that
//! hold secrets must not be readable by group or others.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// `$PINCH_HOME`, else `$HOME/.pinch`.
    pub fn from_env() -> Home {
        let root = match std::env::var_os("PINCH_HOME") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            // Unit tests never read the user's own ~/.pinch (managed
            // skills, .env): without PINCH_HOME they get a home of their own.
            _ if cfg!(test) => {
                std::env::temp_dir().join(format!("pinch-unit-home-{}", std::process::id()))
            }
            _ => {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."));
                home.join(".pinch")
            }
        };
        Home { root }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("pinch.json")
    }
    pub fn dotenv(&self) -> PathBuf {
        self.root.join(".env")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state.redb")
    }
    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Creates the home (0700), `logs/` and `workspace/` if missing.
    pub fn ensure(&self) -> Result<(), String> {
        for dir in [self.root.clone(), self.logs(), self.workspace()] {
            if !dir.exists() {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("cannot set permissions on {}: {e}", dir.display()))?;
            }
        }
        Ok(())
    }
}

/// Refuses a secret-bearing file that group or others can read, with the
/// `chmod` that fixes it. A missing file is fine.
pub fn check_private(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.mode() & 0o044 != 0 {
                return Err(format!(
                    "{} is readable by group or others (mode {:o}); it may hold secrets.\n  fix: chmod 600 {}",
                    path.display(),
                    meta.mode() & 0o777,
                    path.display()
                ));
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

/// `path` with `.tmp` added to its file name: where a file is written
/// before it is renamed into place.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Creates (or empties) `path` for writing, readable by its owner only.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Writes `data` to `path` atomically (temp file + rename) with mode 0600.
/// A replaced file keeps its owner when we may give it away (root editing
/// /etc/pinch/pinch.json, which the `pinch` service user must still read).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    replace_private(path, data, true)
}

/// [`write_private`] without the fsync, for a file that only describes the
/// running process (its content means nothing after a power loss, when the
/// process is gone too): the rename still makes it appear whole.
pub fn write_private_volatile(path: &Path, data: &[u8]) -> Result<(), String> {
    replace_private(path, data, false)
}

fn replace_private(path: &Path, data: &[u8], durable: bool) -> Result<(), String> {
    use std::io::Write;
    let tmp = temp_path(path);
    let mut f = create_private(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    if let Ok(old) = std::fs::metadata(path) {
        let _ = std::os::unix::fs::fchown(&f, Some(old.uid()), Some(old.gid()));
    }
    f.write_all(data)
        .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
