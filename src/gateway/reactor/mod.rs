//! The reactor: the one thread that owns gateway state.
//!
//! It holds the clients' outboxes, the sessions in memory (a bounded LRU of
//! metadata; transcripts stay in the store), the runs in flight with their
//! per-session queues, and the store handle. It never blocks on a client or
//! a model: requests arrive on one bounded channel, runs go to the agent
//! pool, frames leave through bounded outboxes.

use super::outbox::Outbox;
use super::protocol::{error_frame, event_frame, ok_frame};
use super::ToReactor;
use crate::agent::compact::Compaction;
use crate::agent::{HistoryTurn, Pool, RunEvent, RunRequest, RunUpdate};
use crate::api_error::{ApiError, ErrorCode};
use crate::config::Config;
use crate::llm::{CacheUsage, Message, Part, Role, TokenUsage};
use crate::store::{SessionMeta, Store, Turn, TurnKind};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

pub mod channel_runtime;
pub mod channels;
mod commands;
mod consolidate;
mod message;
mod methods;
mod owner;
mod proactive;
mod reset;
mod shutdown;
pub use shutdown::CHECKPOINT_WAIT;

/// How [`Reactor::deliver_with`] queues a reply beyond the defaults.
#[derive(Default)]
pub(crate) struct DeliveryOptions {
    /// Attempts before a dead letter, when lower than `queue.maxAttempts`
    /// (heartbeat alerts must not hold their chat's later messages long).
    pub max_attempts: Option<u32>,
    /// The draft the first message replaces, by the adapter's name for it.
    pub draft: Option<String>,
}

/// Messages waiting behind a running one, per session.
const SESSION_QUEUE: usize = 4;
/// Largest chat message accepted, in bytes.
const MAX_TEXT: usize = 32 * 1024;

pub(super) type CallResult = Result<Value, ApiError>;

pub(super) fn err(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Who started a run and wants its result.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A WebSocket or HTTP client: gets the streamed events.
    Client(u64),
    /// A channel message: the answer is delivered through the queue.
    Channel {
        channel: String,
        inbound: String,
        target: crate::channel::ReplyTarget,
    },
    /// A scheduled job, heartbeat or webhook (see proactive.rs).
    Job,
}

/// Whether an enqueued run started at once or waits behind another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Enqueued {
    Started,
    Queued,
}

pub(super) struct Pending {
    pub origin: Origin,
    pub text: String,
    pub run_id: u64,
    /// Group chat or not, channel and sender: for the prompt.
    pub run: crate::agent::prompt::RunContext,
}

/// Prompt-cache counters since start, for `status`.
#[derive(Debug, Default)]
pub(super) struct CacheStats {
    /// Prompt tokens of every model call (cached or not).
    pub prompt: u64,
    /// Of those, served from the provider's cache.
    pub read: u64,
    /// Evaluated / written to the cache.
    pub written: u64,
    /// The last run's.
    pub last: Option<LastRunCache>,
}

/// A run's prompt tokens and how the provider's cache served them.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastRunCache {
    pub prompt: u64,
    pub cache: CacheUsage,
}

struct Running {
    session: String,
    origin: Origin,
    cancel: Arc<AtomicBool>,
    started: Instant,
    /// A client's run: its message and the answer text streamed so far,
    /// kept in the transcript at shutdown if the run cannot say more.
    client: Option<ClientRun>,
}

/// What the reactor has of a client's run in flight (`shutdown.rs`).
struct ClientRun {
    text: String,
    streamed: String,
}

/// A small LRU of session metadata.
struct SessionCache {
    cap: usize,
    tick: u64,
    map: HashMap<String, (SessionMeta, u64)>,
}

