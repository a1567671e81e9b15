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
//!
//! The decisions are `ChannelRuntime`'s (`channel_runtime.rs`, no I/O);
//! this file is the shell that carries out its actions.

use super::channel_runtime::{ChannelAction, ChannelRun, SendRecord};
use super::{Pending, Reactor};
use crate::agent::RunEvent;
use crate::api_error::{ApiError, ErrorCode};
use crate::api_wire::{PairingApproval, PairingRequest, QueueEntry};
use crate::channel::adapter::{self, AdapterEvent, SendJob, SendResult};
use crate::channel::progress::{Action, ChatSettings, RunKey};
use crate::channel::{registry, AccessConfig, ChatKind, Envelope, Pairing, ReplyTarget};
use crate::queue;
use serde_json::{json, Value};

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
            let pairing = queue::channel_state_get(&self.store, name, "pairing")?
                .and_then(|b| serde_json::from_slice::<Pairing>(&b).ok())
                .unwrap_or_default();
            self.channels.add_channel(name, access, pairing);
            let start = adapter::Start {
                channel: name.clone(),
                account: "default".into(),
                config: ch.clone(),
                route: crate::routes::route_for(&cfg, crate::routes::Owner::Channel(name))?,
                cursor: stored_cursor(&self.store, name)?,
                sink: sink(name, to_reactor.clone()),
            };
            let handle = (entry.start)(start)?;
            self.adapters.insert(name.clone(), handle);
        }
        // Messages accepted before a crash or restart, not yet answered.
        self.resume_inbound();
        self.pump_delivery();
        Ok(())
    }

    /// Tells every adapter to stop and closes its send queue (its send
    /// thread ends when the queue is gone).
    pub fn stop_channels(&mut self) {
        for h in self.adapters.values() {
            h.stop();
        }
        self.adapters.clear();
    }

    pub fn on_adapter(&mut self, channel: &str, ev: AdapterEvent) {
        match ev {
            AdapterEvent::Health(h) => self.channels.on_health(channel, h),
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
        let mut rng = crate::util::random_u64;
        let Some(screened) = self.channels.screen(channel, envelopes, now, &mut rng) else {
            return false;
        };
        let tx = match self.store.db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                log::error!("{channel}: cannot commit inbound batch: {e}");
                return false;
            }
        };
        let mut new_ones = Vec::new();
        for env in screened.accepted {
            let session = self.channel_session(&env);
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
        for reason in &screened.drops {
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
        if let Some(bytes) = self.channels.pairing_bytes(channel) {
            let _ = queue::channel_state_put_in(&tx, channel, "pairing", &bytes);
        }
        if let Err(e) = tx.commit() {
            log::error!("{channel}: cannot commit inbound batch: {e}");
            return false;
        }
        for pairing in screened.pairing_codes {
            let code = pairing.code;
            let text = format!(
                "Hi! This assistant only talks to people its owner approved. Your pairing code is {code} (valid for 1 hour). Ask the owner to run: pinch pairing approve {channel} {code}"
            );
            let to = ReplyTarget::from_envelope(&pairing.envelope, false);
            if let Err(e) = self.deliver(
                &to.chat(),
                &to,
                &[],
                crate::llm::TokenUsage::default(),
                None,
                &text,
            ) {
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
        let queue_full = queue::can_accept(&self.store, &self.cfg.queue, &env.channel)
            .err()
            .map(|e| e.to_string());
        // replyToMode "first" / "all": the answer quotes the message.
        let quote = self
            .cfg
            .channels
            .get(&env.channel)
            .and_then(|c| c.reply_to_mode.as_deref())
            .is_some_and(|m| m != "off");
        let actions = self.channels.plan_run(&env, session, queue_full, quote);
        self.apply_channel_actions(actions);
    }

    /// Carries out the channel runtime's actions.
    fn apply_channel_actions(&mut self, actions: Vec<ChannelAction>) {
        for action in actions {
            match action {
                ChannelAction::Send { channel, job } => {
                    let Some(h) = self.adapters.get(&channel) else {
                        continue;
                    };
                    let seq = match &job {
                        SendJob::Message { seq, .. } => Some(*seq),
                        SendJob::Typing { .. } | SendJob::Draft { .. } => None,
                    };
                    // A full send queue: typing is skipped, a message is
                    // handed over at a later pump.
                    if h.send.try_send(job).is_ok() {
                        if let Some(seq) = seq {
                            self.channels.handed_over(seq);
                        }
                    }
                }
                ChannelAction::Run(run) => self.enqueue_channel_run(run),
            }
        }
    }

    fn enqueue_channel_run(&mut self, run: ChannelRun) {
        let ChannelRun {
            session,
            text,
            origin,
            context,
        } = run;
        let super::Origin::Channel {
            channel, inbound, ..
        } = &origin
        else {
            return;
        };
        let (channel, inbound) = (channel.clone(), inbound.clone());
        let super::Origin::Channel { target, .. } = &origin else {
            return;
        };
        let (target, group) = (target.clone(), context.group);
        let pending = Pending {
            origin,
            text,
            run_id: self.new_run_id(),
            run: context,
        };
        match self.enqueue_run(&session, pending) {
            Ok(_) => {
                self.channels.run_started(&channel, &inbound);
                self.progress_start(&channel, &inbound, target, group);
            }
            Err(e) => {
                log::warn!("{channel}: run not started ({e}); the message stays in the inbox")
            }
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
        usage: crate::llm::TokenUsage,
        text: &str,
    ) {
        self.channels.run_ended(channel, inbound);
        let draft = self.channels.progress.finish(&RunKey {
            channel: channel.to_string(),
            inbound: inbound.to_string(),
        });
        if let Err(e) = self.deliver_with(
            session,
            target,
            turns,
            usage,
            Some(crate::queue::InboundKey {
                channel,
                id: inbound,
            }),
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
        self.channels.run_ended(&key.channel, &key.inbound);
    }

    /// Stops a run's typing and drafts (`/stop`: the draft keeps what it shows).
    pub(super) fn channel_progress_stop(&mut self, channel: String, inbound: String) -> RunKey {
        let key = RunKey { channel, inbound };
        self.channels.progress.finish(&key);
        key
    }

    /// Keeps the typing indicator up from the message until the answer,
    /// and drafts the answer where the channel streams (`channel::progress`).
    fn progress_start(&mut self, channel: &str, inbound: &str, target: ReplyTarget, group: bool) {
        let Some(adapter) = registry::find(channel) else {
            return;
        };
        let config = self.cfg.channels.get(channel);
        let (limit, _) = registry::text_limit(channel, config.and_then(|c| c.text_chunk_limit));
        let settings = ChatSettings::new(
            &adapter.capabilities,
            config.and_then(|c| c.streaming.as_ref()),
            group,
            limit,
        );
        let key = RunKey {
            channel: channel.to_string(),
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
            if let Some(h) = self.adapters.get(&channel) {
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
            if self.adapters.contains_key(&env.channel) {
                self.start_channel_run(env, session);
            }
        }
    }

    /// True when no channel is held back by a full queue.
    pub fn channels_idle(&self) -> bool {
        self.channels.idle()
    }

    /// Hands due messages to the send threads.
    pub fn pump_delivery(&mut self) {
        if self.adapters.is_empty() {
            return;
        }
        let now = crate::util::now_ms();
        let due = match queue::next_due(&self.store, now, 32, self.channels.inflight()) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("delivery: cannot read the queue: {e}");
                self.delivery_wake_ms = 0;
                return;
            }
        };
        let adapters = &self.adapters;
        let actions = self
            .channels
            .plan_sends(due, |channel| adapters.contains_key(channel));
        let planned = actions.len();
        let inflight_before = self.channels.inflight().len();
        self.apply_channel_actions(actions);
        // The next tick reads the queue again only once its earliest head
        // not in flight is due; at once if a send queue was full.
        self.delivery_wake_ms = if self.channels.inflight().len() < inflight_before + planned {
            0
        } else {
            match queue::next_wake(&self.store, self.channels.inflight()) {
                Ok(at) => at.unwrap_or(u64::MAX),
                Err(_) => 0,
            }
        };
    }

    pub(super) fn on_sent(&mut self, seq: u64, result: SendResult) {
        let now = crate::util::now_ms();
        let r = match self.channels.on_sent(seq, result) {
            SendRecord::Delivered { seq } => queue::delivered(&self.store, seq).map(|_| ()),
            SendRecord::Retry {
                seq,
                after_s,
                error,
            } => {
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
            SendRecord::DeadLetter { seq, error } => {
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
        self.channels.status(now, queue)
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
                for (name, p) in self.channels.pairing() {
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
                let known = self
                    .channels
                    .pairing()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let Some(p) = self.channels.pairing_mut(&ch) else {
                    return err(
                        ErrorCode::NotFound,
                        format!("no channel {ch:?} is running; known: {known}"),
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
