//! The outgoing side: enqueue (inside `commit_reply`), per-chat dispatch,
//! retry with backoff, dead letters, admin operations and counters.
//!
//! Invariant kept by every write: `outq_due` holds exactly one entry per chat
//! with queued messages, for its lowest sequence number (the head), keyed by
//! that message's `next_at_ms`. Enqueueing appends behind the head, so the
//! head of a chat changes only when it is removed (delivered, dead, dropped).

use super::InboundKey;
use super::{
    backoff_ms, chat_key, checkpoint, k_bytes, k_drop, k_entries, k_over, store_error,
    write_tables, Committed, DeadRow, Disposition, Full, Limit, QueueConfig, QueueError,
    QueueTables, QueuedMsg, QueuedRow, K_DEAD, K_SEQ, META, OUTQ, OUTQ_DUE,
};
use crate::channel::envelope::Outbound;
use crate::llm::types::TokenUsage;
use crate::store::{Store, Turn};
use redb::{ReadableTable, WriteTransaction};
use std::collections::HashSet;

/// Longest `last_error` kept, in bytes.
pub(super) const MAX_ERROR_BYTES: usize = 500;

/// A row removed from `outq`.
pub(super) enum Taken {
    Row(QueuedRow),
    Unreadable {
        chat_key: Option<String>,
        raw: Vec<u8>,
        err: String,
    },
}

pub(super) fn decode(raw: &[u8]) -> Result<QueuedRow, String> {
    serde_json::from_slice(raw).map_err(|e| e.to_string())
}

pub(super) fn channel_of(chat_key: &str) -> &str {
    chat_key.split(':').next().unwrap_or("")
}

/// See [`crate::store::Store::commit_reply`]; this is its body inside a
/// caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn commit_reply_in(
    tx: &WriteTransaction,
    cfg: &QueueConfig,
    session: &str,
    turns: &[Turn],
    usage: TokenUsage,
    inbound: Option<InboundKey>,
    replies: &[Outbound],
    now_ms: u64,
) -> Result<Committed, QueueError> {
    let meta = if turns.is_empty() && usage == TokenUsage::default() {
        None
    } else {
        Some(
            crate::store::append_in(tx, session, turns, usage, now_ms)
                .map_err(QueueError::Store)?,
        )
    };
    checkpoint()?;
    let mut q = QueueTables::open(tx)?;
    if let Some(inbound) = inbound {
        q.mark_done(inbound.channel, inbound.id, now_ms)?;
    }
    let mut seqs = Vec::with_capacity(replies.len());
    let mut over_limit = false;
    for out in replies {
        checkpoint()?;
        if let Some((seq, over)) = q.enqueue(cfg, out, now_ms)? {
            seqs.push(seq);
            over_limit |= over;
        }
    }
    Ok(Committed {
        meta,
        seqs,
        over_limit,
    })
}

/// Admission check before an agent run: refuses when `channel`'s queue is at
/// `queue.maxEntries` or `queue.maxBytes`.
pub fn can_accept(store: &Store, cfg: &QueueConfig, channel: &str) -> Result<(), QueueError> {
    let tx = store.db.begin_read().map_err(store_error("begin"))?;
    let meta = tx.open_table(META).map_err(store_error("open"))?;
    let get = |k: String| -> Result<u64, QueueError> {
        Ok(meta
            .get(k.as_str())
            .map_err(store_error("read meta"))?
            .map_or(0, |v| v.value()))
    };
    let entries = get(k_entries(channel))?;
    let bytes = get(k_bytes(channel))?;
    let limit = if entries >= cfg.max_entries {
        Limit::Entries(cfg.max_entries)
    } else if bytes >= cfg.max_bytes {
        Limit::Bytes(cfg.max_bytes)
    } else {
        return Ok(());
    };
    Err(QueueError::Full(Full {
        channel: channel.to_string(),
        entries,
        bytes,
        limit,
    }))
}