impl SessionCache {
    fn put(&mut self, meta: SessionMeta) {
        self.tick += 1;
        self.map.insert(meta.key.clone(), (meta, self.tick));
        if self.map.len() > self.cap {
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
    }
}

pub struct Reactor {
    pub(super) cfg: Arc<Config>,
    pub(super) store: Store,
    pub(super) channels: channel_runtime::ChannelRuntime,
    /// The running adapters' handles, by channel name.
    adapters: HashMap<String, crate::channel::adapter::Handle>,
    pool: Pool,
    clients: HashMap<u64, Outbox>,
    runs: HashMap<u64, Running>,
    /// Sessions with a run in flight, and what waits behind it.
    busy: HashMap<String, VecDeque<Pending>>,
    sessions: SessionCache,
    next_run: u64,
    pub(super) started: Instant,
    runs_total: u64,
    runs_failed: u64,
    pub(super) cache_stats: CacheStats,
    /// When free heap and code pages go back to the kernel (at rest).
    trim: crate::util::QuietTrim,
    /// Unix ms before which the tick need not read the outbound queue: set
    /// from the queue's earliest due head after a pump, and to 0 (read at
    /// the next tick) by anything that can queue, hand back or free a
    /// message. An idle gateway then reads no queue while nothing waits.
    pub(super) delivery_wake_ms: u64,
    ticks: u64,
    /// Per "provider/model": consecutive failures, cooldown end and last error.
    model_health: HashMap<String, ModelHealth>,
    proactive: proactive::Proactive,
    pub(super) upkeep: super::storage::Upkeep,
    chat: commands::ChatState,
}

/// How one "provider/model" has fared lately; absent means healthy.
#[derive(Clone, Default)]
pub(super) struct ModelHealth {
    /// Consecutive failures since the last success.
    pub(super) failures: u32,
    /// Wall-clock ms until which the model is skipped.
    pub(super) cooling_until_ms: u64,
    /// The last failure's message.
    pub(super) last_error: String,
}

impl Reactor {
    pub fn new(cfg: Arc<Config>, store: Store, pool: Pool) -> Reactor {
        let cap = cfg.gateway.session_cache;
        let proactive = proactive::Proactive::load(&cfg, &store);
        let chat = commands::ChatState::load(&store);
        Reactor {
            cfg,
            store,
            channels: channel_runtime::ChannelRuntime::default(),
            adapters: HashMap::new(),
            pool,
            clients: HashMap::new(),
            runs: HashMap::new(),
            busy: HashMap::new(),
            sessions: SessionCache {
                cap,
                tick: 0,
                map: HashMap::new(),
            },
            next_run: 1,
            started: Instant::now(),
            runs_total: 0,
            runs_failed: 0,
            cache_stats: CacheStats::default(),
            trim: crate::util::QuietTrim::new(Instant::now()),
            delivery_wake_ms: 0,
            ticks: 0,
            model_health: HashMap::new(),
            proactive,
            upkeep: super::storage::Upkeep::default(),
            chat,
        }
    }

