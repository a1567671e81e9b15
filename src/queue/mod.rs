//! The durable delivery path: "a reply generated is a reply delivered, in order,
//! even across a crash, a power cut or an hour-long channel outage".
//!
//! Inbound messages are deduplicated by platform id and recorded as pending
//! ([`accept_inbound`]); the reactor's agent run ends in ONE write transaction
//! ([`Store::commit_reply`]) that appends the transcript turns, marks the
//! inbound message done and enqueues every reply chunk. A crash before that
//! commit leaves the message pending, so it runs again after a restart (the
//! model may run twice for it); a crash after it leaves the reply queued. A
//! second commit for the same inbound message is refused, so there are never
//! two committed replies for one message.
//!
//! Outgoing messages live in `outq` keyed by a global sequence number; only
//! the head (oldest message) of each chat is scheduled in `outq_due`, so a chat
//! keeps its order while other chats proceed. Failures back off exponentially
//! with jitter (honouring the platform's retry-after) and end in `dead` after
//! `maxAttempts` or `maxAge`. The caller keeps the set of sequence numbers it
//! has in flight and passes it to [`next_due`]/[`next_wake`]. Delivery is
//! at-least-once: a crash between the platform accepting a message and
//! [`delivered`] committing sends it again after restart.
//!
//! Bounds (`maxEntries`, `maxBytes`) are per channel and enforced at admission
//! ([`can_accept`], before the agent run): a generated reply is never dropped,
//! even over the limit; it is kept and counted in `overLimit`.
//!
//! Tables (all in `state.redb`): `inbox`, `inbox_age` and `inbox_pending`
//! (dedup window, its age index, not-yet-answered messages), `outq`,
//! `outq_chat` (per-chat order index), `outq_due` (one head per chat, keyed by
//! due time), `dead`, and `queue_meta` (counters). Adapter state such as the
//! Telegram `getUpdates` offset goes in the store's `kv` table under
//! `channel/<channel>/<key>` ([`channel_state_get`], [`channel_state_put`]).
//!
//! Everything takes `now_ms` and, for backoff, a jitter function; nothing
//! reads a clock or a random source. Unreadable rows are logged and skipped,
//! dead-lettered or counted, never a panic.

use crate::channel::envelope::Outbound;
use crate::store::Store;
use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

mod admin;
mod inbox;
mod outq;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;

pub use admin::{
    count_drop, count_drop_in, dead_letters, drop_msg, expire_dead, list, retry_dead, stats,
};
pub use inbox::{accept_inbound, accept_inbound_in, inbound_id, pending_inbound, prune_inbox};
pub use outq::{
    can_accept, commit_reply_in, delivered, delivered_many, fail_permanent, failed, next_due,
    next_wake,
};

use crate::db::{
    DEAD, INBOX, INBOX_AGE, INBOX_PENDING, OUTQ, OUTQ_CHAT, OUTQ_DUE, QUEUE_META as META,
};

/// Limits and retry policy. Field names are the `queue.*` config keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Queued outgoing messages per channel before new runs are refused.
    pub max_entries: u64,
    /// Queued outgoing bytes (encoded) per channel before new runs are refused.
    pub max_bytes: u64,
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Age (since enqueue) after which a failing message is dead-lettered.
    pub max_age_ms: u64,
    /// Dead letters kept; the oldest is dropped (and counted) beyond this.
    pub max_dead: u64,
    /// First retry delay; doubles per attempt up to `maxBackoffMs`.
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Answered inbound ids remembered per channel for dedup...
    pub dedup_keep: u64,
    /// ...and for at most this long.
    pub dedup_max_age_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_entries: 10_000,
            max_bytes: 16 * 1024 * 1024,
            max_attempts: 20,
            max_age_ms: 24 * 3_600_000,
            max_dead: 1_000,
            base_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            dedup_keep: 2_000,
            dedup_max_age_ms: 48 * 3_600_000,
        }
    }
}

/// Which admission limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Limit {
    Entries(u64),
    Bytes(u64),
}