/// Heads of chats due at `now_ms`, at most `limit`, skipping heads the caller
/// has in flight. Only a chat's head is ever returned, so sending each result
/// and reporting [`delivered`]/[`failed`] keeps per-chat order. Unreadable
/// rows are dead-lettered on the way.
pub fn next_due(
    store: &Store,
    now_ms: u64,
    limit: usize,
    inflight: &HashSet<u64>,
) -> Result<Vec<QueuedMsg>, QueueError> {
    let mut out = Vec::new();
    let mut broken: Vec<(u64, u64, String)> = Vec::new();
    {
        let tx = store.db.begin_read().map_err(store_error("begin"))?;
        let due = tx.open_table(OUTQ_DUE).map_err(store_error("open"))?;
        let outq = tx.open_table(OUTQ).map_err(store_error("open"))?;
        for row in due
            .range(..=(now_ms, u64::MAX))
            .map_err(store_error("read due"))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(store_error("read due"))?;
            let (at, seq) = k.value();
            if inflight.contains(&seq) {
                continue;
            }
            let raw = outq.get(seq).map_err(store_error("read outq"))?;
            match raw.map(|r| decode(r.value())) {
                Some(Ok(row)) => out.push(QueuedMsg { seq, row }),
                Some(Err(err)) => {
                    log::error!("outgoing message #{seq}: unreadable ({err}); dead-lettered");
                    broken.push((at, seq, v.value().to_string()));
                }
                None => {
                    log::error!("outgoing message #{seq}: scheduled but missing; index repaired");
                    broken.push((at, seq, v.value().to_string()));
                }
            }
        }
    }
    if !broken.is_empty() {
        let tx = store.db.begin_write().map_err(store_error("begin"))?;
        {
            let mut q = QueueTables::open(&tx)?;
            for (at, seq, ck) in broken {
                match q.take(seq)? {
                    Some(t) => {
                        q.bury_taken(&QueueConfig::default(), seq, t, "unreadable", now_ms)?
                    }
                    None => {
                        q.due.remove((at, seq)).map_err(store_error("write due"))?;
                        let bytes = q
                            .chats
                            .remove((ck.as_str(), seq))
                            .map_err(store_error("write chats"))?
                            .map(|v| v.value());
                        if let Some(b) = bytes {
                            q.meta_sub(&k_entries(channel_of(&ck)), 1)?;
                            q.meta_sub(&k_bytes(channel_of(&ck)), b)?;
                        }
                        q.promote(&ck, seq)?;
                    }
                }
            }
        }
        tx.commit().map_err(store_error("commit"))?;
    }
    Ok(out)
}