    /// Serves until `stop` completes or every sender is gone.
    pub async fn run(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<ToReactor>,
        stop: impl std::future::Future<Output = &'static str>,
    ) -> &'static str {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let wake = self.proactive_deadline();
            tokio::select! {
                why = &mut stop => return why,
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m),
                    None => return "all senders closed",
                },
                _ = tick.tick() => self.maintain(),
                _ = tokio::time::sleep_until(wake) => self.proactive_tick(),
            }
        }
    }

    fn maintain(&mut self) {
        self.ticks += 1;
        // Queued replies whose retry time has come.
        if crate::util::now_ms() >= self.delivery_wake_ms {
            self.pump_delivery();
        }
        self.progress_tick();
        // Once traffic pauses (and every 30 s while it stays paused), hand
        // freed heap back to the kernel, and at the start of the pause the
        // code pages start-up or the burst mapped, so RSS returns to its
        // baseline instead of staying at the high-water mark
        // (`util::QuietTrim`).
        let now = Instant::now();
        if self.trim.due(now, !self.runs.is_empty()) {
            crate::util::release_free_memory();
            if self.trim.code_pages_due() {
                let kib = crate::util::release_code_pages();
                log::debug!("quiet: released free heap and {kib} KiB of code pages");
            }
        }
        let quiet = self.runs.is_empty() && self.trim.quiet(now);
        self.storage_tick(quiet);
        if self.ticks % 5 != 0 {
            return;
        }
        if !self.channels_idle() {
            self.resume_inbound();
        }
        crate::service::watchdog();
    }

    fn handle(&mut self, msg: ToReactor) {
        // An adapter's health report is no traffic: adapters send one per
        // long poll, which would otherwise keep the gateway from ever
        // counting as quiet.
        let health = matches!(
            &msg,
            ToReactor::Adapter {
                event: crate::channel::adapter::AdapterEvent::Health(_),
                ..
            }
        );
        if !health {
            self.trim.on_activity(Instant::now());
            self.delivery_wake_ms = 0;
        }
        match msg {
            ToReactor::Open { conn, outbox } => {
                self.clients.insert(conn, outbox);
            }
            ToReactor::Closed { conn } => {
                self.clients.remove(&conn);
            }
            ToReactor::Call {
                conn,
                id,
                method,
                params,
            } => {
                let result = self.call(Some(conn), &method, params);
                let frame = match result {
                    Ok(v) => ok_frame(&id, v),
                    Err(e) => error_frame(&json!(id), e.code.as_str(), &e.message),
                };
                self.send(conn, frame);
            }
            ToReactor::Query {
                method,
                params,
                reply,
            } => {
                let r = if method == "chat.send" {
                    Err(err(ErrorCode::InvalidRequest, "chat.send needs a stream"))
                } else {
                    self.call(None, &method, params)
                };
                let _ = reply.try_send(r);
            }
            ToReactor::Run(update) => self.on_run(update),
            ToReactor::Adapter { channel, event } => self.on_adapter(&channel, event),
        }
    }

    fn send(&mut self, conn: u64, frame: String) {
        self.to_client(conn, |o| o.push(frame));
    }

    /// Streamed text: merged with what the client has not read yet.
    fn send_delta(&mut self, conn: u64, run_id: &str, session: &str, text: &str) {
        self.to_client(conn, |o| o.push_delta(run_id, session, text));
    }

    /// A progress event, which non-streaming clients do without.
    fn send_progress(&mut self, conn: u64, frame: impl FnOnce() -> String) {
        self.to_client(conn, |o| o.push_progress(frame));
    }

    fn to_client(&mut self, conn: u64, push: impl FnOnce(&Outbox) -> bool) {
        let alive = match self.clients.get(&conn) {
            Some(o) => push(o),
            None => return,
        };
        if !alive {
            self.clients.remove(&conn);
        }
    }

    /// Serves one API request through the method table (`methods.rs`).
    fn call(&mut self, conn: Option<u64>, method: &str, params: Value) -> CallResult {
        match methods::find(method) {
            Some(handler) => handler(
                self,
                methods::Request {
                    conn,
                    method,
                    params,
                },
            ),
            None => Err(err(
                ErrorCode::MethodNotFound,
                format!("unknown method {method:?}; see docs/protocol.md"),
            )),
        }
    }

    fn status(&self) -> Value {
        let now = crate::util::now_ms();
        let mut providers = serde_json::Map::new();
        for r in crate::config::model_refs(&self.cfg) {
            let health = self.model_health.get(&r).cloned().unwrap_or_default();
            let state = if health.cooling_until_ms > now {
                "cooldown"
            } else if health.failures > 0 {
                "degraded"
            } else {
                "ok"
            };
            providers.insert(r, json!({"state": state, "failures": health.failures, "cooldownMs": health.cooling_until_ms.saturating_sub(now), "lastError": health.last_error}));
        }
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeMs": self.started.elapsed().as_millis() as u64,
            "rssKiB": crate::util::rss_kib(),
            "sessions": {"stored": self.store.session_count().unwrap_or(0), "inMemory": self.sessions.map.len(), "busy": self.busy.len()},
            "clients": self.clients.len(),
            "runs": {"inFlight": self.runs.len(), "total": self.runs_total, "failed": self.runs_failed},
            "promptCache": self.cache_status(),
            "localModels": crate::local_llm::status_json(),
            "primaryModel": self.cfg.agents.defaults.model.primary,
            "models": providers,
            "channels": self.channels_status(),
            "cron": self.proactive_status(),
            "sandbox": crate::sandbox::status_json(&self.cfg.tools.exec.sandbox),
            "configWarnings": self.cfg.ignored.iter().map(|k| k.message()).collect::<Vec<_>>(),
            "storage": self.storage_status(),
        })
    }

    pub(super) fn runs_idle(&self) -> bool {
        self.runs.is_empty()
    }

    fn cache_status(&self) -> Value {
        let c = &self.cache_stats;
        let share = if c.prompt > 0 {
            (c.read as f64 / c.prompt as f64 * 1000.0).round() / 1000.0
        } else {
            0.0
        };
        let last = c.last.map(|run| {
            json!({"promptTokens": run.prompt, "readTokens": run.cache.read, "writtenTokens": run.cache.written})
        });
        json!({"promptTokens": c.prompt, "readTokens": c.read, "writtenTokens": c.written, "readShare": share, "lastRun": last})
    }

    /// Counts a finished run's prompt and cache tokens.
    pub(super) fn note_cache(&mut self, usage: TokenUsage, cache: CacheUsage) {
        let c = &mut self.cache_stats;
        c.prompt = c.prompt.saturating_add(usage.input);
        c.read = c.read.saturating_add(cache.read);
        c.written = c.written.saturating_add(cache.written);
        c.last = Some(LastRunCache {
            prompt: usage.input,
            cache,
        });
    }

    pub(super) fn new_run_id(&mut self) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        id
    }

    /// The one way into a session's runs (client messages, channel
    /// messages, commands, jobs, heartbeats, webhooks): starts the run, or
    /// queues it behind the session's running one (at most `SESSION_QUEUE`).
    pub(super) fn enqueue_run(
        &mut self,
        session: &str,
        pending: Pending,
    ) -> Result<Enqueued, ApiError> {
        if let Some(q) = self.busy.get_mut(session) {
            if q.len() >= SESSION_QUEUE {
                return Err(err(
                    ErrorCode::Busy,
                    format!("session {session} already has messages waiting; wait for the reply"),
                ));
            }
            q.push_back(pending);
            return Ok(Enqueued::Queued);
        }
        // Scheduled runs leave the session as it is; a person's message
        // first applies `session.reset`.
        if pending.origin != Origin::Job {
            self.apply_reset_policy(session);
        }
        self.start_run(session, pending)?;
        Ok(Enqueued::Started)
    }

    fn start_run(&mut self, session: &str, p: Pending) -> Result<(), ApiError> {
        let defaults = &self.cfg.agents.defaults;
        let (budget_chars, max_turns) =
            crate::agent::history_budget(&self.cfg, self.pool.overhead_chars);
        let history = self
            .store
            .recent(session, max_turns, budget_chars)
            .map_err(|e| err(ErrorCode::Store, e))?;
        // `/compact` asks for a compaction whatever the session's size.
        let incoming = if p.run.compact_only {
            budget_chars
        } else {
            p.text.len()
        };
        let compaction = self
            .plan_compaction(session, incoming, budget_chars, max_turns)
            .map_err(|e| err(ErrorCode::Store, e))?;
        let history: Vec<HistoryTurn> = history
            .into_iter()
            .map(|(seq, t)| HistoryTurn {
                seq,
                summary: t.kind == TurnKind::Summary,
                cum_chars: t.cum_chars,
                message: crate::agent::turn_message(t),
            })
            .collect();
        let cancel = Arc::new(AtomicBool::new(false));
        let client = match p.origin {
            Origin::Client(_) => Some(ClientRun {
                text: p.text.clone(),
                streamed: String::new(),
            }),
            _ => None,
        };
        let (chosen_model, thinking) = self.session_choices(session);
        let job = RunRequest {
            run_id: p.run_id,
            session: session.to_string(),
            history,
            compaction,
            user: Message {
                role: Role::User,
                parts: vec![Part::Text(p.text)],
            },
            run: p.run,
            cancel: cancel.clone(),
            deadline_s: defaults.timeout_seconds,
            skip_models: self.cooling_models(),
            model_override: self.run_model(p.run_id).or(chosen_model),
            thinking,
        };
        if let Err(job) = self.pool.try_submit(job) {
            drop(job);
            return Err(err(
                ErrorCode::Busy,
                "every agent worker is busy and the run queue is full; try again shortly",
            ));
        }
        self.runs_total += 1;
        self.busy.entry(session.to_string()).or_default();
        self.runs.insert(
            p.run_id,
            Running {
                session: session.to_string(),
                origin: p.origin,
                cancel,
                started: Instant::now(),
                client,
            },
        );
        Ok(())
    }

    /// Decides whether this session needs compacting: when its unsummarised
    /// transcript passes 3/4 of the budget (characters, or turns), the
    /// oldest unsummarised turns (up to one budget's worth) are to be
    /// summarised, keeping the newest quarter of the budget verbatim. The
    /// rest of the budget is head-room that later turns fill by appending to
    /// an unchanged prompt prefix (see `agent::compact`).
    fn plan_compaction(
        &self,
        session: &str,
        incoming: usize,
        budget_chars: usize,
        max_turns: usize,
    ) -> Result<Option<Compaction>, String> {
        let Some(meta) = self.store.session(session)? else {
            return Ok(None);
        };
        let prior = self.store.latest_summary(session)?;
        let from = prior
            .as_ref()
            .and_then(|(_, t)| t.covers_through)
            .map(|c| c + 1)
            .unwrap_or(0);
        // The incoming message and its answer come on top of the transcript.
        let chars_full =
            meta.unsummarized_chars() + (incoming as u64) * 2 > (budget_chars as u64) * 3 / 4;
        // Turns since the summary (the summary turn itself included).
        let turns_full = meta.next_seq.saturating_sub(from) > (max_turns as u64) * 3 / 4;
        if !chars_full && !turns_full {
            return Ok(None);
        }
        let kept = self
            .store
            .recent(session, max_turns / 4, budget_chars / 4)?;
        let keep_from = kept
            .iter()
            .filter(|(_, t)| t.kind != TurnKind::Summary)
            .map(|(s, _)| *s)
            .min()
            .unwrap_or(meta.next_seq);
        let old = self.store.span(session, from, keep_from, budget_chars)?;
        let Some((through_seq, last)) = old.last().map(|(s, t)| (*s, t.cum_chars)) else {
            return Ok(None);
        };
        let prior_summary = prior.map(|(_, t)| t.message.joined_text());
        Ok(Some(Compaction {
            prior_summary,
            old: old.into_iter().map(|(_, t)| t.message).collect(),
            through_seq,
            through_chars: last,
        }))
    }

    /// Records `turns` in `session` and queues `text` for delivery to
    /// `to`, split to the channel's message limit — all in one transaction.
    /// The delivery loop sends it when the channel is up; nothing is lost if
    /// it is not.
    pub(crate) fn deliver(
        &mut self,
        session: &str,
        to: &crate::channel::ReplyTarget,
        turns: &[Turn],
        usage: TokenUsage,
        inbound: Option<crate::queue::InboundKey>,
        text: &str,
    ) -> Result<(), String> {
        self.deliver_with(
            session,
            to,
            turns,
            usage,
            inbound,
            text,
            DeliveryOptions::default(),
        )
    }

    /// [`Self::deliver`] with [`DeliveryOptions`]: a lower attempt limit
    /// (heartbeat alerts) or the draft the first message replaces
    /// (`channel::progress`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn deliver_with(
        &mut self,
        session: &str,
        to: &crate::channel::ReplyTarget,
        turns: &[Turn],
        usage: TokenUsage,
        inbound: Option<crate::queue::InboundKey>,
        text: &str,
        options: DeliveryOptions,
    ) -> Result<(), String> {
        let configured = self
            .cfg
            .channels
            .get(&to.channel)
            .and_then(|c| c.text_chunk_limit);
        let (limit, measure) = crate::channel::registry::text_limit(&to.channel, configured);
        // replyToMode "first": only the first message of a reply quotes.
        let quote_all = self
            .cfg
            .channels
            .get(&to.channel)
            .is_some_and(|c| c.reply_to_mode.as_deref() == Some("all"));
        // An empty answer (a command that only acted) sends nothing.
        let chunks = if text.trim().is_empty() {
            Vec::new()
        } else {
            crate::channel::split::split_with(text, limit, measure)
        };
        let replies: Vec<crate::channel::Outbound> = chunks
            .into_iter()
            .enumerate()
            .map(|(index, chunk)| {
                let mut out = to.outbound(chunk);
                out.max_attempts = options.max_attempts;
                if index > 0 && !quote_all {
                    out.reply_to = None;
                }
                if index == 0 {
                    out.edit = options.draft.clone();
                }
                out
            })
            .collect();
        let done = self
            .store
            .commit_reply(
                &self.cfg.queue,
                session,
                turns,
                usage,
                inbound,
                &replies,
                crate::util::now_ms(),
            )
            .map_err(|e| e.to_string())?;
        if let Some(meta) = done.meta {
            self.sessions.put(meta);
        }
        self.wake_delivery();
        Ok(())
    }

    /// Hands newly queued replies to the adapters at once.
    fn wake_delivery(&mut self) {
        self.pump_delivery();
    }

    fn cooling_models(&self) -> Vec<String> {
        let now = crate::util::now_ms();
        self.model_health
            .iter()
            .filter(|(_, health)| health.cooling_until_ms > now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn on_run(&mut self, u: RunUpdate) {
        let Some(run) = self.runs.get_mut(&u.run_id) else {
            return;
        };
        if let Some(client) = &mut run.client {
            match &u.event {
                RunEvent::Delta(text) => client.streamed.push_str(text),
                RunEvent::Restart { .. } => client.streamed.clear(),
                _ => {}
            }
        }
        let origin = run.origin.clone();
        let conn = match origin {
            Origin::Client(c) => c,
            // Runs without a client use connection 0, which is never assigned.
            Origin::Channel { .. } => 0,
            // A job's end is handled in proactive.rs.
            Origin::Job => match u.event {
                RunEvent::Final { .. } | RunEvent::Error { .. } => return self.job_run_ended(u),
                _ => 0,
            },
        };
        let session = run.session.clone();
        let rid = u.run_id.to_string();
        if let Origin::Channel {
            channel, inbound, ..
        } = &origin
        {
            self.channel_progress(channel, inbound, &u.event);
        }
        match u.event {
            RunEvent::Delta(text) => self.send_delta(conn, &rid, &session, &text),
            RunEvent::Thinking(text) => self.send_progress(conn, || event_frame("chat.thinking", json!({"runId": rid, "session": session, "text": text}))),
            RunEvent::Tool { name, phase, summary, ok } => {
                self.send_progress(conn, || event_frame("chat.tool", json!({"runId": rid, "session": session, "name": name, "phase": phase, "summary": summary, "ok": ok})))
            }
            RunEvent::Restart { model, reason } => {
                self.send_progress(conn, || event_frame("chat.restart", json!({"runId": rid, "session": session, "model": model, "reason": reason})))
            }
            RunEvent::ModelFailed { model, error } => {
                let now = crate::util::now_ms();
                let health = self.model_health.entry(model).or_default();
                health.failures += 1;
                health.cooling_until_ms = now + cooldown_ms(health.failures);
                health.last_error = error;
            }
            RunEvent::ModelOk { model } => {
                self.model_health.remove(&model);
            }
            // Only a shutdown keeps it (`shutdown.rs`); a run stopped by
            // `/stop` or `chat.abort` ends with its error as before.
            RunEvent::Checkpoint(_) => {}
            RunEvent::Final { messages, text, model, usage, cache, summary } => {
                let now = crate::util::now_ms();
                self.note_cache(usage, cache);
                let turns = proactive::final_turns(now, messages, &model, usage, cache, summary);
                if let Origin::Channel { channel, inbound, target } = &origin {
                    self.channel_run_done(channel, inbound, &session, target, &turns, usage, &text);
                    self.finish(u.run_id, &session);
                    return;
                }
                match self.store.append(&session, &turns, usage, now) {
                    Ok(meta) => self.sessions.put(meta),
                    Err(e) => log::error!("session {session}: could not persist the turn: {e}"),
                }
                let ms = self.runs.get(&u.run_id).map(|r| r.started.elapsed().as_millis() as u64).unwrap_or(0);
                self.send(conn, event_frame("chat.final", json!({"runId": rid, "session": session, "text": text, "model": model, "usage": {"input": usage.input, "output": usage.output, "cacheRead": cache.read, "cacheWritten": cache.written}, "ms": ms})));
                self.finish(u.run_id, &session);
            }
            RunEvent::Error { message, mut kind } => {
                // A run stopped (/stop, chat.abort) may fail otherwise before it notices.
                if self.runs.get(&u.run_id).is_some_and(|r| r.cancel.load(std::sync::atomic::Ordering::SeqCst)) {
                    kind = "aborted".into();
                }
                self.runs_failed += 1;
                self.chat.note_error(&session, &format!("{kind}: {message}"));
                if let Origin::Channel { channel, inbound, target } = &origin {
                    log::warn!("{channel}: run failed ({kind}): {message}");
                    // A run stopped with /stop was answered by the command.
                    let note = if kind == "aborted" { String::new() } else { format!("Sorry, I could not answer that: {message}") };
                    self.channel_run_done(channel, inbound, &session, target, &[], TokenUsage::default(), &note);
                    self.finish(u.run_id, &session);
                    return;
                }
                self.send(conn, event_frame("chat.error", json!({"runId": rid, "session": session, "message": message, "kind": kind})));
                self.finish(u.run_id, &session);
            }
        }
    }

    /// Ends a run and starts the next message waiting on its session.
    fn finish(&mut self, run_id: u64, session: &str) {
        self.runs.remove(&run_id);
        loop {
            let Some(p) = self.busy.get_mut(session).and_then(VecDeque::pop_front) else {
                self.busy.remove(session);
                return;
            };
            let origin = p.origin.clone();
            let rid = p.run_id;
            match self.start_run(session, p) {
                Ok(()) => return,
                Err(ApiError { code, message: msg }) => match origin {
                    Origin::Client(conn) => self.send(conn, event_frame("chat.error", json!({"runId": rid.to_string(), "session": session, "message": msg, "kind": code.as_str()}))),
                    Origin::Channel { channel, inbound, .. } => {
                        log::warn!("{channel}: queued run not started ({}: {msg}); the message stays in the inbox", code.as_str());
                        self.channel_run_dropped(channel, inbound);
                    }
                    Origin::Job => self.job_start_failed(rid, msg),
                },
            }
        }
    }
}

/// Cooldown after `failures` consecutive failures: 5 s doubling, capped at 5 min.
pub fn cooldown_ms(failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(16);
    (5_000u64 << exp).min(300_000)
}

/// `params.session`, validated; WebSocket clients default to their own.
fn session_param(params: &Value, conn: Option<u64>) -> Result<String, ApiError> {
    match params.get("session").and_then(Value::as_str) {
        Some(s) => {
            if s.is_empty()
                || s.len() > 128
                || s.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "params.session must be 1-128 visible characters, like \"web:alice\"",
                ));
            }
            Ok(s.to_string())
        }
        None => match conn {
            Some(c) => Ok(format!("ws:{c}")),
            None => Err(err(ErrorCode::InvalidRequest, "params.session is required")),
        },
    }
}

