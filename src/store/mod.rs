//! The durable state store (redb, one file: `$PINCH_HOME/state.redb`).
//!
//! Sessions are keyed by `channel:peer`; each has a metadata row and an
//! append-only transcript of turns keyed by (session, sequence number). Turns
//! are read newest-first within a budget, so no caller ever loads a whole
//! history into memory. Every write is one transaction with immediate
//! durability: when a write returns, it survives a power cut.
//!
//! Only the reactor thread writes; CLI commands open the file themselves
//! when no gateway holds it. The delivery queue (`crate::queue`) keeps its
//! tables in the same file so a reply commits with its transcript turns;
//! the file and every table are defined by `crate::db`.

use crate::llm::types::{CacheUsage, Message, TokenUsage};
use redb::{ReadableTable, ReadableTableMetadata, TableHandle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod archive;
mod page;
pub mod retention;
#[cfg(test)]
mod soak_tests;
pub mod version;
#[cfg(test)]
mod version_tests;

#[cfg(test)]
pub(crate) use crate::db::all_table_names;
use crate::db::{KV, SESSIONS, TURNS};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SessionMeta {
    pub key: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Turns ever appended; the next turn gets this sequence number.
    pub next_seq: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Sequence number of the newest summary turn, if the session was compacted.
    #[serde(default)]
    pub summary_seq: Option<u64>,
    /// Prompt characters of every message turn ever appended.
    #[serde(default)]
    pub chars_total: u64,
    /// Of those, the characters the newest summary stands for.
    #[serde(default)]
    pub summarized_chars: u64,
    /// Turns below this sequence number were removed by retention (they
    /// were covered by a summary).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pruned_below: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl SessionMeta {
    /// Characters of transcript not yet covered by a summary.
    pub fn unsummarized_chars(&self) -> u64 {
        self.chars_total.saturating_sub(self.summarized_chars)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum TurnKind {
    Message,
    /// A model-written summary of every turn before it.
    Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Turn {
    pub ts_ms: u64,
    pub kind: TurnKind,
    pub message: Message,
    /// "provider/model" that produced an assistant turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens in and out of the run that produced an assistant turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Prompt tokens of that run read from / written to the provider's
    /// prompt cache, when the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUsage>,
    /// For a summary: the last sequence number it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers_through: Option<u64>,
    /// Cumulative prompt characters of the session through this turn (for a
    /// summary: through `covers_through`). Set by `append`.
    #[serde(default)]
    pub cum_chars: u64,
}

impl Turn {
    pub fn message(ts_ms: u64, message: Message) -> Turn {
        Turn {
            ts_ms,
            kind: TurnKind::Message,
            message,
            model: None,
            usage: None,
            cache: None,
            covers_through: None,
            cum_chars: 0,
        }
    }
}

/// Characters a message contributes to a prompt, for budgeting.
pub fn message_chars(m: &Message) -> usize {
    use crate::llm::types::Part;
    m.parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Image { .. } => 1000,
            Part::ToolCall {
                name, arguments, ..
            } => name.len() + arguments.len() + 16,
            Part::ToolResult { content, .. } => content.len() + 16,
            Part::Thinking { text, .. } => text.len(),
        })
        .sum()
}

pub struct Store {
    pub(crate) db: redb::Database,
    /// The file, for the snapshot written beside it.
    pub(crate) path: PathBuf,
}

fn with_context<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("state store: {what}: {err}")
}

impl Store {
    /// Opens or creates the store, migrating an older schema forward (after
    /// a backup copy beside it) and refusing a newer one without writing.
    /// Fails with a clear message when another process (a running gateway)
    /// holds it.
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = crate::db::open(path)?;
        // Read-only first: a store from a newer pinch is never written.
        let found = version::read(&db)?;
        let from = match found {
            version::Found::Version(v) if v > version::CURRENT => {
                return Err(version::too_new(path, v));
            }
            version::Found::Version(v) if v < version::CURRENT => {
                let bak = version::write_backup(path, v)?;
                log::info!(
                    "state store: migrating schema {v} -> {} (backup: {})",
                    version::CURRENT,
                    bak.display()
                );
                Some(v)
            }
            version::Found::Version(_) => None,
            version::Found::Empty => Some(0),
        };
        // Create the tables only when missing: a commit costs an fsync, and
        // start-up time on an SD card is mostly fsyncs.
        let existing: Vec<String> = {
            let rx = db.begin_read().map_err(with_context("begin"))?;
            let names = rx.list_tables().map_err(with_context("list tables"))?;
            names.map(|h| h.name().to_string()).collect()
        };
        let needed = crate::db::TABLE_NAMES;
        if from.is_some() || needed.iter().any(|n| !existing.iter().any(|x| x == n)) {
            let tx = db.begin_write().map_err(with_context("begin"))?;
            crate::db::create_tables(&tx)?;
            match from {
                Some(0) => version::stamp(&tx, version::CURRENT)?,
                Some(v) => version::migrate_in(&tx, v, crate::util::now_ms())?,
                None => {}
            }
            tx.commit().map_err(with_context("commit"))?;
        }
        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<u64, String> {
        match version::read(&self.db)? {
            version::Found::Version(v) => Ok(v),
            version::Found::Empty => Ok(0),
        }
    }

    pub fn session(&self, key: &str) -> Result<Option<SessionMeta>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(SESSIONS).map_err(with_context("open"))?;
        let got = t.get(key).map_err(with_context("read"))?;
        Ok(got.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Sessions, most recently updated first, at most `limit`.
    pub fn list_sessions(&self, limit: usize) -> Result<Vec<SessionMeta>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(SESSIONS).map_err(with_context("open"))?;
        let mut out: Vec<SessionMeta> = Vec::new();
        for row in t.iter().map_err(with_context("iter"))? {
            let (_, v) = row.map_err(with_context("read"))?;
            if let Ok(m) = serde_json::from_slice::<SessionMeta>(v.value()) {
                out.push(m);
            }
        }
        crate::sort::sort_by(&mut out, |a, b| b.updated_ms.cmp(&a.updated_ms));
        out.truncate(limit);
        Ok(out)
    }

    pub fn session_count(&self) -> Result<u64, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(SESSIONS).map_err(with_context("open"))?;
        t.len().map_err(with_context("len"))
    }

    /// Appends turns to a session (creating it) in one durable transaction
    /// and adds token usage. Returns the updated metadata.
    pub fn append(
        &self,
        key: &str,
        turns: &[Turn],
        usage: TokenUsage,
        now_ms: u64,
    ) -> Result<SessionMeta, String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        let meta = append_in(&tx, key, turns, usage, now_ms)?;
        tx.commit().map_err(with_context("commit"))?;
        Ok(meta)
    }

    /// The context of a session: its newest summary (if any) followed by the
    /// newest message turns after what that summary covers, oldest-first,
    /// stopping before `max_turns` or `max_chars` would be exceeded (the
    /// newest turn is always included). Reads newest-first: never the whole
    /// history.
    pub fn recent(
        &self,
        key: &str,
        max_turns: usize,
        max_chars: usize,
    ) -> Result<Vec<(u64, Turn)>, String> {
        let summary = self.latest_summary(key)?;
        let from = summary
            .as_ref()
            .and_then(|(_, t)| t.covers_through)
            .map(|c| c + 1)
            .unwrap_or(0);
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(TURNS).map_err(with_context("open"))?;
        let mut out = Vec::new();
        let mut chars = summary
            .as_ref()
            .map(|(_, t)| message_chars(&t.message))
            .unwrap_or(0);
        for row in t
            .range((key, from)..=(key, u64::MAX))
            .map_err(with_context("range"))?
            .rev()
        {
            let (k, v) = row.map_err(with_context("read"))?;
            let seq = k.value().1;
            let Ok(turn) = serde_json::from_slice::<Turn>(v.value()) else {
                log::warn!("session {key}: turn {seq} is unreadable; skipped");
                continue;
            };
            if turn.kind == TurnKind::Summary {
                continue;
            }
            let size = message_chars(&turn.message);
            if !out.is_empty() && (out.len() >= max_turns || chars + size > max_chars) {
                break;
            }
            chars += size;
            out.push((seq, turn));
        }
        out.extend(summary);
        out.reverse();
        Ok(out)
    }

    /// The newest summary turn of a session.
    pub fn latest_summary(&self, key: &str) -> Result<Option<(u64, Turn)>, String> {
        let Some(seq) = self.session(key)?.and_then(|m| m.summary_seq) else {
            return Ok(None);
        };
        Ok(self
            .turns(key, seq, 1)?
            .into_iter()
            .find(|(s, t)| *s == seq && t.kind == TurnKind::Summary))
    }

    /// Message turns from `from` up to (not including) `to`, oldest-first,
    /// stopping before `max_chars` would be exceeded (the first is always
    /// included).
    pub fn span(
        &self,
        key: &str,
        from: u64,
        to: u64,
        max_chars: usize,
    ) -> Result<Vec<(u64, Turn)>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(TURNS).map_err(with_context("open"))?;
        let mut out = Vec::new();
        let mut chars = 0usize;
        if to <= from {
            return Ok(out);
        }
        for row in t
            .range((key, from)..(key, to))
            .map_err(with_context("range"))?
        {
            let (k, v) = row.map_err(with_context("read"))?;
            let Ok(turn) = serde_json::from_slice::<Turn>(v.value()) else {
                continue;
            };
            if turn.kind == TurnKind::Summary {
                continue;
            }
            let size = message_chars(&turn.message);
            if !out.is_empty() && chars + size > max_chars {
                break;
            }
            chars += size;
            out.push((k.value().1, turn));
        }
        Ok(out)
    }

    /// Turns in sequence order starting at `from`, at most `limit`.
    pub fn turns(&self, key: &str, from: u64, limit: usize) -> Result<Vec<(u64, Turn)>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(TURNS).map_err(with_context("open"))?;
        let mut out = Vec::new();
        for row in t
            .range((key, from)..=(key, u64::MAX))
            .map_err(with_context("range"))?
        {
            let (k, v) = row.map_err(with_context("read"))?;
            if let Ok(turn) = serde_json::from_slice::<Turn>(v.value()) {
                out.push((k.value().1, turn));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes a session and its transcript. Returns whether it existed.
    pub fn reset(&self, key: &str) -> Result<bool, String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        let existed = {
            let mut sessions = tx.open_table(SESSIONS).map_err(with_context("open"))?;
            let existed = sessions
                .remove(key)
                .map_err(with_context("remove"))?
                .is_some();
            let mut t = tx.open_table(TURNS).map_err(with_context("open"))?;
            t.retain_in((key, 0u64)..=(key, u64::MAX), |_, _| false)
                .map_err(with_context("remove"))?;
            existed
        };
        tx.commit().map_err(with_context("commit"))?;
        Ok(existed)
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = tx.open_table(KV).map_err(with_context("open"))?;
        let got = t.get(key).map_err(with_context("read"))?;
        Ok(got.map(|v| v.value().to_vec()))
    }

    pub fn kv_put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        {
            let mut t = tx.open_table(KV).map_err(with_context("open"))?;
            t.insert(key, value).map_err(with_context("insert"))?;
        }
        tx.commit().map_err(with_context("commit"))
    }
}

