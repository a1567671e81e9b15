//! Admin and reporting over the delivery queue: `pinch queue list|retry|drop`
//! (list, dead letters, retry a dead letter, drop a message), the `/status`
//! numbers, and the counters of inbound messages dropped on purpose.

use super::outq::{channel_of, decode, Taken};
use super::{
    k_drop, meta_prefixed, store_error, write_tables, ChannelDepth, DeadMsg, DeadRow, Dropped,
    QueueConfig, QueueError, QueueStats, QueuedMsg, DEAD, INBOX_PENDING, K_DEAD, META, OUTQ,
};
use crate::store::Store;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

/// Queued messages in sequence order, at most `limit` (unreadable rows skipped).
pub fn list(store: &Store, limit: usize) -> Result<Vec<QueuedMsg>, QueueError> {
    let tx = store.db.begin_read().map_err(store_error("begin"))?;
    let t = tx.open_table(OUTQ).map_err(store_error("open"))?;
    let mut out = Vec::new();
    for row in t.iter().map_err(store_error("read outq"))? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(store_error("read outq"))?;
        match decode(v.value()) {
            Ok(row) => out.push(QueuedMsg {
                seq: k.value(),
                row,
            }),
            Err(err) => log::warn!(
                "outgoing message #{}: unreadable ({err}); skipped",
                k.value()
            ),
        }
    }
    Ok(out)
}

/// Dead letters, oldest first, at most `limit`.
pub fn dead_letters(store: &Store, limit: usize) -> Result<Vec<DeadMsg>, QueueError> {
    let tx = store.db.begin_read().map_err(store_error("begin"))?;
    let t = tx.open_table(DEAD).map_err(store_error("open"))?;
    let mut out = Vec::new();
    for row in t.iter().map_err(store_error("read dead"))? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(store_error("read dead"))?;
        match DeadRow::decode(v.value()) {
            Ok(dead) => out.push(DeadMsg {
                seq: k.value(),
                dead,
            }),
            Err(err) => log::warn!("dead letter #{}: unreadable ({err}); skipped", k.value()),
        }
    }
    Ok(out)
}

/// Moves a dead letter back into the queue with a fresh attempt count. It
/// gets a new sequence number (returned): it goes behind messages already
/// queued for its chat, so a head in flight is never overtaken.
pub fn retry_dead(
    store: &Store,
    cfg: &QueueConfig,
    seq: u64,
    now_ms: u64,
) -> Result<u64, QueueError> {
    write_tables(store, |q| {
        let raw = q
            .dead
            .get(seq)
            .map_err(store_error("read dead"))?
            .map(|v| v.value().to_vec())
            .ok_or(QueueError::NotFound(seq))?;
        let dead = DeadRow::decode(&raw).map_err(|err| {
            QueueError::Invalid(format!(
                "dead letter #{seq} is unreadable ({err}); drop it instead"
            ))
        })?;
        let (new_seq, _) = q.enqueue(cfg, &dead.row.outbound, now_ms)?.ok_or_else(|| {
            QueueError::Invalid(format!(
                "dead letter #{seq} has no text to send; drop it instead"
            ))
        })?;
        q.dead.remove(seq).map_err(store_error("write dead"))?;
        q.meta_sub(K_DEAD, 1)?;
        Ok(new_seq)
    })
}

/// Removes `seq` from the queue or from the dead letters (counted as a
/// `dropped_by_admin` drop).
pub fn drop_msg(store: &Store, seq: u64) -> Result<Dropped, QueueError> {
    write_tables(store, |q| {
        let (what, ch) = match q.take(seq)? {
            Some(Taken::Row(row)) => (Dropped::Queued, row.outbound.channel),
            Some(Taken::Unreadable { chat_key, .. }) => (
                Dropped::Queued,
                chat_key
                    .as_deref()
                    .map(channel_of)
                    .unwrap_or("")
                    .to_string(),
            ),
            None => {
                let raw = q
                    .dead
                    .remove(seq)
                    .map_err(store_error("write dead"))?
                    .map(|v| v.value().to_vec())
                    .ok_or(QueueError::NotFound(seq))?;
                q.meta_sub(K_DEAD, 1)?;
                let ch = DeadRow::decode(&raw)
                    .map(|d| d.row.outbound.channel)
                    .unwrap_or_default();
                (Dropped::Dead, ch)
            }
        };
        q.meta_add(&k_drop(&ch, "dropped_by_admin"), 1)?;
        Ok(what)
    })
}