/// Backpressure: the channel's outgoing queue is at its bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Full {
    pub channel: String,
    pub entries: u64,
    pub bytes: u64,
    pub limit: Limit,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, key, n) = match self.limit {
            Limit::Entries(n) => ("messages", "queue.maxEntries", n),
            Limit::Bytes(n) => ("bytes", "queue.maxBytes", n),
        };
        write!(
            f,
            "the outgoing queue for {ch} is full ({e} messages, {b} bytes; limit {key} = {n} {what}): \
             earlier replies are waiting for {ch} to accept them, so new messages are refused until it drains",
            ch = self.channel,
            e = self.entries,
            b = self.bytes,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The database failed (I/O, corruption) or a test crash was injected.
    Store(String),
    Full(Full),
    /// A malformed request (an outbound message without channel or chat).
    Invalid(String),
    /// No queued or dead-lettered message has this sequence number.
    NotFound(u64),
    /// The inbound message already has a committed reply.
    AlreadyDone {
        channel: String,
        id: String,
    },
    /// The inbound message was never accepted.
    UnknownInbound {
        channel: String,
        id: String,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Store(s) => write!(f, "delivery queue: {s}"),
            QueueError::Full(full) => full.fmt(f),
            QueueError::Invalid(s) => write!(f, "delivery queue: {s}"),
            QueueError::NotFound(seq) => {
                write!(f, "no queued or dead-lettered message #{seq} (see `pinch queue list`)")
            }
            QueueError::AlreadyDone { channel, id } => write!(
                f,
                "inbound message {channel}/{id} already has a committed reply; not committing another"
            ),
            QueueError::UnknownInbound { channel, id } => {
                write!(f, "inbound message {channel}/{id} was never accepted")
            }
        }
    }
}

impl std::error::Error for QueueError {}

impl From<QueueError> for String {
    fn from(e: QueueError) -> String {
        e.to_string()
    }
}

fn store_error<E: fmt::Display>(what: &'static str) -> impl Fn(E) -> QueueError {
    move |err| QueueError::Store(format!("{what}: {err}"))
}

/// The queue's one write transaction: opens it, runs `f` in it, passes the
/// crash checkpoint and commits. An error anywhere drops the transaction,
/// so nothing of it is written.
fn write<T>(
    store: &Store,
    f: impl FnOnce(&WriteTransaction) -> Result<T, QueueError>,
) -> Result<T, QueueError> {
    let tx = store.db.begin_write().map_err(store_error("begin"))?;
    let value = f(&tx)?;
    checkpoint()?;
    tx.commit().map_err(store_error("commit"))?;
    Ok(value)
}

/// [`write`] with every queue table open.
fn write_tables<T>(
    store: &Store,
    f: impl FnOnce(&mut QueueTables) -> Result<T, QueueError>,
) -> Result<T, QueueError> {
    write(store, |tx| f(&mut QueueTables::open(tx)?))
}

/// Result of [`accept_inbound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    New,
    /// Already seen (a platform redelivery): do nothing.
    Duplicate,
}

/// Result of [`failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Retry { at_ms: u64 },
    Dead,
}

/// Result of [`drop_msg`]: where the message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dropped {
    Queued,
    Dead,
}

/// One outgoing message as stored in `outq` (and, with a reason, in `dead`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRow {
    pub outbound: Outbound,
    /// `channel:account:chat_id`: the unit of ordering.
    pub chat_key: String,
    pub attempts: u32,
    pub next_at_ms: u64,
    pub first_ms: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Encoded size of `outbound`, counted against `queue.maxBytes`.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedMsg {
    pub seq: u64,
    #[serde(flatten)]
    pub row: QueuedRow,
}

/// A dead letter as stored in `dead`: the queued row's fields plus
/// `reason` and `dead_ms` in one flat object. Read with [`DeadRow::decode`]
/// (no derived `Deserialize`: a flattened field buffers the whole object
/// through serde's `Content`, many KB of code for one type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadRow {
    #[serde(flatten)]
    pub row: QueuedRow,
    pub reason: String,
    pub dead_ms: u64,
}

