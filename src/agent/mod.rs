//! Agent runs: a fixed pool of worker threads, each running one run at a
//! time: assemble the request, call the model (falling over along the model
//! chain), run the tools it asks for, repeat until it answers without tool
//! calls, a round limit or the deadline. Progress goes to the reactor as
//! `RunUpdate`s; the reactor persists the new messages when the run ends.
//!
//! Failing over after text has streamed: the partial answer is abandoned,
//! clients get `chat.restart` (naming the next model) and discard what they
//! showed, and only the complete answer of the model that finished is kept.

pub mod compact;
pub mod fetch;
pub mod memory_search;
pub mod prompt;
pub mod search;
pub mod skills;
pub mod tools;

use crate::config::{Config, ModelDef, Provider};
use crate::llm::{CacheUsage, ChatRequest, Message, Part, Role, StreamEvent, TokenUsage};
use crate::provider::{self, CallError, FailKind};
use crate::store::{Turn, TurnKind};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One chat run for the worker pool: the session, its context, the new
/// user turn and how to run it (a cron job is `sched::job`).
pub struct RunRequest {
    pub run_id: u64,
    pub session: String,
    /// The session's context: its summary (if any), then recent turns.
    pub history: Vec<HistoryTurn>,
    pub user: Message,
    /// Who the run talks to: picks the system prompt and the envelope of
    /// the user turn.
    pub run: prompt::RunContext,
    /// Set when the session should be compacted before this run.
    pub compaction: Option<compact::Compaction>,
    pub cancel: Arc<AtomicBool>,
    pub deadline_s: u64,
    /// "provider/model" entries cooling down after failures: tried last.
    pub skip_models: Vec<String>,
    /// "provider/model" to try first (a scheduled job's own model).
    pub model_override: Option<String>,
    /// Reasoning budget chosen with `/think` (`Some(0)`: off); `None`:
    /// `agents.defaults.thinkingBudget`.
    pub thinking: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct HistoryTurn {
    pub seq: u64,
    pub summary: bool,
    pub message: Message,
    /// The session's cumulative transcript characters through this turn:
    /// fixed once stored, so cuts anchored on it stay put (`compact::fit`).
    pub cum_chars: u64,
}

/// A compaction's result: the summary that replaces the session's older turns.
#[derive(Debug)]
pub struct NewSummary {
    pub text: String,
    /// The last turn seq the summary covers.
    pub through_seq: u64,
    /// Cumulative transcript chars through that turn.
    pub through_chars: u64,
}

/// A stopped run's work: its new messages (user turn first, then whole
/// tool rounds), the answer text streamed in the round that was cut, the
/// last model that answered a whole round, and the run's token counts.
#[derive(Debug)]
pub struct Checkpoint {
    pub messages: Vec<Message>,
    pub partial: String,
    pub model: String,
    pub usage: TokenUsage,
    pub cache: CacheUsage,
    pub summary: Option<NewSummary>,
}

#[derive(Debug)]
pub enum RunEvent {
    Delta(String),
    Thinking(String),
    Tool {
        name: String,
        phase: &'static str,
        summary: String,
        ok: bool,
    },
    /// The model that was streaming failed; the next one starts over.
    Restart {
        model: String,
        reason: String,
    },
    ModelFailed {
        model: String,
        error: String,
    },
    ModelOk {
        model: String,
    },
    /// The run's new messages (user turn first), the answer, who answered,
    /// and a new summary (if the session was compacted).
    Final {
        messages: Vec<Message>,
        text: String,
        model: String,
        usage: TokenUsage,
        /// Prompt tokens read from / written to the provider's cache.
        cache: CacheUsage,
        summary: Option<NewSummary>,
    },
    /// What a stopped run had done, sent just before its `Error`. The
    /// gateway keeps it in the transcript when the stop was its shutdown.
    Checkpoint(Checkpoint),
    Error {
        message: String,
        kind: String,
    },
}

#[derive(Debug)]
pub struct RunUpdate {
    pub run_id: u64,
    pub event: RunEvent,
}

/// What every worker shares: config, one HTTP agent per provider, tools.
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub agents: HashMap<String, crate::net::LazyAgent>,
    pub tools: tools::Registry,
    pub workspace: PathBuf,
}

