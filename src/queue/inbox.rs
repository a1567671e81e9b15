//! The inbound side: a persisted dedup window that doubles as the record of
//! messages accepted but not yet answered.
//!
//! Accepting a message checks the window and records it as pending in one
//! transaction; `commit_reply` marks it done. Done entries are pruned oldest
//! first once a channel holds more than `dedupKeep` of them or they are older
//! than `dedupMaxAgeMs`; pending entries are never pruned. A done entry drops
//! its text and attachments (the dedup id is all it is kept for), so the
//! window costs a few hundred bytes per message.

use super::{
    checkpoint, k_drop, k_inbox, meta_prefixed, store_error, Accept, QueueConfig, QueueError,
    QueueTables,
};
use super::{INBOX, INBOX_PENDING, META};
use crate::channel::envelope::Envelope;
use crate::store::Store;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

/// Longest inbound id kept; longer ones become a prefix plus a hash.
const MAX_ID_BYTES: usize = 200;
/// Done entries pruned on each accept when a channel is over `dedupKeep`.
const PRUNE_ON_ACCEPT: usize = 4;
/// Entries examined per channel per prune beyond those removed (pending
/// ones are skipped over).
const PRUNE_SCAN_SLACK: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InboxState {
    Pending,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InboxRow {
    envelope: Envelope,
    state: InboxState,
    received_ms: u64,
    session: String,
    #[serde(default)]
    done_ms: Option<u64>,
}

/// The dedup id of an inbound message within its channel:
/// `account:chat_id:platform_id` (platform ids are unique per chat only).
pub fn inbound_id(env: &Envelope) -> String {
    let id = format!("{}:{}:{}", env.account, env.chat_id, env.platform_id);
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}#{h:016x}", crate::util::truncate(&id, 64).to_string())
}

/// Records `env` as pending unless its id is already in the window.
pub fn accept_inbound(
    store: &Store,
    cfg: &QueueConfig,
    env: &Envelope,
    session: &str,
    now_ms: u64,
) -> Result<Accept, QueueError> {
    let tx = store.db.begin_write().map_err(store_error("begin"))?;
    let a = accept_inbound_in(&tx, cfg, env, session, now_ms)?;
    if a == Accept::Duplicate {
        tx.abort().map_err(store_error("abort"))?; // nothing was written
        return Ok(a);
    }
    checkpoint()?;
    tx.commit().map_err(store_error("commit"))?;
    Ok(a)
}

/// [`accept_inbound`] inside a caller's transaction (e.g. with the adapter's
/// offset, so acknowledging a batch and recording it are one commit).
pub fn accept_inbound_in(
    tx: &WriteTransaction,
    cfg: &QueueConfig,
    env: &Envelope,
    session: &str,
    now_ms: u64,
) -> Result<Accept, QueueError> {
    if env.channel.is_empty() || env.platform_id.is_empty() {
        return Err(QueueError::Invalid(
            "an inbound message needs a channel and a platform id".into(),
        ));
    }
    let mut q = QueueTables::open(tx)?;
    let ch = env.channel.as_str();
    let id = inbound_id(env);
    if q.inbox
        .get((ch, id.as_str()))
        .map_err(store_error("read inbox"))?
        .is_some()
    {
        return Ok(Accept::Duplicate);
    }
    let row = InboxRow {
        envelope: env.clone(),
        state: InboxState::Pending,
        received_ms: now_ms,
        session: session.to_string(),
        done_ms: None,
    };
    let bytes = serde_json::to_vec(&row).map_err(store_error("encode inbox row"))?;
    q.inbox
        .insert((ch, id.as_str()), bytes.as_slice())
        .map_err(store_error("write inbox"))?;
    q.inbox_age
        .insert((ch, now_ms, id.as_str()), ())
        .map_err(store_error("write inbox"))?;
    q.pending
        .insert((ch, id.as_str()), now_ms)
        .map_err(store_error("write inbox"))?;
    q.meta_add(&k_inbox(ch), 1)?;
    q.prune_channel(cfg, ch, now_ms, PRUNE_ON_ACCEPT)?;
    Ok(Accept::New)
}

/// Messages accepted but never answered, oldest first: after a restart the
/// reactor runs them again (the model may run a second time for a message
/// whose run was cut by a crash; only one reply can ever be committed).
/// Unreadable rows are released from pending and counted as `corrupt` drops.
pub fn pending_inbound(store: &Store, limit: usize) -> Result<Vec<(Envelope, String)>, QueueError> {
    let mut keys: Vec<(u64, String, String)> = Vec::new();
    let mut out = Vec::new();
    let mut broken: Vec<(String, String)> = Vec::new();
    {
        let tx = store.db.begin_read().map_err(store_error("begin"))?;
        let pending = tx.open_table(INBOX_PENDING).map_err(store_error("open"))?;
        for row in pending.iter().map_err(store_error("read pending"))? {
            let (k, v) = row.map_err(store_error("read pending"))?;
            let (ch, id) = k.value();
            keys.push((v.value(), ch.to_string(), id.to_string()));
        }
        crate::sort::sort(&mut keys);
        keys.truncate(limit);
        let inbox = tx.open_table(INBOX).map_err(store_error("open"))?;
        for (_, ch, id) in keys {
            let got = inbox
                .get((ch.as_str(), id.as_str()))
                .map_err(store_error("read inbox"))?;
            match got.map(|v| serde_json::from_slice::<InboxRow>(v.value())) {
                Some(Ok(r)) => out.push((r.envelope, r.session)),
                Some(Err(err)) => {
                    log::error!("inbound {ch}/{id}: unreadable row ({err}); not re-run");
                    broken.push((ch, id));
                }
                None => {
                    log::error!("inbound {ch}/{id}: pending without a row; not re-run");
                    broken.push((ch, id));
                }
            }
        }
    }
    if !broken.is_empty() {
        let tx = store.db.begin_write().map_err(store_error("begin"))?;
        {
            let mut q = QueueTables::open(&tx)?;
            for (ch, id) in &broken {
                q.pending
                    .remove((ch.as_str(), id.as_str()))
                    .map_err(store_error("write pending"))?;
                q.meta_add(&k_drop(ch, "corrupt"), 1)?;
            }
        }
        tx.commit().map_err(store_error("commit"))?;
    }
    Ok(out)
}