impl DeadRow {
    /// Parses a stored dead letter: the same bytes read once as the queued
    /// row (which ignores the two extra fields) and once for those fields.
    pub fn decode(raw: &[u8]) -> Result<DeadRow, serde_json::Error> {
        #[derive(Deserialize)]
        struct Death {
            reason: String,
            dead_ms: u64,
        }
        let row: QueuedRow = serde_json::from_slice(raw)?;
        let death: Death = serde_json::from_slice(raw)?;
        Ok(DeadRow {
            row,
            reason: death.reason,
            dead_ms: death.dead_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadMsg {
    pub seq: u64,
    #[serde(flatten)]
    pub dead: DeadRow,
}

/// The inbox entry a reply answers: its channel and its id there (from
/// [`inbound_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundKey<'a> {
    pub channel: &'a str,
    pub id: &'a str,
}

/// What [`Store::commit_reply`] committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Session metadata after the append (None when there were no turns).
    pub meta: Option<crate::store::SessionMeta>,
    /// Sequence numbers of the enqueued chunks, in order.
    pub seqs: Vec<u64>,
    /// The channel was already over its bound: the reply was kept anyway.
    pub over_limit: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChannelDepth {
    pub entries: u64,
    pub bytes: u64,
}

/// For `/status` and `pinch queue list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    pub depth: u64,
    pub bytes: u64,
    pub oldest_age_ms: Option<u64>,
    pub dead: u64,
    /// Inbound messages accepted and not yet answered.
    pub inbound_pending: u64,
    pub channels: BTreeMap<String, ChannelDepth>,
    /// `channel:reason` → count (ACL drops, dead-letter overflow, ...).
    pub dropped: BTreeMap<String, u64>,
    /// channel → replies committed while over the bound.
    pub over_limit: BTreeMap<String, u64>,
}

/// `channel:account:chat_id`.
pub fn chat_key(out: &Outbound) -> String {
    format!("{}:{}:{}", out.channel, out.account, out.chat_id)
}

/// Delay before the next attempt after `attempts` failures: `baseBackoffMs`
/// doubling up to `maxBackoffMs`, jittered into `[d/2, d]`, and never less
/// than the platform's retry-after. `jitter(n)` returns a value in `0..=n`
/// (larger values are clamped).
pub fn backoff_ms(
    cfg: &QueueConfig,
    attempts: u32,
    retry_after_s: Option<u64>,
    jitter: &mut dyn FnMut(u64) -> u64,
) -> u64 {
    let exp = attempts.saturating_sub(1).min(40);
    let cap = cfg.max_backoff_ms.max(1);
    let d = cfg
        .base_backoff_ms
        .max(1)
        .checked_mul(1u64 << exp)
        .unwrap_or(cap)
        .min(cap);
    let half = d / 2;
    let spread = d - half;
    let delay = half + jitter(spread).min(spread);
    delay.max(retry_after_s.map_or(0, |s| s.saturating_mul(1000)))
}

/// Persisted adapter state (Telegram offset, pairing JSON): `kv` key
/// `channel/<channel>/<key>`.
pub fn channel_state_key(channel: &str, key: &str) -> String {
    format!("channel/{channel}/{key}")
}

pub fn channel_state_get(
    store: &Store,
    channel: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    store.kv_get(&channel_state_key(channel, key))
}

pub fn channel_state_put(
    store: &Store,
    channel: &str,
    key: &str,
    value: &[u8],
) -> Result<(), String> {
    store.kv_put(&channel_state_key(channel, key), value)
}

/// The same write inside a caller's transaction (e.g. advance the Telegram
/// offset in the transaction that accepts the batch it acknowledges).
pub fn channel_state_put_in(
    tx: &WriteTransaction,
    channel: &str,
    key: &str,
    value: &[u8],
) -> Result<(), QueueError> {
    let mut t = tx
        .open_table(crate::db::KV)
        .map_err(store_error("open kv"))?;
    t.insert(channel_state_key(channel, key).as_str(), value)
        .map_err(store_error("write kv"))?;
    Ok(())
}

// Test hook: `crash_after(n)` makes the n-th following write step fail as if
// the process died there (its transaction is dropped, never committed).
#[cfg(test)]
pub(crate) use crate::util::crash::{crash_after, crash_disarm};

#[cfg(test)]
fn checkpoint() -> Result<(), QueueError> {
    if crate::util::crash::crash_now() {
        Err(QueueError::Store("injected crash".into()))
    } else {
        Ok(())
    }
}

#[cfg(not(test))]
#[inline(always)]
fn checkpoint() -> Result<(), QueueError> {
    Ok(())
}

/// Every queue table, open in one write transaction.
struct QueueTables<'t> {
    inbox: Table<'t, (&'static str, &'static str), &'static [u8]>,
    inbox_age: Table<'t, (&'static str, u64, &'static str), ()>,
    pending: Table<'t, (&'static str, &'static str), u64>,
    outq: Table<'t, u64, &'static [u8]>,
    chats: Table<'t, (&'static str, u64), u64>,
    due: Table<'t, (u64, u64), &'static str>,
    dead: Table<'t, u64, &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
}