pub struct Pool {
    work: Arc<RunQueue>,
    /// Characters of system prompt and tool schemas, measured at start.
    pub overhead_chars: usize,
    /// The agent's workspace (HEARTBEAT.md lives here).
    pub workspace: PathBuf,
}

/// What the agent tells the gateway: progress of its runs, and the calls
/// the `cron` tool makes.
pub enum AgentEvent {
    Run(RunUpdate),
    /// A `cron.*` call, answered on `reply`.
    Query {
        method: String,
        params: serde_json::Value,
        reply: std::sync::mpsc::SyncSender<Result<serde_json::Value, crate::api_error::ApiError>>,
    },
}

/// Where the agent reports; false once the gateway is gone. Built by the
/// gateway, so the agent never imports it.
pub type Sink = Arc<dyn Fn(AgentEvent) -> bool + Send + Sync>;

/// The run queue and the workers serving it. Workers are started when a
/// run finds none idle (up to `max_concurrent`) and exit after
/// `WORKER_IDLE` without work, so an idle gateway holds no worker threads,
/// stacks or per-thread allocator caches.
struct RunQueue {
    state: Mutex<WorkState>,
    wake: Condvar,
    ctx: Arc<Ctx>,
    out: Sink,
    max_workers: usize,
}

struct WorkState {
    queue: VecDeque<RunRequest>,
    live: usize,
    idle: usize,
    closed: bool,
}

const WORKER_STACK: usize = 1024 * 1024;
/// Runs waiting for a worker; past this, chat.send answers BUSY.
const RUN_QUEUE: usize = 64;
/// A worker with nothing to do for this long exits.
const WORKER_IDLE: Duration = Duration::from_secs(3);

impl Pool {
    pub fn start(cfg: Arc<Config>, workspace: PathBuf, sink: Sink) -> Result<Pool, String> {
        let mut agents = HashMap::new();
        for (id, p) in &cfg.models.providers {
            let route = crate::routes::route_for(&cfg, crate::routes::Owner::Provider(id))?;
            agents.insert(id.clone(), provider::agent(p, route)?);
        }
        let mut tools = tools::Registry::new(&cfg, &workspace)?;
        tools.enable_cron(sink.clone());
        tools.enable_message(&cfg.tools.message.allow_targets);
        let ctx = Arc::new(Ctx {
            cfg: cfg.clone(),
            agents,
            tools,
            workspace: workspace.clone(),
        });
        let overhead_chars =
            compact::overhead(&prompt::system_prompt(&ctx, false), prompt::tools(&ctx));
        let work = Arc::new(RunQueue {
            state: Mutex::new(WorkState {
                queue: VecDeque::new(),
                live: 0,
                idle: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            ctx,
            out: sink,
            max_workers: cfg.agents.defaults.max_concurrent.max(1),
        });
        Ok(Pool {
            work,
            overhead_chars,
            workspace,
        })
    }

    /// Queues a job, or hands it back when the queue is full (or no worker
    /// thread can be started and none is running).
    pub fn try_submit(&self, job: RunRequest) -> Result<(), RunRequest> {
        let w = &self.work;
        let mut st = crate::util::lock(&w.state);
        if st.queue.len() >= RUN_QUEUE || st.closed {
            return Err(job);
        }
        st.queue.push_back(job);
        if st.queue.len() > st.idle && st.live < w.max_workers {
            let worker = w.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("agent-{}", st.live))
                .stack_size(WORKER_STACK)
                .spawn(move || worker.serve());
            match spawned {
                Ok(_) => st.live += 1,
                Err(e) => {
                    log::error!("cannot start an agent worker: {e}");
                    // With no worker at all the run would wait forever.
                    if st.live == 0 {
                        if let Some(job) = st.queue.pop_back() {
                            return Err(job);
                        }
                    }
                }
            }
        }
        w.wake.notify_one();
        Ok(())
    }
}

impl Pool {
    /// Takes no more runs: idle workers end now, busy ones after their run.
    pub fn close(&self) {
        crate::util::lock(&self.work.state).closed = true;
        self.work.wake.notify_all();
    }

