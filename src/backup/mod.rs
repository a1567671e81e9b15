//! `pinch backup` / `pinch restore`: one ustar archive holding the config,
//! `.env` (mode 0600, flagged secret in the manifest), the workspace and a
//! consistent snapshot of the state store.
//!
//! Layout: `manifest.json` first (format, versions, every file with its size,
//! mode and whether it is secret), then `pinch.json`, `.env`, `state.redb`,
//! `workspace/…`. Restoring checks every entry against the manifest, never
//! writes outside the target home, and moves what it replaces aside
//! (`*.pre-restore`) instead of deleting it.

pub mod tar;

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "pinch-backup";
const MANIFEST: &str = "manifest.json";
const MAX_MANIFEST: u64 = 4 << 20;
/// Workspace files taken (a workspace is notes and skills, not a dump).
const MAX_FILES: usize = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub path: String,
    pub bytes: u64,
    pub mode: u32,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub pinch_version: String,
    pub created_ms: u64,
    pub schema_version: u64,
    pub files: Vec<Entry>,
}

/// What goes into an archive.
pub struct Sources {
    pub config: Option<PathBuf>,
    pub dotenv: Option<PathBuf>,
    pub workspace: Option<PathBuf>,
    /// A consistent copy of the store (see `Store::snapshot`).
    pub store: PathBuf,
    pub schema_version: u64,
}

fn workspace_files(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        let rd =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let mut entries: Vec<_> = rd.flatten().collect();
        crate::sort::sort_by_key(&mut entries, |e| e.file_name());
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                log::warn!(
                    "backup: skipped a file name that is not UTF-8 in {}",
                    dir.display()
                );
                continue;
            };
            let rel_path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push((rel_path, entry.path()));
            } else if meta.is_file() {
                if out.len() >= MAX_FILES {
                    return Err(format!(
                        "the workspace {} holds more than {MAX_FILES} files; move bulk data elsewhere",
                        root.display()
                    ));
                }
                out.push((format!("workspace/{rel_path}"), entry.path()));
            }
        }
    }
    Ok(out)
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600)
}