/// Retention and snapshots (the reactor's disk upkeep).
impl Store {
    /// The archived (summary-replaced) turns still stored, per session.
    pub fn archived(&self) -> Result<Vec<retention::Archived>, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let sessions = tx.open_table(SESSIONS).map_err(with_context("open"))?;
        let turns = tx.open_table(TURNS).map_err(with_context("open"))?;
        let mut out = Vec::new();
        for row in sessions.iter().map_err(with_context("iter"))? {
            let (_, v) = row.map_err(with_context("read"))?;
            let Ok(m) = serde_json::from_slice::<SessionMeta>(v.value()) else {
                continue;
            };
            let Some(below) = m.summary_seq else { continue };
            if m.pruned_below >= below {
                continue;
            }
            let first = turns
                .range((m.key.as_str(), m.pruned_below)..(m.key.as_str(), below))
                .map_err(with_context("range"))?
                .next()
                .transpose()
                .map_err(with_context("read"))?;
            let Some((k, v)) = first else { continue };
            let from_seq = k.value().1;
            let oldest_ms = serde_json::from_slice::<Turn>(v.value())
                .map(|t| t.ts_ms)
                .unwrap_or(0);
            // A turn's share of the file: its prompt characters, about
            // twice that as stored JSON, and about as much again in B-tree
            // pages and free space (measured: 10 MB of text took 33 MB).
            let span = below.saturating_sub(from_seq);
            let per_turn = m.chars_total / m.next_seq.max(1);
            let bytes = span.saturating_mul(per_turn).saturating_mul(3);
            out.push(retention::Archived {
                session: m.key.clone(),
                from_seq,
                below_seq: below,
                oldest_ms,
                bytes,
            });
        }
        Ok(out)
    }

    /// Removes archived turns of `session` in `[from, below)` older than
    /// `before_ms`, at most `limit` in one transaction. Returns how many.
    pub fn prune_turns(
        &self,
        session: &str,
        from: u64,
        below: u64,
        before_ms: u64,
        limit: usize,
    ) -> Result<u64, String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        let removed = {
            let mut sessions = tx.open_table(SESSIONS).map_err(with_context("open"))?;
            let mut t = tx.open_table(TURNS).map_err(with_context("open"))?;
            let Some(mut meta) = sessions
                .get(session)
                .map_err(with_context("read"))?
                .and_then(|v| serde_json::from_slice::<SessionMeta>(v.value()).ok())
            else {
                return Ok(0);
            };
            // Never at or past the newest summary, whatever the caller says.
            let below = below.min(meta.summary_seq.unwrap_or(0));
            let mut seqs = Vec::new();
            for row in t
                .range((session, from)..(session, below))
                .map_err(with_context("range"))?
            {
                let (k, v) = row.map_err(with_context("read"))?;
                let ts = serde_json::from_slice::<Turn>(v.value())
                    .map(|t| t.ts_ms)
                    .unwrap_or(0);
                if ts >= before_ms || seqs.len() >= limit {
                    break;
                }
                seqs.push(k.value().1);
            }
            for seq in &seqs {
                t.remove((session, *seq)).map_err(with_context("remove"))?;
            }
            if let Some(last) = seqs.last() {
                meta.pruned_below = meta.pruned_below.max(last + 1);
                let bytes = serde_json::to_vec(&meta).map_err(with_context("encode"))?;
                sessions
                    .insert(session, bytes.as_slice())
                    .map_err(with_context("insert"))?;
            }
            let n = seqs.len() as u64;
            let mut m = tx.open_table(version::META).map_err(with_context("open"))?;
            let before = m
                .get("retention_turns")
                .map_err(with_context("read"))?
                .map(|v| v.value())
                .unwrap_or(0);
            m.insert("retention_turns", before.saturating_add(n))
                .map_err(with_context("write"))?;
            n
        };
        tx.commit().map_err(with_context("commit"))?;
        Ok(removed)
    }

    /// A counter in the meta table (retention figures).
    pub fn meta_get(&self, key: &str) -> Result<u64, String> {
        let tx = self.db.begin_read().map_err(with_context("begin"))?;
        let t = match tx.open_table(version::META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(err) => return Err(format!("state store: open meta: {err}")),
        };
        let v = t.get(key).map_err(with_context("read"))?.map(|v| v.value());
        Ok(v.unwrap_or(0))
    }

    /// Adds to a counter in the meta table.
    pub fn meta_add(&self, key: &str, n: u64) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        {
            let mut m = tx.open_table(version::META).map_err(with_context("open"))?;
            let before = m
                .get(key)
                .map_err(with_context("read"))?
                .map(|v| v.value())
                .unwrap_or(0);
            m.insert(key, before.saturating_add(n))
                .map_err(with_context("write"))?;
        }
        tx.commit().map_err(with_context("commit"))
    }

    /// Bytes of free pages inside the file (what compaction would return).
    pub fn reclaimable_bytes(&self) -> Result<u64, String> {
        let tx = self.db.begin_write().map_err(with_context("begin"))?;
        let stats = tx.stats().map_err(with_context("stats"))?;
        let file = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let used = stats
            .allocated_pages()
            .saturating_mul(stats.page_size() as u64);
        tx.abort().map_err(with_context("abort"))?;
        Ok(file.saturating_sub(used).max(stats.fragmented_bytes()))
    }

    /// Compacts the file (no read transaction may be open). Returns the
    /// bytes the file shrank by.
    pub fn compact(&mut self) -> Result<u64, String> {
        let before = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        self.db.compact().map_err(with_context("compact"))?;
        let after = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(before.saturating_sub(after))
    }

    /// The snapshot file written by [`Store::snapshot`]: beside the store.
    pub fn snapshot_path(&self) -> PathBuf {
        snapshot_path(&self.path)
    }

    /// Writes a consistent copy of every table (one read transaction) to
    /// [`Store::snapshot_path`], mode 0600. Returns its path and size.
    pub fn snapshot(&self) -> Result<(PathBuf, u64), String> {
        self.snapshot_begin()?
            .write(&std::sync::atomic::AtomicBool::new(false))
    }

    /// Starts a snapshot: creates its file and opens the read transaction
    /// that fixes its content (cheap). [`Snapshot::write`] does the copying
    /// and may run on another thread while this store goes on writing.
    pub fn snapshot_begin(&self) -> Result<Snapshot, String> {
        let target = self.snapshot_path();
        let _ = std::fs::remove_file(&target);
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(|err| format!("cannot create {}: {err}", target.display()))?;
        }
        match self.db.begin_read() {
            Ok(rx) => Ok(Snapshot { rx, target }),
            Err(err) => {
                let _ = std::fs::remove_file(&target);
                Err(format!("state store: begin: {err}"))
            }
        }
    }
}