    /// Waits until every worker thread has ended or `deadline` passes;
    /// returns how many are still running.
    pub fn wait_stopped(&self, deadline: std::time::Instant) -> usize {
        let mut st = crate::util::lock(&self.work.state);
        while st.live > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            st = match self.work.wake.wait_timeout(st, left) {
                Ok(r) => r.0,
                Err(p) => p.into_inner().0,
            };
        }
        st.live
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}

impl RunQueue {
    /// A worker thread: takes runs until it has been idle for `WORKER_IDLE`.
    fn serve(&self) {
        let mut st = crate::util::lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                let run_id = job.run_id;
                let mut emit = |event: RunEvent| {
                    let _ = (self.out)(AgentEvent::Run(RunUpdate { run_id, event }));
                };
                run(&self.ctx, job, &mut emit);
                st = crate::util::lock(&self.state);
                continue;
            }
            if st.closed {
                break;
            }
            st.idle += 1;
            let (guard, waited) = match self.wake.wait_timeout(st, WORKER_IDLE) {
                Ok(r) => r,
                Err(p) => p.into_inner(),
            };
            st = guard;
            st.idle -= 1;
            if waited.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.live -= 1;
        if st.closed {
            // Wakes a shutdown waiting in `Pool::wait_stopped`.
            self.wake.notify_all();
        }
    }
}

/// Budget for the transcript placed in a request, from the primary model's
/// context window minus the answer's reserve and the prompt overhead
/// (system prompt and tool schemas, measured at start): (characters, turns).
/// Each request is then fitted exactly to its own model by `compact::fit`.
pub fn history_budget(cfg: &Config, overhead_chars: usize) -> (usize, usize) {
    let window = cfg
        .agents
        .defaults
        .model
        .primary
        .as_deref()
        .and_then(|r| crate::config::find_model(cfg, r))
        .map(|(_, _, m)| (m.context_window, m.max_tokens))
        .unwrap_or((4096, 512));
    let chars = (window.0.saturating_sub(window.1) as usize) * prompt::CHARS_PER_TOKEN;
    (chars.saturating_sub(overhead_chars).max(1000), 64)
}

pub fn turn_message(t: Turn) -> Message {
    match t.kind {
        TurnKind::Message => t.message,
        TurnKind::Summary => summary_message(&t.message.joined_text()),
    }
}

/// One model in the chain, resolved from "provider/model".
struct Candidate<'a> {
    label: String,
    pid: &'a str,
    provider: &'a Provider,
    model: &'a ModelDef,
}

fn chain<'a>(cfg: &'a Config, skip: &[String], first: Option<&'a str>) -> Vec<Candidate<'a>> {
    let sel = &cfg.agents.defaults.model;
    let mut refs: Vec<&str> = first.into_iter().collect();
    refs.extend(
        sel.primary
            .iter()
            .chain(sel.fallbacks.iter())
            .map(String::as_str)
            .filter(|r| Some(*r) != first),
    );
    let mut ready = Vec::new();
    let mut cooling = Vec::new();
    for r in refs {
        if let Some((pid, provider, model)) = crate::config::find_model(cfg, r) {
            let c = Candidate {
                label: r.to_string(),
                pid,
                provider,
                model,
            };
            if skip.iter().any(|s| s == r) {
                cooling.push(c);
            } else {
                ready.push(c);
            }
        }
    }
    // Cooling models stay in the chain, last: better a slow answer than none.
    ready.extend(cooling);
    ready
}

/// One assistant reply from the chain.
struct Reply {
    message: Message,
    text: String,
    tool_calls: Vec<ToolCall>,
    model: String,
    usage: TokenUsage,
    cache: CacheUsage,
}

/// A tool call of a reply: the call's id, the tool, its JSON arguments.
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

/// Now plus `secs`, never overflowing: config checks keep durations within a
/// day, and anything beyond what `Instant` can hold is capped at a year.
fn after_secs(secs: u64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(secs))
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