/// Earliest `next_at_ms` of a chat head not in flight (for the reactor's
/// timer); `None` when nothing waits.
pub fn next_wake(store: &Store, inflight: &HashSet<u64>) -> Result<Option<u64>, QueueError> {
    let tx = store.db.begin_read().map_err(store_error("begin"))?;
    let due = tx.open_table(OUTQ_DUE).map_err(store_error("open"))?;
    for row in due.iter().map_err(store_error("read due"))? {
        let (k, _) = row.map_err(store_error("read due"))?;
        let (at, seq) = k.value();
        if !inflight.contains(&seq) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// The platform accepted message `seq`: removes it; the chat's next message
/// becomes due. Returns false if it was not queued (dropped meanwhile).
pub fn delivered(store: &Store, seq: u64) -> Result<bool, QueueError> {
    delivered_many(store, &[seq]).map(|n| n == 1)
}

/// [`delivered`] for several messages in one transaction.
pub fn delivered_many(store: &Store, seqs: &[u64]) -> Result<usize, QueueError> {
    write_tables(store, |q| {
        let mut n = 0;
        for &seq in seqs {
            if q.take(seq)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    })
}

/// A delivery attempt failed: schedules a retry with backoff (never sooner
/// than `retry_after_s`), or dead-letters the message after
/// `queue.maxAttempts` attempts or `queue.maxAgeMs` since it was queued.
pub fn failed(
    store: &Store,
    cfg: &QueueConfig,
    seq: u64,
    now_ms: u64,
    err: &str,
    retry_after_s: Option<u64>,
    jitter: &mut dyn FnMut(u64) -> u64,
) -> Result<Disposition, QueueError> {
    write_tables(store, |q| {
        let raw = q
            .outq
            .get(seq)
            .map_err(store_error("read outq"))?
            .map(|v| v.value().to_vec())
            .ok_or(QueueError::NotFound(seq))?;
        Ok(match decode(&raw) {
            Err(_) => {
                let t = q.take(seq)?.ok_or(QueueError::NotFound(seq))?;
                q.bury_taken(cfg, seq, t, "unreadable", now_ms)?;
                Disposition::Dead
            }
            Ok(mut row) => {
                row.attempts = row.attempts.saturating_add(1);
                row.last_error = Some(crate::util::truncate(err, MAX_ERROR_BYTES).to_string());
                let too_old = now_ms.saturating_sub(row.first_ms) >= cfg.max_age_ms;
                // A message may carry a lower limit of its own (heartbeat alerts).
                let own_limit = row
                    .outbound
                    .max_attempts
                    .filter(|m| *m < cfg.max_attempts)
                    .map(|m| m.max(1));
                let limit = own_limit.unwrap_or(cfg.max_attempts);
                if row.attempts >= limit || too_old {
                    let reason = if too_old {
                        format!(
                            "undelivered after {} s (queue.maxAgeMs)",
                            cfg.max_age_ms / 1000
                        )
                    } else if own_limit.is_some() {
                        format!("{} attempts failed (the message's own limit)", row.attempts)
                    } else {
                        format!("{} attempts failed (queue.maxAttempts)", row.attempts)
                    };
                    q.take(seq)?;
                    q.bury(cfg, seq, row, reason, now_ms)?;
                    Disposition::Dead
                } else {
                    let at =
                        now_ms.saturating_add(backoff_ms(cfg, row.attempts, retry_after_s, jitter));
                    let was_head = q
                        .due
                        .remove((row.next_at_ms, seq))
                        .map_err(store_error("write due"))?
                        .is_some();
                    if was_head {
                        q.due
                            .insert((at, seq), row.chat_key.as_str())
                            .map_err(store_error("write due"))?;
                    }
                    row.next_at_ms = at;
                    let bytes = serde_json::to_vec(&row).map_err(store_error("encode"))?;
                    q.outq
                        .insert(seq, bytes.as_slice())
                        .map_err(store_error("write outq"))?;
                    Disposition::Retry { at_ms: at }
                }
            }
        })
    })
}

/// Dead-letters `seq` at once (a permanent platform error: bot blocked, chat
/// gone). Returns false if it was not queued.
pub fn fail_permanent(
    store: &Store,
    cfg: &QueueConfig,
    seq: u64,
    now_ms: u64,
    err: &str,
) -> Result<bool, QueueError> {
    write_tables(store, |q| {
        Ok(match q.take(seq)? {
            None => false,
            Some(Taken::Row(mut row)) => {
                row.attempts = row.attempts.saturating_add(1);
                row.last_error = Some(crate::util::truncate(err, MAX_ERROR_BYTES).to_string());
                q.bury(
                    cfg,
                    seq,
                    row,
                    format!(
                        "permanent error: {}",
                        crate::util::truncate(err, MAX_ERROR_BYTES)
                    ),
                    now_ms,
                )?;
                true
            }
            Some(t) => {
                q.bury_taken(cfg, seq, t, "unreadable", now_ms)?;
                true
            }
        })
    })
}

impl QueueTables<'_> {
    /// Appends `out` behind its chat's queue. `None` for an empty text
    /// (nothing to deliver); otherwise the sequence number and whether the
    /// channel is now over its bound (kept anyway).
    pub(super) fn enqueue(
        &mut self,
        cfg: &QueueConfig,
        out: &Outbound,
        now_ms: u64,
    ) -> Result<Option<(u64, bool)>, QueueError> {
        if out.channel.is_empty() || out.chat_id.is_empty() || out.channel.contains(':') {
            return Err(QueueError::Invalid(format!(
                "an outgoing message needs a channel (without ':') and a chat id (got {:?}/{:?})",
                out.channel, out.chat_id
            )));
        }
        if out.text.is_empty() {
            log::debug!("empty reply chunk for {} not queued", chat_key(out));
            return Ok(None);
        }
        let ch = out.channel.as_str();
        let bytes = serde_json::to_vec(out)
            .map_err(store_error("encode"))?
            .len() as u64;
        let entries = self.meta_get(&k_entries(ch))?;
        let total = self.meta_get(&k_bytes(ch))?;
        let over = entries + 1 > cfg.max_entries || total + bytes > cfg.max_bytes;
        if over {
            self.meta_add(&k_over(ch), 1)?;
            log::warn!(
                "outgoing queue for {ch} is over its bound ({} messages, {} bytes); reply kept",
                entries + 1,
                total + bytes
            );
        }
        let seq = self.meta_get(K_SEQ)?.max(1);
        self.meta_set(K_SEQ, seq + 1)?;
        let row = QueuedRow {
            outbound: out.clone(),
            chat_key: chat_key(out),
            attempts: 0,
            next_at_ms: now_ms,
            first_ms: now_ms,
            last_error: None,
            bytes,
        };
        let enc = serde_json::to_vec(&row).map_err(store_error("encode"))?;
        self.outq
            .insert(seq, enc.as_slice())
            .map_err(store_error("write outq"))?;
        let ck = row.chat_key.as_str();
        let was_empty = self.head(ck)?.is_none();
        self.chats
            .insert((ck, seq), bytes)
            .map_err(store_error("write chats"))?;
        if was_empty {
            self.due
                .insert((now_ms, seq), ck)
                .map_err(store_error("write due"))?;
        }
        self.meta_add(&k_entries(ch), 1)?;
        self.meta_add(&k_bytes(ch), bytes)?;
        Ok(Some((seq, over)))
    }

    /// Lowest queued sequence number of a chat.
    fn head(&self, ck: &str) -> Result<Option<u64>, QueueError> {
        Ok(self
            .chats
            .range((ck, 0u64)..=(ck, u64::MAX))
            .map_err(store_error("read chats"))?
            .next()
            .transpose()
            .map_err(store_error("read chats"))?
            .map(|(k, _)| k.value().1))
    }

    /// After `removed` left chat `ck`: schedules the new head if `removed` was
    /// the head.
    fn promote(&mut self, ck: &str, removed: u64) -> Result<(), QueueError> {
        let Some(h) = self.head(ck)? else {
            return Ok(());
        };
        if h < removed {
            return Ok(()); // a later message went; the head is unchanged
        }
        let at = match self.outq.get(h).map_err(store_error("read outq"))? {
            Some(v) => decode(v.value()).map(|r| r.next_at_ms).unwrap_or(0),
            None => 0,
        };
        self.due
            .insert((at, h), ck)
            .map_err(store_error("write due"))?;
        Ok(())
    }

    /// Removes `seq` from `outq` and its indexes, fixing counters and the
    /// chat's head. `None` if it was not queued.
    pub(super) fn take(&mut self, seq: u64) -> Result<Option<Taken>, QueueError> {
        let Some(raw) = self
            .outq
            .remove(seq)
            .map_err(store_error("write outq"))?
            .map(|v| v.value().to_vec())
        else {
            return Ok(None);
        };
        let (ck, bytes, taken) = match decode(&raw) {
            Ok(row) => {
                self.due
                    .remove((row.next_at_ms, seq))
                    .map_err(store_error("write due"))?;
                (Some(row.chat_key.clone()), row.bytes, Taken::Row(row))
            }
            Err(err) => {
                // Without the row, find its chat, size and schedule entry by scanning.
                let mut found = None;
                for r in self.chats.iter().map_err(store_error("read chats"))? {
                    let (k, v) = r.map_err(store_error("read chats"))?;
                    if k.value().1 == seq {
                        found = Some((k.value().0.to_string(), v.value()));
                        break;
                    }
                }
                self.due
                    .retain(|(_, s), _| s != seq)
                    .map_err(store_error("write due"))?;
                let (ck, bytes) = match found {
                    Some((ck, b)) => (Some(ck), b),
                    None => (None, 0),
                };
                (
                    ck.clone(),
                    bytes,
                    Taken::Unreadable {
                        chat_key: ck,
                        raw,
                        err,
                    },
                )
            }
        };
        if let Some(ck) = &ck {
            self.chats
                .remove((ck.as_str(), seq))
                .map_err(store_error("write chats"))?;
            let ch = channel_of(ck);
            self.meta_sub(&k_entries(ch), 1)?;
            self.meta_sub(&k_bytes(ch), bytes)?;
            self.promote(ck, seq)?;
        }
        Ok(Some(taken))
    }

    /// Stores a removed row as a dead letter, keeping at most `queue.maxDead`
    /// (the oldest beyond that is dropped and counted as `dead_overflow`).
    fn bury(
        &mut self,
        cfg: &QueueConfig,
        seq: u64,
        row: QueuedRow,
        reason: String,
        now_ms: u64,
    ) -> Result<(), QueueError> {
        log::warn!(
            "outgoing message #{seq} to {} dead-lettered: {reason}",
            row.chat_key
        );
        let dead = DeadRow {
            row,
            reason,
            dead_ms: now_ms,
        };
        let enc = serde_json::to_vec(&dead).map_err(store_error("encode"))?;
        let existed = self
            .dead
            .insert(seq, enc.as_slice())
            .map_err(store_error("write dead"))?
            .is_some();
        let mut n = self.meta_get(K_DEAD)?;
        if !existed {
            n += 1;
        }
        while n > cfg.max_dead.max(1) {
            let Some(old) = self
                .dead
                .pop_first()
                .map_err(store_error("write dead"))?
                .map(|(_, v)| v.value().to_vec())
            else {
                break;
            };
            let ch = DeadRow::decode(&old)
                .map(|d| d.row.outbound.channel)
                .unwrap_or_default();
            self.meta_add(&k_drop(&ch, "dead_overflow"), 1)?;
            n -= 1;
        }
        self.meta_set(K_DEAD, n)
    }

    /// Dead-letters what [`QueueTables::take`] returned; an unreadable row keeps its
    /// raw bytes (as `last_error`) and an empty text, so it cannot be retried.
    fn bury_taken(
        &mut self,
        cfg: &QueueConfig,
        seq: u64,
        t: Taken,
        why: &str,
        now_ms: u64,
    ) -> Result<(), QueueError> {
        match t {
            Taken::Row(row) => self.bury(cfg, seq, row, why.to_string(), now_ms),
            Taken::Unreadable { chat_key, raw, err } => {
                let ck = chat_key.unwrap_or_default();
                let mut parts = ck.splitn(3, ':');
                let outbound = Outbound {
                    channel: parts.next().unwrap_or("").to_string(),
                    account: parts.next().unwrap_or("").to_string(),
                    chat_id: parts.next().unwrap_or("").to_string(),
                    text: String::new(),
                    reply_to: None,
                    thread_id: None,
                    max_attempts: None,
                    edit: None,
                };
                let raw = String::from_utf8_lossy(&raw);
                let row = QueuedRow {
                    outbound,
                    chat_key: ck,
                    attempts: 0,
                    next_at_ms: 0,
                    first_ms: 0,
                    last_error: Some(crate::util::truncate(&raw, MAX_ERROR_BYTES).to_string()),
                    bytes: 0,
                };
                self.bury(cfg, seq, row, format!("{why}: {err}"), now_ms)
            }
        }
    }
}