/// A store snapshot whose content is fixed (an open read transaction) and
/// whose file is not yet written.
pub struct Snapshot {
    rx: redb::ReadTransaction,
    target: PathBuf,
}

impl Snapshot {
    /// Copies every table into the snapshot file; returns its path and size.
    /// On failure, or when `stop` is raised (shutdown), the file is removed.
    pub fn write(self, stop: &std::sync::atomic::AtomicBool) -> Result<(PathBuf, u64), String> {
        let Snapshot { rx, target } = self;
        let result = (|| {
            let out = redb::Database::builder()
                .set_cache_size(256 * 1024)
                .create_with_file_format_v3(true)
                .create(&target)
                .map_err(|err| format!("cannot create {}: {err}", target.display()))?;
            let wx = out.begin_write().map_err(with_context("begin snapshot"))?;
            crate::db::copy_all(&rx, &wx, stop)?;
            wx.commit().map_err(with_context("commit snapshot"))?;
            Ok::<(), String>(())
        })();
        drop(rx);
        if let Err(err) = result {
            let _ = std::fs::remove_file(&target);
            return Err(err);
        }
        let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        Ok((target, size))
    }
}

/// `state.redb.snapshot`: where the running gateway writes a backup copy.
pub fn snapshot_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".snapshot");
    store.with_file_name(name)
}