pub fn run(ctx: &Ctx, job: RunRequest, emit: &mut dyn FnMut(RunEvent)) {
    let deadline = after_secs(job.deadline_s);
    let cfg = &ctx.cfg;
    if let Some(m) = &job.model_override {
        if crate::config::find_model(cfg, m).is_none() {
            log::warn!(
                "run {}: model {m:?} is not configured; using the default chain",
                job.run_id
            );
        }
    }
    let candidates = chain(cfg, &job.skip_models, job.model_override.as_deref());
    if candidates.is_empty() {
        emit(RunEvent::Error {
            message: "no model configured: set agents.defaults.model.primary".into(),
            kind: "config".into(),
        });
        return;
    }
    let mut history: Vec<Message> = job.history.iter().map(|h| h.message.clone()).collect();
    let mut anchors: Vec<u64> = job.history.iter().map(|h| h.cum_chars).collect();
    let mut summary = None;
    if let Some(c) = &job.compaction {
        match compact_session(ctx, &candidates, c, &job.cancel, deadline) {
            Ok(text) => {
                let kept: Vec<&HistoryTurn> = job
                    .history
                    .iter()
                    .filter(|h| !h.summary && h.seq > c.through_seq)
                    .collect();
                history = std::iter::once(summary_message(&text))
                    .chain(kept.iter().map(|h| h.message.clone()))
                    .collect();
                anchors = std::iter::once(c.through_chars)
                    .chain(kept.iter().map(|h| h.cum_chars))
                    .collect();
                summary = Some(NewSummary {
                    text,
                    through_seq: c.through_seq,
                    through_chars: c.through_chars,
                });
            }
            Err(e) => log::warn!(
                "session {}: compaction failed, continuing without it: {e}",
                job.session
            ),
        }
    }
    if job.run.compact_only {
        let text = match (&job.compaction, &summary) {
            (None, _) => "Nothing to compact yet.".to_string(),
            (Some(_), Some(_)) => "Compacted: the conversation so far is summarised.".to_string(),
            (Some(_), None) => {
                emit(RunEvent::Error {
                    message: "the summary could not be made; the transcript is unchanged".into(),
                    kind: "provider".into(),
                });
                return;
            }
        };
        emit(RunEvent::Final {
            messages: Vec::new(),
            text,
            model: String::new(),
            usage: TokenUsage::default(),
            cache: CacheUsage::default(),
            summary,
        });
        return;
    }
    let system = prompt::system_prompt(ctx, job.run.group);
    let tools = prompt::tools(ctx);
    let hist = compact::History {
        messages: &history,
        cum_chars: &anchors,
    };
    let mut current = vec![enveloped(job.user.clone(), prompt::clock_ms(), &job.run)];
    let mut usage = TokenUsage::default();
    let mut cache = CacheUsage::default();
    let max_rounds = cfg.agents.defaults.max_rounds.max(1);
    // Who answered the last whole round, for a checkpoint.
    let mut model = String::new();
    for round in 0..max_rounds {
        // The answer text streamed in this round so far (a checkpoint's
        // partial answer); a model restarting drops it.
        let mut streamed = String::new();
        let outcome = if job.cancel.load(Ordering::SeqCst) {
            Err(CallError {
                kind: FailKind::Cancelled,
                message: "stopped".into(),
                fall_over: false,
                retry_after_s: None,
            })
        } else {
            call_chain(
                ctx,
                &job.session,
                &candidates,
                &system,
                tools,
                hist,
                &current,
                &job.cancel,
                deadline,
                job.thinking,
                &mut |event: RunEvent| {
                    match &event {
                        RunEvent::Delta(text) => streamed.push_str(text),
                        RunEvent::Restart { .. } => streamed.clear(),
                        _ => {}
                    }
                    emit(event)
                },
            )
        };
        let reply = match outcome {
            Ok(r) => r,
            Err(e) => {
                if job.cancel.load(Ordering::SeqCst) {
                    emit(RunEvent::Checkpoint(Checkpoint {
                        messages: current,
                        partial: streamed,
                        model,
                        usage,
                        cache,
                        summary,
                    }));
                }
                let kind = match e.kind {
                    FailKind::Cancelled => "aborted",
                    FailKind::Timeout => "timeout",
                    FailKind::Status(429) => "rate_limit",
                    FailKind::Status(400..=403) => "config",
                    _ => "provider",
                };
                emit(RunEvent::Error {
                    message: e.message,
                    kind: kind.into(),
                });
                return;
            }
        };
        usage += reply.usage;
        cache += reply.cache;
        model.clone_from(&reply.model);
        current.push(reply.message);
        if reply.tool_calls.is_empty() {
            emit(RunEvent::Final {
                messages: current,
                text: reply.text,
                model: reply.model,
                usage,
                cache,
                summary,
            });
            return;
        }
        let last_round = round + 1 == max_rounds;
        let mut results = Vec::new();
        for ToolCall {
            id,
            name,
            arguments: args,
        } in reply.tool_calls
        {
            let summary_line = tools::summarize_args(&args);
            emit(RunEvent::Tool {
                name: name.clone(),
                phase: "start",
                summary: summary_line,
                ok: true,
            });
            let out = if last_round || job.cancel.load(Ordering::SeqCst) {
                tools::Output::error(
                    "tool round limit reached; answer with what you have".to_string(),
                )
            } else {
                ctx.tools.run(&name, &args, deadline)
            };
            emit(RunEvent::Tool {
                name: name.clone(),
                phase: "end",
                summary: out.summary.clone(),
                ok: !out.is_error,
            });
            results.push(Part::ToolResult {
                call_id: id,
                content: out.content,
                is_error: out.is_error,
            });
        }
        current.push(Message {
            role: Role::User,
            parts: results,
        });
        if last_round {
            let text = format!("(stopped after {max_rounds} tool rounds; raise agents.defaults.maxRounds to allow more)");
            current.push(Message {
                role: Role::Assistant,
                parts: vec![Part::Text(text.clone())],
            });
            emit(RunEvent::Final {
                messages: current,
                text,
                model: reply.model,
                usage,
                cache,
                summary,
            });
            return;
        }
    }
}

