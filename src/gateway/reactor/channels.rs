//! Channels inside the reactor: what happens to an inbound message and to a
//! queued reply. Runs on the reactor thread; adapters' I/O is elsewhere.
//!
//! Inbound: each batch from an adapter is checked against the channel's
//! access policy; accepted messages go into the durable inbox together with
//! the adapter's new cursor in ONE transaction, and only then is the adapter
//! told to move on. Unknown DM senders get a pairing code instead of a run.
//! Drops are counted, never silent. An accepted message's run ends in
//! `deliver`, which commits the transcript, marks the inbound done and
//! queues the reply chunks in one transaction.
//!
//! Outbound: the pump hands each chat's oldest due message to the adapter's
//! send thread (one in flight per chat keeps order) and records the outcome:
//! delivered, retry with backoff (honouring retry-after), or dead letter.

use super::{Origin, Pending, Reactor};
use crate::agent::RunEvent;
use crate::api_error::{ApiError, ErrorCode};
use crate::api_wire::{PairingApproval, PairingRequest, QueueEntry};
use crate::channel::adapter::{self, AdapterEvent, SendJob, SendResult};
use crate::channel::progress::{Action, ChatSettings, Progress, RunKey};
use crate::channel::{
    self, registry, AccessConfig, ChatKind, Envelope, PairOutcome, Pairing, ReplyTarget, Verdict,
};
use crate::queue;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Channel state the reactor owns.
#[derive(Default)]
pub struct Runtime {
    adapters: HashMap<String, adapter::Handle>,
    access: HashMap<String, AccessConfig>,
    pairing: HashMap<String, Pairing>,
    health: HashMap<String, Value>,
    /// Queue sequence numbers handed to a send thread and not yet answered.
    inflight: HashSet<u64>,
    /// Inbound ids (channel, id) with a run in flight.
    pub(super) running: HashSet<(String, String)>,
    /// Channels refusing new runs because their queue is full.
    backpressure: HashMap<String, String>,
    /// Typing and drafts of the runs in flight.
    progress: Progress,
}

/// The channel state key of the adapter's cursor.
const CURSOR: &str = "cursor";
/// Where Telegram kept its offset before the cursor: still read.
const LEGACY_OFFSET: &str = "offset";

/// The cursor committed with the channel's last inbound batch.
fn stored_cursor(store: &crate::store::Store, channel: &str) -> Result<Option<String>, String> {
    let raw = match queue::channel_state_get(store, channel, CURSOR)? {
        Some(c) => Some(c),
        None => queue::channel_state_get(store, channel, LEGACY_OFFSET)?,
    };
    Ok(raw.and_then(|b| String::from_utf8(b).ok()))
}

/// The adapter's sink: its events go to the reactor, tagged with the channel.
fn sink(channel: &str, tx: tokio::sync::mpsc::Sender<crate::gateway::ToReactor>) -> adapter::Sink {
    let channel = channel.to_string();
    std::sync::Arc::new(move |event| {
        tx.blocking_send(crate::gateway::ToReactor::Adapter {
            channel: channel.clone(),
            event,
        })
        .is_ok()
    })
}

impl Reactor {
    /// Starts the adapter of every enabled channel (through the registry);
    /// a channel this build has no adapter for is an error.
    pub fn start_channels(
        &mut self,
        to_reactor: tokio::sync::mpsc::Sender<crate::gateway::ToReactor>,
    ) -> Result<(), String> {
        let cfg = self.cfg.clone();
        for (name, ch) in cfg.channels.iter().filter(|(_, c)| c.enabled) {
            let entry = registry::find(name)
                .ok_or_else(|| format!("channels.{name}: {}", registry::unsupported(name)))?;
            let access =
                AccessConfig::from_channel(ch).map_err(|e| format!("channels.{name}: {e}"))?;
            self.channels.access.insert(name.clone(), access);
            let pairing = queue::channel_state_get(&self.store, name, "pairing")?
                .and_then(|b| serde_json::from_slice::<Pairing>(&b).ok())
                .unwrap_or_default();
            self.channels.pairing.insert(name.clone(), pairing);
            let start = adapter::Start {
                channel: name.clone(),
                account: "default".into(),
                config: ch.clone(),
                route: crate::routes::route_for(&cfg, crate::routes::Owner::Channel(name))?,
                cursor: stored_cursor(&self.store, name)?,
                sink: sink(name, to_reactor.clone()),
            };
            let handle = (entry.start)(start)?;
            self.channels.adapters.insert(name.clone(), handle);
            self.channels
                .health
                .insert(name.clone(), json!({"state": "starting"}));
        }
        // Messages accepted before a crash or restart, not yet answered.
        self.resume_inbound();
        self.pump_delivery();
        Ok(())
    }

