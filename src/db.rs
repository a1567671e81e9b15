//! The database: opens the one redb file (`$PINCH_HOME/state.redb`) and
//! owns the definition of every table in it, their creation and their
//! copy into a snapshot. The store (sessions, transcripts, kv, schema
//! version) and the queue (inbox, outbound queue, dead letters) sit on top
//! and never reach into each other's tables through each other.

use redb::{ReadableTable, TableDefinition, TableHandle};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

// The store's tables.
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(crate) const TURNS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("turns");
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// The schema version (`store::version`); absent means version 1.
pub(crate) const STORE_META: TableDefinition<&str, u64> = TableDefinition::new("store_meta");

// The queue's tables.
pub(crate) const INBOX: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("inbox");
pub(crate) const INBOX_AGE: TableDefinition<(&str, u64, &str), ()> =
    TableDefinition::new("inbox_age");
pub(crate) const INBOX_PENDING: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("inbox_pending");
pub(crate) const OUTQ: TableDefinition<u64, &[u8]> = TableDefinition::new("outq");
/// (chat_key, seq) → the row's `bytes`, so counters stay exact even if the row is unreadable.
pub(crate) const OUTQ_CHAT: TableDefinition<(&str, u64), u64> = TableDefinition::new("outq_chat");
pub(crate) const OUTQ_DUE: TableDefinition<(u64, u64), &str> = TableDefinition::new("outq_due");
pub(crate) const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
pub(crate) const QUEUE_META: TableDefinition<&str, u64> = TableDefinition::new("queue_meta");

fn with_context<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("state store: {what}: {err}")
}

/// Opens or creates the file (owner-only), with a small page cache: reads
/// are served by the kernel's page cache anyway, and a larger one kept a
/// 1 MiB allocator page resident. Fails with a clear message when another
/// process (a running gateway) holds it.
pub fn open(path: &Path) -> Result<redb::Database, String> {
    let db = redb::Database::builder()
        .set_cache_size(256 * 1024)
        .create_with_file_format_v3(true)
        .create(path)
        .map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                format!(
                    "{} is in use by another pinch process (is the gateway running?)",
                    path.display()
                )
            }
            other => format!("cannot open state store {}: {other}", path.display()),
        })?;
    // Transcripts are private: the store is readable by its owner only.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(db)
}

/// Names of the tables [`create_tables`] makes (the schema version's table
/// is written by the version stamp instead).
pub(crate) const TABLE_NAMES: &[&str] = &[
    "sessions",
    "turns",
    "kv",
    "inbox",
    "inbox_age",
    "inbox_pending",
    "outq",
    "outq_chat",
    "outq_due",
    "dead",
    "queue_meta",
];

/// Creates every missing table of [`TABLE_NAMES`] in `tx`.
pub(crate) fn create_tables(tx: &redb::WriteTransaction) -> Result<(), String> {
    tx.open_table(SESSIONS)
        .map_err(with_context("open sessions"))?;
    tx.open_table(TURNS).map_err(with_context("open turns"))?;
    tx.open_table(KV).map_err(with_context("open kv"))?;
    tx.open_table(INBOX).map_err(with_context("open inbox"))?;
    tx.open_table(INBOX_AGE)
        .map_err(with_context("open inbox_age"))?;
    tx.open_table(INBOX_PENDING)
        .map_err(with_context("open inbox_pending"))?;
    tx.open_table(OUTQ).map_err(with_context("open outq"))?;
    tx.open_table(OUTQ_CHAT)
        .map_err(with_context("open outq_chat"))?;
    tx.open_table(OUTQ_DUE)
        .map_err(with_context("open outq_due"))?;
    tx.open_table(DEAD).map_err(with_context("open dead"))?;
    tx.open_table(QUEUE_META)
        .map_err(with_context("open queue_meta"))?;
    Ok(())
}

/// Copies one table, if it exists, into a snapshot's transaction.
pub(crate) fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    rx: &redb::ReadTransaction,
    wx: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let src = match rx.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(err) => return Err(format!("state store: open {}: {err}", def.name())),
    };
    let mut dst = wx
        .open_table(def)
        .map_err(with_context("open snapshot table"))?;
    for row in src.iter().map_err(with_context("iter"))? {
        if stop.load(Ordering::Relaxed) {
            return Err("stopped: the gateway is shutting down".into());
        }
        let (k, v) = row.map_err(with_context("read"))?;
        dst.insert(k.value(), v.value())
            .map_err(with_context("copy"))?;
    }
    Ok(())
}

/// Copies every table of the file (the list is complete: a test checks it
/// against the tables a populated store has).
/// A raised `stop` ends the copy with an error between two rows.
pub(crate) fn copy_all(
    rx: &redb::ReadTransaction,
    wx: &redb::WriteTransaction,
    stop: &AtomicBool,
) -> Result<(), String> {
    copy_table(rx, wx, SESSIONS, stop)?;
    copy_table(rx, wx, TURNS, stop)?;
    copy_table(rx, wx, KV, stop)?;
    copy_table(rx, wx, STORE_META, stop)?;
    copy_table(rx, wx, INBOX, stop)?;
    copy_table(rx, wx, INBOX_AGE, stop)?;
    copy_table(rx, wx, INBOX_PENDING, stop)?;
    copy_table(rx, wx, OUTQ, stop)?;
    copy_table(rx, wx, OUTQ_CHAT, stop)?;
    copy_table(rx, wx, OUTQ_DUE, stop)?;
    copy_table(rx, wx, DEAD, stop)?;
    copy_table(rx, wx, QUEUE_META, stop)
}

/// Names of every table [`copy_all`] copies.
#[cfg(test)]
pub(crate) fn all_table_names() -> Vec<&'static str> {
    let mut v = TABLE_NAMES.to_vec();
    v.push(STORE_META.name());
    v
}