/// Writes the archive to `out` (via a temporary file, mode 0600: it holds
/// secrets). Returns the manifest.
pub fn write(out: &Path, src: &Sources, now_ms: u64) -> Result<Manifest, String> {
    let mut files: Vec<(Entry, PathBuf)> = Vec::new();
    let mut add = |path: &str, file: &Path, secret: bool, mode: u32| -> Result<(), String> {
        let bytes = std::fs::metadata(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            .len();
        files.push((
            Entry {
                path: path.to_string(),
                bytes,
                mode,
                secret,
            },
            file.to_path_buf(),
        ));
        Ok(())
    };
    if let Some(c) = src.config.as_deref().filter(|p| p.exists()) {
        add("pinch.json", c, false, 0o600)?;
    }
    if let Some(d) = src.dotenv.as_deref().filter(|p| p.exists()) {
        add(".env", d, true, 0o600)?;
    }
    add("state.redb", &src.store, false, 0o600)?;
    if let Some(w) = src.workspace.as_deref().filter(|p| p.is_dir()) {
        for (path, file) in workspace_files(w)? {
            let mode = mode_of(&file) & 0o700;
            add(&path, &file, false, mode.max(0o600))?;
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: 1,
        pinch_version: env!("CARGO_PKG_VERSION").into(),
        created_ms: now_ms,
        schema_version: src.schema_version,
        files: files.iter().map(|(e, _)| e.clone()).collect(),
    };
    let tmp = crate::home::temp_path(out);
    let result = (|| -> Result<(), String> {
        let f = crate::home::create_private(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        let mtime = now_ms / 1000;
        w.write_all(&tar::encode(&tar::Header {
            path: MANIFEST.into(),
            mode: 0o600,
            size: body.len() as u64,
            mtime,
            kind: tar::Kind::File,
        })?)
        .map_err(io)?;
        w.write_all(&body).map_err(io)?;
        w.write_all(&vec![0u8; tar::padding(body.len() as u64)])
            .map_err(io)?;
        for (entry, file) in &files {
            let mut r = std::fs::File::open(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            w.write_all(&tar::encode(&tar::Header {
                path: entry.path.clone(),
                mode: entry.mode,
                size: entry.bytes,
                mtime,
                kind: tar::Kind::File,
            })?)
            .map_err(io)?;
            // Exactly the size the header announced, even if the file changed.
            let copied = std::io::copy(&mut (&mut r).take(entry.bytes), &mut w).map_err(io)?;
            if copied != entry.bytes {
                return Err(format!(
                    "{} changed while it was being backed up; run the backup again",
                    file.display()
                ));
            }
            w.write_all(&vec![0u8; tar::padding(entry.bytes)])
                .map_err(io)?;
        }
        w.write_all(&[0u8; 2 * tar::BLOCK]).map_err(io)?;
        let f = w
            .into_inner()
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| manifest)
}

fn read_block(r: &mut impl Read) -> Result<[u8; tar::BLOCK], String> {
    let mut b = [0u8; tar::BLOCK];
    r.read_exact(&mut b)
        .map_err(|e| format!("the archive is truncated or unreadable: {e}"))?;
    Ok(b)
}

fn skip(r: &mut impl Read, n: u64) -> Result<(), String> {
    let got = std::io::copy(&mut r.take(n), &mut std::io::sink())
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    if got != n {
        return Err("the archive is truncated".into());
    }
    Ok(())
}

/// Reads the manifest (the first entry) of an archive.
pub fn read_manifest(r: &mut impl Read) -> Result<Manifest, String> {
    let h = tar::decode(&read_block(r)?)?.ok_or("the archive is empty")?;
    if h.path != MANIFEST || h.size > MAX_MANIFEST {
        return Err("not a pinch backup (it does not start with its manifest)".into());
    }
    let mut body = Vec::new();
    r.take(h.size)
        .read_to_end(&mut body)
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    skip(r, tar::padding(h.size) as u64)?;
    let m: Manifest = serde_json::from_slice(&body)
        .map_err(|e| format!("the backup's manifest is unreadable: {e}"))?;
    if m.format != FORMAT || m.format_version != 1 {
        return Err(format!(
            "not a pinch backup this version can read (format {:?} version {})",
            m.format, m.format_version
        ));
    }
    Ok(m)
}

/// Extracts an archive into `staging` (which must be empty), checking every
/// entry against the manifest. Returns the manifest.
pub fn extract(archive: &Path, staging: &Path) -> Result<Manifest, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::File::open(archive)
        .map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let mut r = std::io::BufReader::new(f);
    let m = read_manifest(&mut r)?;
    let mut seen = std::collections::HashSet::new();
    loop {
        let Some(h) = tar::decode(&read_block(&mut r)?)? else {
            break;
        };
        let Some(entry) = m.files.iter().find(|e| e.path == h.path) else {
            return Err(format!(
                "the archive holds {:?}, which its manifest does not list",
                h.path
            ));
        };
        if h.size != entry.bytes || h.kind != tar::Kind::File || !seen.insert(h.path.clone()) {
            return Err(format!(
                "the archive entry {:?} does not match its manifest",
                h.path
            ));
        }
        if !tar::safe_path(&h.path) {
            return Err(format!("unsafe path in the archive: {:?}", h.path));
        }
        let dest = staging.join(&h.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mode = if entry.secret {
            0o600
        } else {
            entry.mode & 0o700 | 0o600
        };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&dest)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        let n = std::io::copy(&mut (&mut r).take(h.size), &mut out)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        if n != h.size {
            return Err("the archive is truncated".into());
        }
        out.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        skip(&mut r, tar::padding(h.size) as u64)?;
    }
    for e in &m.files {
        if !seen.contains(&e.path) {
            return Err(format!(
                "the archive is missing {:?}, which its manifest lists",
                e.path
            ));
        }
    }
    Ok(m)
}