    /// Tells every adapter to stop and closes its send queue (its send
    /// thread ends when the queue is gone).
    pub fn stop_channels(&mut self) {
        for h in self.channels.adapters.values() {
            h.stop();
        }
        self.channels.adapters.clear();
    }

    pub fn on_adapter(&mut self, channel: &str, ev: AdapterEvent) {
        match ev {
            AdapterEvent::Health(h) => {
                self.channels.health.insert(channel.to_string(), h);
            }
            AdapterEvent::Sent { seq, result } => self.on_sent(seq, result),
            AdapterEvent::Inbound {
                envelopes,
                cursor,
                ack,
            } => {
                let ok = self.on_inbound(channel, envelopes, cursor);
                let _ = ack.try_send(ok);
            }
        }
    }

    /// Commits a batch: accepted messages into the inbox and the cursor, in
    /// one transaction. Returns false if nothing could be committed.
    fn on_inbound(
        &mut self,
        channel: &str,
        envelopes: Vec<Envelope>,
        cursor: Option<String>,
    ) -> bool {
        let now = crate::util::now_ms();
        let mut accepted: Vec<(Envelope, String)> = Vec::new();
        let mut pairing_replies: Vec<(Envelope, String)> = Vec::new();
        let mut drops: Vec<String> = Vec::new();
        let Some(access) = self.channels.access.get(channel).cloned() else {
            return false;
        };
        for env in envelopes {
            let verdict = {
                let pairing = self.channels.pairing.get(channel);
                let approved = |s: &str| pairing.map(|p| p.is_approved(s)).unwrap_or(false);
                channel::decide(&access, &env, &approved)
            };
            match verdict {
                Verdict::Accept => {
                    let session = self.channel_session(&env);
                    accepted.push((env, session));
                }
                Verdict::Pair => {
                    let mut rng = crate::util::random_u64;
                    let outcome = self
                        .channels
                        .pairing
                        .entry(channel.to_string())
                        .or_default()
                        .request(&env.sender_id, &env.sender_name, now, &mut rng);
                    match outcome {
                        PairOutcome::Issue { code } => pairing_replies.push((env, code)),
                        PairOutcome::AlreadyApproved => {
                            let session = self.channel_session(&env);
                            accepted.push((env, session));
                        }
                        PairOutcome::AlreadyPending => drops.push("pairing-pending".into()),
                        PairOutcome::TooManyPending => drops.push("pairing-limit".into()),
                    }
                }
                Verdict::Drop(reason) => drops.push(format!("{reason:?}")),
            }
        }
        let tx = match self.store.db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                log::error!("{channel}: cannot commit inbound batch: {e}");
                return false;
            }
        };
        let mut new_ones = Vec::new();
        for (env, session) in accepted {
            match queue::accept_inbound_in(&tx, &self.cfg.queue, &env, &session, now) {
                Ok(queue::Accept::New) => new_ones.push((env, session)),
                Ok(queue::Accept::Duplicate) => {
                    log::debug!("{channel}: duplicate message {} ignored", env.platform_id)
                }
                Err(e) => {
                    log::error!("{channel}: cannot accept message: {e}");
                    return false;
                }
            }
        }
        for reason in &drops {
            if let Err(e) = queue::count_drop_in(&tx, channel, reason, 1) {
                log::warn!("{channel}: cannot count drop: {e}");
            }
        }
        if let Some(c) = cursor {
            if let Err(e) = queue::channel_state_put_in(&tx, channel, CURSOR, c.as_bytes()) {
                log::error!("{channel}: cannot store the cursor: {e}");
                return false;
            }
        }
        if let Some(p) = self.channels.pairing.get(channel) {
            if let Ok(bytes) = serde_json::to_vec(p) {
                let _ = queue::channel_state_put_in(&tx, channel, "pairing", &bytes);
            }
        }
        if let Err(e) = tx.commit() {
            log::error!("{channel}: cannot commit inbound batch: {e}");
            return false;
        }
        for (env, code) in pairing_replies {
            let text = format!(
                "Hi! This assistant only talks to people its owner approved. Your pairing code is {code} (valid for 1 hour). Ask the owner to run: pinch pairing approve {channel} {code}"
            );
            let to = ReplyTarget::from_envelope(&env, false);
            if let Err(e) = self.deliver(&to.chat(), &to, &[], (0, 0), None, &text) {
                log::warn!("{channel}: cannot queue pairing code: {e}");
            }
        }
        for (mut env, session) in new_ones {
            // Answers of jobs without a target go to the owner's last chat,
            // never to someone else who wrote last.
            if env.chat_kind == ChatKind::Direct && self.is_owner(&env) {
                self.note_chat(&ReplyTarget::from_envelope(&env, false));
            }
            if self.channel_command(&mut env, &session) {
                continue;
            }
            self.start_channel_run(env, session);
        }
        true
    }

    fn start_channel_run(&mut self, env: Envelope, session: String) {
        let key = (env.channel.clone(), queue::inbound_id(&env));
        if self.channels.running.contains(&key) {
            return;
        }
        if let Err(e) = queue::can_accept(&self.store, &self.cfg.queue, &env.channel) {
            // The message stays in the inbox and runs when the queue drains.
            self.channels
                .backpressure
                .insert(env.channel.clone(), e.to_string());
            return;
        }
        self.channels.backpressure.remove(&env.channel);
        let text = if env.attachments.is_empty() {
            env.text.clone()
        } else {
            format!(
                "{}\n[{} attachment(s) not shown]",
                env.text,
                env.attachments.len()
            )
        };
        let run_id = self.new_run_id();
        // replyToMode "first" / "all": the answer quotes the message.
        let quote = self
            .cfg
            .channels
            .get(&env.channel)
            .and_then(|c| c.reply_to_mode.as_deref())
            .is_some_and(|m| m != "off");
        let target = ReplyTarget::from_envelope(&env, quote);
        let origin = Origin::Channel {
            channel: env.channel.clone(),
            inbound: key.1.clone(),
            target: target.clone(),
        };
        let pending = Pending {
            origin,
            text,
            run_id,
            run: run_context(&env),
        };
        match self.enqueue_run(&session, pending) {
            Ok(_) => {
                self.progress_start(&env, &key.1, target);
                self.channels.running.insert(key);
            }
            Err(e) => log::warn!(
                "{}: run not started ({e}); the message stays in the inbox",
                env.channel
            ),
        }
    }

    /// Called when a channel run ends (answer or failure).
    pub fn channel_run_done(
        &mut self,
        channel: &str,
        inbound: &str,
        session: &str,
        target: &ReplyTarget,
        turns: &[crate::store::Turn],
        usage: (u64, u64),
        text: &str,
    ) {
        self.channels
            .running
            .remove(&(channel.to_string(), inbound.to_string()));
        let draft = self.channels.progress.finish(&RunKey {
            channel: channel.to_string(),
            inbound: inbound.to_string(),
        });
        if let Err(e) = self.deliver_with(
            session,
            target,
            turns,
            usage,
            Some((channel, inbound)),
            text,
            super::DeliveryOptions {
                draft,
                ..Default::default()
            },
        ) {
            log::error!("{channel}: could not commit the reply: {e}");
        }
    }

    /// A queued channel run that could not start: it runs again from the
    /// inbox later; its progress stops until then.
    pub(super) fn channel_run_dropped(&mut self, channel: String, inbound: String) {
        let key = self.channel_progress_stop(channel, inbound);
        self.channels.running.remove(&(key.channel, key.inbound));
    }

    /// Stops a run's typing and drafts (`/stop`: the draft keeps what it shows).
    pub(super) fn channel_progress_stop(&mut self, channel: String, inbound: String) -> RunKey {
        let key = RunKey { channel, inbound };
        self.channels.progress.finish(&key);
        key
    }

    /// Keeps the typing indicator up from the message until the answer,
    /// and drafts the answer where the channel streams (`channel::progress`).
    fn progress_start(&mut self, env: &Envelope, inbound: &str, target: ReplyTarget) {
        let Some(adapter) = registry::find(&env.channel) else {
            return;
        };
        let config = self.cfg.channels.get(&env.channel);
        let (limit, _) =
            registry::text_limit(&env.channel, config.and_then(|c| c.text_chunk_limit));
        let settings = ChatSettings::new(
            &adapter.capabilities,
            config.and_then(|c| c.streaming.as_ref()),
            env.chat_kind == ChatKind::Group,
            limit,
        );
        let key = RunKey {
            channel: env.channel.clone(),
            inbound: inbound.to_string(),
        };
        let actions = self
            .channels
            .progress
            .start(key, target, settings, crate::util::now_ms());
        self.progress_send(actions);
    }

    /// A channel run's streamed text and failover restarts.
    pub(super) fn channel_progress(&mut self, channel: &str, inbound: &str, event: &RunEvent) {
        let key = RunKey {
            channel: channel.to_string(),
            inbound: inbound.to_string(),
        };
        let now = crate::util::now_ms();
        match event {
            RunEvent::Delta(text) => {
                let actions = self.channels.progress.delta(&key, text, now);
                self.progress_send(actions);
            }
            RunEvent::Restart { .. } => self.channels.progress.restart(&key),
            _ => {}
        }
    }

    /// Due typing beats and draft edits (once a second).
    pub(super) fn progress_tick(&mut self) {
        let actions = self.channels.progress.tick(crate::util::now_ms());
        self.progress_send(actions);
    }

    /// Best-effort: a full send queue drops a beat or a draft.
    fn progress_send(&mut self, actions: Vec<Action>) {
        for action in actions {
            let (channel, job) = match action {
                Action::Typing(target) => (target.channel.clone(), SendJob::Typing { target }),
                Action::Draft(out) => (out.channel.clone(), SendJob::Draft { out }),
            };
            if let Some(h) = self.channels.adapters.get(&channel) {
                let _ = h.send.try_send(job);
            }
        }
    }

    /// Re-runs messages accepted but never answered (after a restart or
    /// backpressure).
    pub fn resume_inbound(&mut self) {
        let pending = match queue::pending_inbound(&self.store, 32) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("cannot read the inbox: {e}");
                return;
            }
        };
        for (env, session) in pending {
            if self.channels.adapters.contains_key(&env.channel) {
                self.start_channel_run(env, session);
            }
        }
    }

    /// True when no channel is held back by a full queue.
    pub fn channels_idle(&self) -> bool {
        self.channels.backpressure.is_empty()
    }

    /// Hands due messages to the send threads.
    pub fn pump_delivery(&mut self) {
        if self.channels.adapters.is_empty() {
            return;
        }
        let now = crate::util::now_ms();
        let due = match queue::next_due(&self.store, now, 32, &self.channels.inflight) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("delivery: cannot read the queue: {e}");
                return;
            }
        };
        for m in due {
            let Some(h) = self.channels.adapters.get(&m.row.outbound.channel) else {
                continue;
            };
            if h.send
                .try_send(SendJob::Message {
                    seq: m.seq,
                    out: m.row.outbound.clone(),
                })
                .is_ok()
            {
                self.channels.inflight.insert(m.seq);
            }
        }
    }

    fn on_sent(&mut self, seq: u64, result: SendResult) {
        self.channels.inflight.remove(&seq);
        let now = crate::util::now_ms();
        let r = match result {
            SendResult::Delivered => queue::delivered(&self.store, seq).map(|_| ()),
            SendResult::Retry { after_s, error } => {
                log::info!("delivery of #{seq} failed ({error}); will retry");
                let mut j = |bound: u64| {
                    if bound == 0 {
                        0
                    } else {
                        crate::util::random_u64() % (bound + 1)
                    }
                };
                queue::failed(
                    &self.store,
                    &self.cfg.queue,
                    seq,
                    now,
                    &error,
                    after_s,
                    &mut j,
                )
                .map(|_| ())
            }
            SendResult::Permanent(error) => {
                log::warn!("delivery of #{seq} failed for good: {error}; moved to dead letters");
                queue::fail_permanent(&self.store, &self.cfg.queue, seq, now, &error).map(|_| ())
            }
        };
        if let Err(e) = r {
            log::error!("delivery: cannot record the outcome of #{seq}: {e}");
        }
        self.pump_delivery();
    }

    /// The `/status` section for channels and the queue.
    pub fn channels_status(&self) -> Value {
        let now = crate::util::now_ms();
        let queue = queue::stats(&self.store, now)
            .ok()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        let mut chans = serde_json::Map::new();
        for (name, h) in &self.channels.health {
            let pending = self
                .channels
                .pairing
                .get(name)
                .map(|p| p.list(now).len())
                .unwrap_or(0);
            chans.insert(name.clone(), json!({"health": h, "pairingPending": pending, "backpressure": self.channels.backpressure.get(name)}));
        }
        json!({"channels": chans, "queue": queue})
    }

    /// `pairing.*`, `queue.*` methods.
    pub(super) fn channel_call(&mut self, request: super::methods::Request) -> super::CallResult {
        let (method, params) = (request.method, &request.params);
        let err = |c: ErrorCode, m: String| Err(ApiError::new(c, m));
        let now = crate::util::now_ms();
        let ch = params
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let code = params
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_uppercase();
        let seq = params.get("seq").and_then(Value::as_u64);
        match method {
            "pairing.list" => {
                let mut out = serde_json::Map::new();
                for (name, p) in &self.channels.pairing {
                    out.insert(
                        name.clone(),
                        json!({
                            "pending": p.list(now).iter().map(PairingRequest::from).collect::<Vec<_>>(),
                            "approved": p.approved().iter().map(|(id, a)| (id, PairingApproval::from(a))).collect::<std::collections::BTreeMap<_, _>>(),
                        }),
                    );
                }
                Ok(Value::Object(out))
            }
            "pairing.approve" | "pairing.reject" => {
                let Some(p) = self.channels.pairing.get_mut(&ch) else {
                    return err(
                        ErrorCode::NotFound,
                        format!(
                            "no channel {ch:?} is running; known: {}",
                            self.channels
                                .pairing
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                };
                let r = if method == "pairing.approve" {
                    p.approve(&code, now)
                } else {
                    p.reject(&code)
                };
                match r {
                    Ok(sender) => {
                        let bytes = serde_json::to_vec(p).unwrap_or_default();
                        if let Err(e) =
                            queue::channel_state_put(&self.store, &ch, "pairing", &bytes)
                        {
                            return err(ErrorCode::Store, e);
                        }
                        Ok(
                            json!({"channel": ch, "sender": sender, "approved": method == "pairing.approve"}),
                        )
                    }
                    Err(e) => err(ErrorCode::NotFound, e),
                }
            }
            "queue.list" => {
                let q = queue::list(&self.store, 200)
                    .map_err(|e| ApiError::new(ErrorCode::Store, e.to_string()));
                let d = queue::dead_letters(&self.store, 200)
                    .map_err(|e| ApiError::new(ErrorCode::Store, e.to_string()));
                match (q, d) {
                    (Ok(q), Ok(d)) => Ok(json!({
                        "queued": q.iter().map(QueueEntry::from).collect::<Vec<_>>(),
                        "dead": d.iter().map(QueueEntry::from).collect::<Vec<_>>(),
                        "stats": queue::stats(&self.store, now).ok(),
                    })),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            "queue.retry" => match seq {
                Some(s) => queue::retry_dead(&self.store, &self.cfg.queue, s, now)
                    .map(|n| json!({"requeued": n}))
                    .map_err(|e| ApiError::new(ErrorCode::NotFound, e.to_string())),
                None => err(ErrorCode::InvalidRequest, "params.seq is required".into()),
            },
            "queue.drop" => match seq {
                Some(s) => queue::drop_msg(&self.store, s)
                    .map(|d| json!({"dropped": format!("{d:?}")}))
                    .map_err(|e| ApiError::new(ErrorCode::NotFound, e.to_string())),
                None => err(ErrorCode::InvalidRequest, "params.seq is required".into()),
            },
            other => err(
                ErrorCode::MethodNotFound,
                format!("unknown method {other:?}; see docs/protocol.md"),
            ),
        }
    }
}

/// The prompt's view of a channel message: a group chat or not, and
/// `telegram group · from Ann (@ann)` for the user-turn envelope.
fn run_context(env: &Envelope) -> crate::agent::prompt::RunContext {
    let group = env.chat_kind == ChatKind::Group;
    let mut origin = format!("{} {}", env.channel, if group { "group" } else { "direct" });
    // Platform names are outside input: no brackets or line breaks that
    // could pass for the end of the envelope.
    let clean = |s: &str| -> String {
        crate::channel::envelope::truncate_chars(s.trim(), 64)
            .chars()
            .map(|c| {
                if c == ']' || c == '[' || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    };
    let name = clean(&env.sender_name);
    let user = env.sender_username.as_deref().map(clean);
    match (name.is_empty(), user) {
        (false, Some(u)) => origin.push_str(&format!(" · from {name} (@{u})")),
        (false, None) => origin.push_str(&format!(" · from {name}")),
        (true, Some(u)) => origin.push_str(&format!(" · from @{u}")),
        (true, None) => {}
    }
    crate::agent::prompt::RunContext {
        group,
        origin,
        compact_only: false,
    }
}