/// The body of [`Store::append`] inside a caller's write transaction, so other
/// writes (the delivery queue) can commit atomically with the turns.
///
/// Unreadable metadata is not reset to zero (that would overwrite turns): the
/// next sequence number is recovered from the newest stored turn.
pub(crate) fn append_in(
    tx: &redb::WriteTransaction,
    key: &str,
    turns: &[Turn],
    usage: TokenUsage,
    now_ms: u64,
) -> Result<SessionMeta, String> {
    let mut sessions = tx.open_table(SESSIONS).map_err(with_context("open"))?;
    let mut t = tx.open_table(TURNS).map_err(with_context("open"))?;
    let stored: Option<Result<SessionMeta, String>> = sessions
        .get(key)
        .map_err(with_context("read"))?
        .map(|v| serde_json::from_slice(v.value()).map_err(|err| err.to_string()));
    let mut meta = match stored {
        Some(Ok(m)) => m,
        None => SessionMeta::default(),
        Some(Err(err)) => {
            let last = t
                .range((key, 0u64)..=(key, u64::MAX))
                .map_err(with_context("range"))?
                .next_back()
                .transpose()
                .map_err(with_context("read"))?
                .map(|(k, _)| k.value().1);
            log::warn!("session {key}: metadata unreadable ({err}); rebuilt from the transcript");
            SessionMeta {
                next_seq: last.map_or(0, |s| s + 1),
                created_ms: now_ms,
                ..SessionMeta::default()
            }
        }
    };
    if meta.key.is_empty() {
        meta.key = key.to_string();
        if meta.created_ms == 0 {
            meta.created_ms = now_ms;
        }
    }
    for turn in turns {
        let mut turn = turn.clone();
        if turn.kind == TurnKind::Summary {
            meta.summary_seq = Some(meta.next_seq);
            meta.summarized_chars = turn.cum_chars;
        } else {
            meta.chars_total += message_chars(&turn.message) as u64;
            turn.cum_chars = meta.chars_total;
        }
        let bytes = serde_json::to_vec(&turn).map_err(with_context("encode"))?;
        t.insert((key, meta.next_seq), bytes.as_slice())
            .map_err(with_context("insert"))?;
        meta.next_seq += 1;
    }
    meta.updated_ms = now_ms;
    meta.tokens_in += usage.input;
    meta.tokens_out += usage.output;
    let bytes = serde_json::to_vec(&meta).map_err(with_context("encode"))?;
    sessions
        .insert(key, bytes.as_slice())
        .map_err(with_context("insert"))?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Part, Role};

    fn turn(role: Role, text: &str) -> Turn {
        Turn::message(
            1,
            Message {
                role,
                parts: vec![Part::Text(text.into())],
            },
        )
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("pinch-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A transcript turn as stored before usage and cache counts were named
    /// structs: they were `(u64, u64)` tuples, encoded as two-element arrays.
    #[derive(Debug, Serialize, Deserialize)]
    struct TupleTurn {
        ts_ms: u64,
        kind: TurnKind,
        message: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<(u64, u64)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<(u64, u64)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        covers_through: Option<u64>,
        #[serde(default)]
        cum_chars: u64,
    }

    /// A record in the tuple shape, as an older binary wrote it.
    const TUPLE_RECORD: &str = r#"{"ts_ms":1795000000000,"kind":"message","message":{"role":"assistant","parts":[{"type":"text","text":"hi"}]},"model":"local/qwen","usage":[1210,4],"cache":[1190,20],"cum_chars":42}"#;

    #[test]
    fn usage_and_cache_keep_the_stored_tuple_shape_both_ways() {
        // The record an older binary wrote reads into the named fields...
        let decoded: Turn = serde_json::from_str(TUPLE_RECORD).expect("old record");
        assert_eq!(
            decoded.usage,
            Some(TokenUsage {
                input: 1210,
                output: 4
            })
        );
        assert_eq!(
            decoded.cache,
            Some(CacheUsage {
                read: 1190,
                written: 20
            })
        );
        // ...and is written back byte for byte the same.
        let written = serde_json::to_string(&decoded).expect("encode");
        assert_eq!(written, TUPLE_RECORD);
        // The tuple shape itself encodes to those bytes too, and reads what
        // this version writes (a rollback reads new records).
        let old: TupleTurn = serde_json::from_str(&written).expect("read by the tuple shape");
        assert_eq!(old.usage, Some((1210, 4)));
        assert_eq!(old.cache, Some((1190, 20)));
        assert_eq!(serde_json::to_string(&old).expect("encode"), TUPLE_RECORD);
        // Absent counts stay absent in both shapes.
        let plain = serde_json::to_string(&turn(Role::User, "hello")).expect("encode");
        assert!(
            !plain.contains("usage") && !plain.contains("cache"),
            "{plain}"
        );
        let old: TupleTurn = serde_json::from_str(&plain).expect("read by the tuple shape");
        assert_eq!((old.usage, old.cache), (None, None));
        // Anything but two counts is refused, not misread.
        for bad in [
            r#"[1]"#,
            r#"[1,2,3]"#,
            r#"{"input":1,"output":2}"#,
            r#"[-1,2]"#,
        ] {
            let record = TUPLE_RECORD.replace("[1210,4]", bad);
            assert!(serde_json::from_str::<Turn>(&record).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stored_turn_reads_in_the_tuple_shape() {
        let path = tmp("tuple-shape");
        let s = Store::open(&path).expect("open");
        let mut answer = turn(Role::Assistant, "hi");
        answer.usage = Some(TokenUsage {
            input: 7,
            output: 3,
        });
        answer.cache = Some(CacheUsage {
            read: 5,
            written: 2,
        });
        s.append("k", &[answer], TokenUsage::default(), 1)
            .expect("append");
        let tx = s.db.begin_read().expect("read");
        let table = tx.open_table(TURNS).expect("open");
        let raw = table.get(("k", 0)).expect("get").expect("stored");
        let old: TupleTurn = serde_json::from_slice(raw.value()).expect("tuple shape");
        assert_eq!((old.usage, old.cache), (Some((7, 3)), Some((5, 2))));
        drop(raw);
        drop(table);
        drop(tx);
        drop(s);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn append_survives_reopen_and_reads_newest_within_budget() {
        let path = tmp("reopen");
        {
            let s = Store::open(&path).expect("open");
            for i in 0..10 {
                s.append(
                    "web:a",
                    &[
                        turn(Role::User, &format!("q{i}")),
                        turn(Role::Assistant, &format!("a{i}")),
                    ],
                    TokenUsage {
                        input: 3,
                        output: 4,
                    },
                    100 + i,
                )
                .expect("append");
            }
        }
        let s = Store::open(&path).expect("reopen");
        let m = s.session("web:a").expect("read").expect("exists");
        assert_eq!(m.next_seq, 20);
        assert_eq!((m.tokens_in, m.tokens_out), (30, 40));
        let r = s.recent("web:a", 4, 1000).expect("recent");
        assert_eq!(
            r.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![16, 17, 18, 19]
        );
        let r = s.recent("web:a", 100, 5).expect("budget");
        assert_eq!(r.len(), 2, "2 chars per turn, budget 5");
        assert_eq!(s.turns("web:a", 18, 10).expect("turns").len(), 2);
        assert!(s.reset("web:a").expect("reset"));
        assert!(s.session("web:a").expect("read").is_none());
        assert!(s.turns("web:a", 0, 10).expect("turns").is_empty());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_summary_replaces_what_it_covers_and_later_turns_stay_verbatim() {
        let path = tmp("summary");
        let s = Store::open(&path).expect("open");
        // seq 0..=3: two exchanges of 10 chars each message.
        for q in ["aaaaaaaaaa", "bbbbbbbbbb"] {
            s.append(
                "k",
                &[turn(Role::User, q), turn(Role::Assistant, q)],
                TokenUsage::default(),
                1,
            )
            .expect("append");
        }
        let m = s.session("k").expect("r").expect("m");
        assert_eq!((m.chars_total, m.unsummarized_chars()), (40, 40));
        // Summarise seq 0..=1 (20 chars); a user turn arrives after it.
        let covered = s.span("k", 0, 2, usize::MAX).expect("span");
        assert_eq!(covered.len(), 2);
        let mut sum = turn(Role::User, "sum");
        sum.kind = TurnKind::Summary;
        sum.covers_through = Some(1);
        sum.cum_chars = covered[1].1.cum_chars;
        s.append(
            "k",
            &[sum, turn(Role::User, "cccccccccc")],
            TokenUsage::default(),
            2,
        )
        .expect("append");
        let m = s.session("k").expect("r").expect("m");
        assert_eq!(m.summary_seq, Some(4));
        assert_eq!(m.unsummarized_chars(), 30, "b, b and c remain");
        let r = s.recent("k", 100, 100_000).expect("recent");
        let seqs: Vec<u64> = r.iter().map(|(q, _)| *q).collect();
        assert_eq!(
            seqs,
            vec![4, 2, 3, 5],
            "summary first, then what it does not cover"
        );
        assert_eq!(r[0].1.kind, TurnKind::Summary);
        // The budget still applies after the summary.
        let r = s.recent("k", 100, 15).expect("recent");
        assert_eq!(r.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![4, 5]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unreadable_meta_does_not_overwrite_turns() {
        let path = tmp("corrupt-meta");
        let s = Store::open(&path).expect("open");
        s.append(
            "k",
            &[turn(Role::User, "a"), turn(Role::User, "b")],
            TokenUsage::default(),
            1,
        )
        .expect("append");
        {
            let tx = s.db.begin_write().expect("w");
            tx.open_table(SESSIONS)
                .expect("open")
                .insert("k", &b"{broken"[..])
                .expect("insert");
            tx.commit().expect("commit");
        }
        let m = s
            .append("k", &[turn(Role::User, "c")], TokenUsage::default(), 2)
            .expect("append");
        assert_eq!(m.next_seq, 3);
        let texts: Vec<u64> = s
            .turns("k", 0, 10)
            .expect("t")
            .iter()
            .map(|(q, _)| *q)
            .collect();
        assert_eq!(texts, vec![0, 1, 2]);
        let _ = std::fs::remove_file(&path);
    }
}