/// Prunes answered entries over the count or age bound, a batch per channel.
/// Returns how many were removed; call it periodically (the reactor's tick).
pub fn prune_inbox(store: &Store, cfg: &QueueConfig, now_ms: u64) -> Result<usize, QueueError> {
    let channels: Vec<String> = {
        let tx = store.db.begin_read().map_err(store_error("begin"))?;
        let meta = tx.open_table(META).map_err(store_error("open"))?;
        meta_prefixed(&meta, "inbox:")?
            .into_iter()
            .map(|(ch, _)| ch)
            .collect()
    };
    let tx = store.db.begin_write().map_err(store_error("begin"))?;
    let mut removed = 0;
    {
        let mut q = QueueTables::open(&tx)?;
        for ch in &channels {
            removed += q.prune_channel(cfg, ch, now_ms, 256)?;
        }
    }
    if removed == 0 {
        tx.abort().map_err(store_error("abort"))?;
        return Ok(0);
    }
    checkpoint()?;
    tx.commit().map_err(store_error("commit"))?;
    Ok(removed)
}

impl QueueTables<'_> {
    /// Removes up to `max` done entries of `ch`, oldest first, while the
    /// channel holds more than `dedupKeep` or the oldest is past the age bound.
    fn prune_channel(
        &mut self,
        cfg: &QueueConfig,
        ch: &str,
        now_ms: u64,
        max: usize,
    ) -> Result<usize, QueueError> {
        let mut count = self.meta_get(&k_inbox(ch))?;
        let over_count = count > cfg.dedup_keep;
        let first_old = self
            .inbox_age
            .range((ch, 0u64, "")..(format!("{ch}\0").as_str(), 0u64, ""))
            .map_err(store_error("read inbox"))?
            .next()
            .transpose()
            .map_err(store_error("read inbox"))?
            .map(|(k, _)| k.value().1);
        let any_old = first_old.is_some_and(|t| now_ms.saturating_sub(t) >= cfg.dedup_max_age_ms);
        if !over_count && !any_old {
            return Ok(0);
        }
        let mut oldest: Vec<(u64, String)> = Vec::new();
        {
            let upper = format!("{ch}\0");
            for row in self
                .inbox_age
                .range((ch, 0u64, "")..(upper.as_str(), 0u64, ""))
                .map_err(store_error("read inbox"))?
                .take(max + PRUNE_SCAN_SLACK)
            {
                let (k, _) = row.map_err(store_error("read inbox"))?;
                let (_, t, id) = k.value();
                oldest.push((t, id.to_string()));
            }
        }
        let mut removed = 0;
        for (t, id) in oldest {
            if removed >= max {
                break;
            }
            let old = now_ms.saturating_sub(t) >= cfg.dedup_max_age_ms;
            if count <= cfg.dedup_keep && !old {
                break;
            }
            if self
                .pending
                .get((ch, id.as_str()))
                .map_err(store_error("read pending"))?
                .is_some()
            {
                continue;
            }
            self.inbox
                .remove((ch, id.as_str()))
                .map_err(store_error("prune inbox"))?;
            self.inbox_age
                .remove((ch, t, id.as_str()))
                .map_err(store_error("prune inbox"))?;
            count = count.saturating_sub(1);
            removed += 1;
        }
        self.meta_set(&k_inbox(ch), count)?;
        Ok(removed)
    }

    /// Marks an accepted inbound message done (its reply is being committed).
    pub(super) fn mark_done(&mut self, ch: &str, id: &str, now_ms: u64) -> Result<(), QueueError> {
        let pending = self
            .pending
            .remove((ch, id))
            .map_err(store_error("write pending"))?
            .is_some();
        let row: Option<Vec<u8>> = self
            .inbox
            .get((ch, id))
            .map_err(store_error("read inbox"))?
            .map(|v| v.value().to_vec());
        if !pending {
            let (channel, id) = (ch.to_string(), id.to_string());
            return Err(match row {
                Some(_) => QueueError::AlreadyDone { channel, id },
                None => QueueError::UnknownInbound { channel, id },
            });
        }
        match row.map(|b| serde_json::from_slice::<InboxRow>(&b)) {
            Some(Ok(mut r)) => {
                r.state = InboxState::Done;
                r.done_ms = Some(now_ms);
                // Only the id matters from now on: keep the window small.
                r.envelope.text.clear();
                r.envelope.attachments.clear();
                let bytes = serde_json::to_vec(&r).map_err(store_error("encode inbox row"))?;
                self.inbox
                    .insert((ch, id), bytes.as_slice())
                    .map_err(store_error("write inbox"))?;
            }
            // The row's presence is what dedup needs; pending is what counts.
            Some(Err(err)) => log::warn!("inbound {ch}/{id}: unreadable row ({err}); marked done"),
            None => log::warn!("inbound {ch}/{id}: pending without a row; marked done"),
        }
        Ok(())
    }
}