impl<'t> QueueTables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<QueueTables<'t>, QueueError> {
        let o = store_error("open table");
        Ok(QueueTables {
            inbox: tx.open_table(INBOX).map_err(&o)?,
            inbox_age: tx.open_table(INBOX_AGE).map_err(&o)?,
            pending: tx.open_table(INBOX_PENDING).map_err(&o)?,
            outq: tx.open_table(OUTQ).map_err(&o)?,
            chats: tx.open_table(OUTQ_CHAT).map_err(&o)?,
            due: tx.open_table(OUTQ_DUE).map_err(&o)?,
            dead: tx.open_table(DEAD).map_err(&o)?,
            meta: tx.open_table(META).map_err(&o)?,
        })
    }

    fn meta_get(&self, key: &str) -> Result<u64, QueueError> {
        Ok(self
            .meta
            .get(key)
            .map_err(store_error("read meta"))?
            .map_or(0, |v| v.value()))
    }

    fn meta_set(&mut self, key: &str, v: u64) -> Result<(), QueueError> {
        if v == 0 {
            self.meta.remove(key).map_err(store_error("write meta"))?;
        } else {
            self.meta
                .insert(key, v)
                .map_err(store_error("write meta"))?;
        }
        Ok(())
    }

    fn meta_add(&mut self, key: &str, n: u64) -> Result<u64, QueueError> {
        let v = self.meta_get(key)?.saturating_add(n);
        self.meta_set(key, v)?;
        Ok(v)
    }

    fn meta_sub(&mut self, key: &str, n: u64) -> Result<u64, QueueError> {
        let v = self.meta_get(key)?.saturating_sub(n);
        self.meta_set(key, v)?;
        Ok(v)
    }
}

/// Meta keys.
fn k_entries(ch: &str) -> String {
    format!("n:{ch}")
}
fn k_bytes(ch: &str) -> String {
    format!("b:{ch}")
}
fn k_inbox(ch: &str) -> String {
    format!("inbox:{ch}")
}
fn k_drop(ch: &str, reason: &str) -> String {
    format!("drop:{ch}:{reason}")
}
fn k_over(ch: &str) -> String {
    format!("over:{ch}")
}
const K_SEQ: &str = "seq";
const K_DEAD: &str = "dead";

/// Meta rows whose key starts with `prefix`, with the prefix stripped.
fn meta_prefixed<T: ReadableTable<&'static str, u64>>(
    t: &T,
    prefix: &str,
) -> Result<Vec<(String, u64)>, QueueError> {
    // ';' is the byte after ':', so this range is exactly the prefix.
    let end = format!("{};", prefix.trim_end_matches(':'));
    let mut out = Vec::new();
    for row in t
        .range(prefix..end.as_str())
        .map_err(store_error("read meta"))?
    {
        let (k, v) = row.map_err(store_error("read meta"))?;
        out.push((k.value()[prefix.len()..].to_string(), v.value()));
    }
    Ok(out)
}

impl Store {
    /// Ends an agent run in ONE durable transaction: appends `turns` (and
    /// `usage`) to `session`, marks the inbound message `(channel, id)` done
    /// (id from [`inbound_id`]) and enqueues every reply chunk in order.
    /// Nothing is written unless all of it is; an inbound message that already
    /// has a committed reply is refused with [`QueueError::AlreadyDone`].
    /// Bounds are not enforced here (see [`can_accept`]): a reply over the
    /// limit is kept and reported in `over_limit`.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_reply(
        &self,
        cfg: &QueueConfig,
        session: &str,
        turns: &[crate::store::Turn],
        usage: crate::llm::types::TokenUsage,
        inbound: Option<InboundKey>,
        replies: &[Outbound],
        now_ms: u64,
    ) -> Result<Committed, QueueError> {
        write(self, |tx| {
            commit_reply_in(tx, cfg, session, turns, usage, inbound, replies, now_ms)
        })
    }
}