/// Depth, bytes, oldest age, dead letters and counters.
pub fn stats(store: &Store, now_ms: u64) -> Result<QueueStats, QueueError> {
    let tx = store.db.begin_read().map_err(store_error("begin"))?;
    let meta = tx.open_table(META).map_err(store_error("open"))?;
    let mut s = QueueStats::default();
    for (ch, n) in meta_prefixed(&meta, "n:")? {
        s.depth += n;
        s.channels
            .entry(ch)
            .or_insert_with(ChannelDepth::default)
            .entries = n;
    }
    for (ch, b) in meta_prefixed(&meta, "b:")? {
        s.bytes += b;
        s.channels
            .entry(ch)
            .or_insert_with(ChannelDepth::default)
            .bytes = b;
    }
    s.dropped = meta_prefixed(&meta, "drop:")?.into_iter().collect();
    s.over_limit = meta_prefixed(&meta, "over:")?.into_iter().collect();
    s.dead = meta
        .get(K_DEAD)
        .map_err(store_error("read meta"))?
        .map_or(0, |v| v.value());
    let outq = tx.open_table(OUTQ).map_err(store_error("open"))?;
    for row in outq.iter().map_err(store_error("read outq"))?.take(16) {
        let (_, v) = row.map_err(store_error("read outq"))?;
        if let Ok(r) = decode(v.value()) {
            s.oldest_age_ms = Some(now_ms.saturating_sub(r.first_ms));
            break;
        }
    }
    let pending = tx.open_table(INBOX_PENDING).map_err(store_error("open"))?;
    s.inbound_pending = pending.len().map_err(store_error("read pending"))?;
    Ok(s)
}

/// Counts an inbound message dropped on purpose (ACL verdict, corrupt row):
/// never silent. Returns the new count for `channel:reason`.
pub fn count_drop(store: &Store, channel: &str, reason: &str) -> Result<u64, QueueError> {
    let tx = store.db.begin_write().map_err(store_error("begin"))?;
    let n = count_drop_in(&tx, channel, reason, 1)?;
    tx.commit().map_err(store_error("commit"))?;
    Ok(n)
}

/// [`count_drop`] by `n` inside a caller's transaction (batch a poll's drops
/// with its offset instead of paying a commit per dropped message).
pub fn count_drop_in(
    tx: &WriteTransaction,
    channel: &str,
    reason: &str,
    n: u64,
) -> Result<u64, QueueError> {
    let mut meta = tx.open_table(META).map_err(store_error("open"))?;
    let k = k_drop(channel, reason);
    let v = meta
        .get(k.as_str())
        .map_err(store_error("read meta"))?
        .map_or(0, |v| v.value())
        .saturating_add(n);
    meta.insert(k.as_str(), v)
        .map_err(store_error("write meta"))?;
    Ok(v)
}

/// Removes the given dead letters past their retention (counted as
/// `expired` drops), in one transaction. Queued messages are never touched:
/// only seqs found among the dead letters are removed. Returns how many.
pub fn expire_dead(store: &Store, seqs: &[u64]) -> Result<u64, QueueError> {
    write_tables(store, |q| {
        let mut n = 0u64;
        for seq in seqs {
            let raw = q
                .dead
                .remove(*seq)
                .map_err(store_error("write dead"))?
                .map(|v| v.value().to_vec());
            let Some(raw) = raw else { continue };
            q.meta_sub(K_DEAD, 1)?;
            let ch = DeadRow::decode(&raw)
                .map(|d| d.row.outbound.channel)
                .unwrap_or_default();
            q.meta_add(&k_drop(&ch, "expired"), 1)?;
            n += 1;
        }
        Ok(n)
    })
}