/// The user message with the per-request envelope in front of its first
/// text part (a message without text gets one).
fn enveloped(mut user: Message, now_ms: u64, run: &prompt::RunContext) -> Message {
    match user.parts.iter_mut().find_map(|p| match p {
        Part::Text(t) => Some(t),
        _ => None,
    }) {
        Some(t) => *t = prompt::envelope(now_ms, run, t),
        None => user.parts.insert(
            0,
            Part::Text(prompt::envelope(now_ms, run, "").trim_end().to_string()),
        ),
    }
    user
}

fn summary_message(text: &str) -> Message {
    Message {
        role: Role::User,
        parts: vec![Part::Text(format!("{}\n{text}", compact::SUMMARY_PREFIX))],
    }
}

/// Gives the model one chance to save durable facts (memory tool only),
/// then has it summarise the old turns. Returns the summary text.
fn compact_session(
    ctx: &Ctx,
    candidates: &[Candidate],
    c: &compact::Compaction,
    cancel: &AtomicBool,
    deadline: Instant,
) -> Result<String, String> {
    let mut transcript = compact::transcript_text(c.prior_summary.as_deref(), &c.old);
    // The summariser's own request must fit the smallest window in the chain.
    let cap = candidates
        .iter()
        .map(|m| {
            compact::message_budget(
                m.model.context_window,
                m.model.max_tokens,
                compact::FLUSH_INSTRUCTIONS,
                prompt::tools(ctx),
            )
        })
        .min()
        .unwrap_or(0);
    if transcript.len() > cap {
        transcript = crate::util::truncate(&transcript, cap.saturating_sub(40)).to_string()
            + "\n[transcript cut]";
    }
    let memory_tool: Vec<crate::llm::ToolSpec> = ctx
        .tools
        .specs()
        .iter()
        .filter(|t| t.name == "memory")
        .cloned()
        .collect();
    let mut quiet = |_: RunEvent| {};
    let flush = vec![Message {
        role: Role::User,
        parts: vec![Part::Text(transcript.clone())],
    }];
    if let Ok(reply) = call_chain(
        ctx,
        "",
        candidates,
        compact::FLUSH_INSTRUCTIONS,
        &memory_tool,
        compact::History::EMPTY,
        &flush,
        cancel,
        deadline,
        None,
        &mut quiet,
    ) {
        for call in reply.tool_calls.iter().filter(|c| c.name == "memory") {
            let out = ctx.tools.run(&call.name, &call.arguments, deadline);
            log::info!("compaction memory flush: {}", out.summary);
        }
    }
    let ask = vec![Message {
        role: Role::User,
        parts: vec![Part::Text(transcript)],
    }];
    let reply = call_chain(
        ctx,
        "",
        candidates,
        compact::SUMMARY_INSTRUCTIONS,
        &[],
        compact::History::EMPTY,
        &ask,
        cancel,
        deadline,
        None,
        &mut quiet,
    )
    .map_err(|e| e.message)?;
    let text = reply.text.trim().to_string();
    if text.is_empty() {
        return Err("the model returned an empty summary".into());
    }
    Ok(crate::util::truncate(&text, compact::summary_max_chars(cap)).to_string())
}