/// Text sent in one `chat.history` answer at most, so the frame stays far
/// below the WebSocket message bound.
const HISTORY_TEXT_BYTES: usize = 512 * 1024;

/// The newest turns (oldest-first) whose text fits `budget` bytes; a newest
/// turn larger than the budget is cut to it and marked `"truncated": true`.
/// The flag is false when turns were left out or cut.
fn bounded_history(turns: &[(u64, Turn)], budget: usize) -> (Vec<Value>, bool) {
    let mut left = budget;
    let mut out = Vec::new();
    let mut complete = true;
    for (seq, t) in turns.iter().rev() {
        let mut item = turn_json(*seq, t);
        let len = item["text"].as_str().map(str::len).unwrap_or(0);
        if len > left {
            complete = false;
            if out.is_empty() {
                let text = item["text"].as_str().unwrap_or("");
                let mut cut = left;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                item["text"] = json!(text.get(..cut).unwrap_or(""));
                item["truncated"] = json!(true);
                out.push(item);
            }
            break;
        }
        left -= len;
        out.push(item);
    }
    out.reverse();
    (out, complete)
}

fn turn_json(seq: u64, t: &Turn) -> Value {
    let crate::agent::prompt::ShownTurn { role, text } = crate::agent::prompt::shown_turn(t);
    let mut tools = Vec::new();
    for p in &t.message.parts {
        match p {
            Part::ToolCall { name, .. } => tools.push(json!({"call": name})),
            Part::ToolResult { is_error, .. } => {
                tools.push(json!({"result": if *is_error { "error" } else { "ok" }}))
            }
            _ => {}
        }
    }
    json!({"seq": seq, "ts": t.ts_ms, "role": role, "text": text, "model": t.model, "tools": tools})
}
