//! The store's schema version and its forward migrations.
//!
//! `state.redb` carries its schema version in the `store_meta` table. A store
//! without that table was written by the first release: version 1. Opening
//! goes in this order, so a store is never half-migrated and never written by
//! a binary that does not understand it:
//!
//! 1. read the version in a read transaction (nothing is written yet);
//! 2. newer than [`CURRENT`]: refuse, naming both versions and how to roll
//!    back; the file is left untouched;
//! 3. older: copy the file to `state.redb.v<N>.bak` (the file is quiescent:
//!    this process holds redb's lock and has not written), via a temporary
//!    name renamed into place after an fsync, so a crash never leaves a torn
//!    backup under the final name;
//! 4. run every migration step and stamp the new version in ONE write
//!    transaction: a crash anywhere leaves either the old store or the new.
//!
//! Version history:
//! - 1: sessions, turns, kv and the delivery queue tables.
//! - 2: `store_meta` (this version stamp and the retention counters shown by
//!   `pinch status`).

use redb::{TableError, TableHandle};
use std::path::{Path, PathBuf};

/// The schema version this binary writes.
pub const CURRENT: u64 = 2;

pub(crate) use crate::db::STORE_META as META;
pub(crate) const VERSION_KEY: &str = "schema_version";

/// What the read-only look at a store found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No tables yet: a new store.
    Empty,
    /// A store at this schema version.
    Version(u64),
}

/// Reads the schema version without writing.
pub fn read(db: &redb::Database) -> Result<Found, String> {
    let rx = db
        .begin_read()
        .map_err(|e| format!("state store: begin: {e}"))?;
    let any_table = rx
        .list_tables()
        .map_err(|e| format!("state store: list tables: {e}"))?
        .next()
        .is_some();
    match rx.open_table(META) {
        Ok(t) => match t.get(VERSION_KEY) {
            Ok(Some(v)) => Ok(Found::Version(v.value())),
            Ok(None) => Ok(Found::Version(1)),
            Err(e) => Err(format!("state store: read version: {e}")),
        },
        Err(TableError::TableDoesNotExist(_)) if !any_table => Ok(Found::Empty),
        Err(TableError::TableDoesNotExist(_)) => Ok(Found::Version(1)),
        Err(e) => Err(format!("state store: open {}: {e}", META.name())),
    }
}

/// Retention counters and the version, for `pinch doctor`.
#[derive(Debug, Default)]
pub struct Counters {
    pub schema_version: u64,
    pub turns: u64,
    pub dead_letters: u64,
    pub compactions: u64,
}

/// Reads the counters without migrating or writing (fails when a gateway
/// holds the store).
pub fn read_counters(path: &Path) -> Result<Counters, String> {
    let db = redb::Database::builder()
        .open(path)
        .map_err(|e| format!("state store: {e}"))?;
    let mut c = Counters {
        schema_version: match read(&db)? {
            Found::Version(v) => v,
            Found::Empty => 0,
        },
        ..Counters::default()
    };
    let rx = db.begin_read().map_err(|e| format!("state store: {e}"))?;
    if let Ok(t) = rx.open_table(META) {
        let get = |k: &str| t.get(k).ok().flatten().map(|v| v.value()).unwrap_or(0);
        c.turns = get("retention_turns");
        c.dead_letters = get("retention_dead");
        c.compactions = get("retention_compactions");
    }
    Ok(c)
}

/// The message for a store written by a newer pinch.
pub fn too_new(path: &Path, found: u64) -> String {
    let bak = backup_path(path, CURRENT);
    format!(
        "{} has schema version {found}, but this pinch ({}) understands versions up to {CURRENT}: it was written by a newer pinch. Nothing was changed.\n  fix: install the newer pinch again (e.g. `sudo apt install ./pinch_<newer>.deb`), or go back to the state from before that upgrade: stop pinch, then `cp {} {}` (changes made since the upgrade are lost)",
        path.display(),
        env!("CARGO_PKG_VERSION"),
        bak.display(),
        path.display()
    )
}

/// `state.redb.v<from>.bak`: the copy taken before migrating from `from`.
pub fn backup_path(path: &Path, from: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".v{from}.bak"));
    path.with_file_name(name)
}

/// Copies the (quiescent, locked by us) store file to its backup name.
pub fn write_backup(path: &Path, from: u64) -> Result<PathBuf, String> {
    let target = backup_path(path, from);
    let tmp = crate::home::temp_path(&target);
    let copy = || -> std::io::Result<()> {
        let mut src = std::fs::File::open(path)?;
        let mut dst = crate::home::create_private(&tmp)?;
        std::io::copy(&mut src, &mut dst)?;
        dst.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        if let Some(dir) = target.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    };
    copy().map_err(|e| {
        format!(
            "cannot write the pre-upgrade backup {}: {e}; the store was not changed (free some disk space and start again)",
            target.display()
        )
    })?;
    Ok(target)
}

/// One forward step: from `version - 1` to `version`, inside the caller's
/// write transaction.
struct Step {
    to: u64,
    apply: fn(&redb::WriteTransaction, u64) -> Result<(), String>,
}

const STEPS: &[Step] = &[Step {
    to: 2,
    apply: to_v2,
}];

/// v2: the meta table itself, with the time of the migration.
fn to_v2(tx: &redb::WriteTransaction, now_ms: u64) -> Result<(), String> {
    let mut t = tx
        .open_table(META)
        .map_err(|e| format!("state store: create {}: {e}", META.name()))?;
    t.insert("migrated_to_2_ms", now_ms)
        .map_err(|e| format!("state store: migrate to 2: {e}"))?;
    Ok(())
}

/// Runs the steps from `from` to [`CURRENT`] and stamps the version, in the
/// caller's transaction (the caller commits once).
pub(crate) fn migrate_in(
    tx: &redb::WriteTransaction,
    from: u64,
    now_ms: u64,
) -> Result<(), String> {
    for step in STEPS.iter().filter(|s| s.to > from && s.to <= CURRENT) {
        checkpoint()?;
        (step.apply)(tx, now_ms)?;
    }
    checkpoint()?;
    stamp(tx, CURRENT)
}

/// Writes the version stamp.
pub(crate) fn stamp(tx: &redb::WriteTransaction, version: u64) -> Result<(), String> {
    let mut t = tx
        .open_table(META)
        .map_err(|e| format!("state store: open {}: {e}", META.name()))?;
    t.insert(VERSION_KEY, version)
        .map_err(|e| format!("state store: write version: {e}"))?;
    Ok(())
}

// Test hook: `crash_after(n)` makes the n-th following migration step fail as
// if the process died there (its transaction is dropped, never committed).
#[cfg(test)]
pub(crate) use crate::util::crash::crash_after;

#[cfg(test)]
fn checkpoint() -> Result<(), String> {
    if crate::util::crash::crash_now() {
        Err("injected crash".into())
    } else {
        Ok(())
    }
}

#[cfg(not(test))]
fn checkpoint() -> Result<(), String> {
    Ok(())
}