#[allow(clippy::too_many_arguments)]
fn call_chain(
    ctx: &Ctx,
    session: &str,
    candidates: &[Candidate],
    system: &str,
    tools: &[crate::llm::ToolSpec],
    history: compact::History,
    current: &[Message],
    cancel: &AtomicBool,
    deadline: Instant,
    thinking: Option<u32>,
    emit: &mut dyn FnMut(RunEvent),
) -> Result<Reply, CallError> {
    let mut last_err: Option<CallError> = None;
    for (i, c) in candidates.iter().enumerate() {
        let agent = match ctx.agents.get(c.pid).map(|a| a.get()) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                last_err = Some(CallError {
                    kind: FailKind::Connect,
                    message: format!("{}: {e}", c.label),
                    fall_over: true,
                    retry_after_s: None,
                });
                continue;
            }
            None => continue,
        };
        let budget =
            compact::message_budget(c.model.context_window, c.model.max_tokens, system, tools);
        let req = ChatRequest {
            model: c.model.id.clone(),
            system: system.to_string(),
            messages: compact::fit(history, current, budget),
            tools: tools.to_vec(),
            max_tokens: c.model.max_tokens,
            temperature: ctx.cfg.agents.defaults.temperature,
            reasoning_budget: match thinking {
                _ if !c.model.reasoning => None,
                Some(0) => None,
                Some(budget) => Some(budget),
                None => Some(ctx.cfg.agents.defaults.thinking_budget),
            },
            accepts_images: c.model.input.iter().any(|i| i == "image"),
            cache: provider::cache_hints(c.provider, session),
        };
        let call_deadline = deadline.min(after_secs(c.provider.timeouts.total));
        let mut text = String::new();
        let mut thinking = String::new();
        let mut signature: Option<String> = None;
        let mut calls = Vec::new();
        let mut usage = TokenUsage::default();
        let mut cache = CacheUsage::default();
        let mut on = |ev: StreamEvent| match ev {
            StreamEvent::TextDelta(t) => {
                text.push_str(&t);
                emit(RunEvent::Delta(t));
            }
            StreamEvent::ThinkingDelta(t) => {
                thinking.push_str(&t);
                emit(RunEvent::Thinking(t));
            }
            StreamEvent::ThinkingSignature(s) => signature = Some(s),
            StreamEvent::ToolCall {
                id,
                name,
                arguments,
            } => calls.push(ToolCall {
                id,
                name,
                arguments,
            }),
            StreamEvent::Usage {
                input_tokens,
                output_tokens,
            } => {
                usage = TokenUsage {
                    input: input_tokens,
                    output: output_tokens,
                }
            }
            StreamEvent::CacheUsage {
                read_tokens,
                write_tokens,
            } => {
                cache = CacheUsage {
                    read: read_tokens,
                    written: write_tokens,
                }
            }
            StreamEvent::Stop { .. } => {}
        };
        match provider::stream_chat(
            agent,
            c.pid,
            c.provider,
            c.model,
            &req,
            cancel,
            call_deadline,
            &mut on,
        ) {
            Ok(()) => {
                emit(RunEvent::ModelOk {
                    model: c.label.clone(),
                });
                let mut parts = Vec::new();
                if !thinking.is_empty() {
                    parts.push(Part::Thinking {
                        text: thinking,
                        signature,
                    });
                }
                if !text.is_empty() {
                    parts.push(Part::Text(text.clone()));
                }
                for call in &calls {
                    parts.push(Part::ToolCall {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    });
                }
                return Ok(Reply {
                    message: Message {
                        role: Role::Assistant,
                        parts,
                    },
                    text,
                    tool_calls: calls,
                    model: c.label.clone(),
                    usage,
                    cache,
                });
            }
            Err(e) => {
                log::warn!("model call failed: {e}");
                if !e.fall_over {
                    return Err(e);
                }
                emit(RunEvent::ModelFailed {
                    model: c.label.clone(),
                    error: e.message.clone(),
                });
                if let Some(next) = candidates.get(i + 1) {
                    if !text.is_empty() || !thinking.is_empty() {
                        emit(RunEvent::Restart {
                            model: next.label.clone(),
                            reason: e.message.clone(),
                        });
                    }
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err
        .map(|mut e| {
            if candidates.len() > 1 {
                e.message = format!("every model in the chain failed; last: {}", e.message);
            }
            e
        })
        .unwrap_or_else(|| CallError {
            kind: FailKind::Connect,
            message: "no usable model".into(),
            fall_over: false,
            retry_after_s: None,
        }))
}
