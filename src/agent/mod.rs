//! Agent runs: a fixed pool of worker threads, each running one run at a
//! time: assemble the request, call the model (falling over along the model
//! chain), run the tools it asks for, repeat until it answers without tool
//! calls, a round limit or the deadline. Progress goes to the reactor as
//! `RunUpdate`s; the reactor persists the new messages when the run ends.
//!
//! Failing over after text has streamed: the partial answer is abandoned,
//! clients get `chat.restart` (naming the next model) and discard what they
//! showed, and only the complete answer of the model that finished is kept.

pub mod prompt;
pub mod search;
pub mod skills;
pub mod tools;

use crate::config::{Config, ModelDef, Provider};
use crate::gateway::ToReactor;
use crate::llm::{ChatRequest, Message, Part, Role, StreamEvent};
use crate::provider::{self, CallError, FailKind};
use crate::store::{Turn, TurnKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Job {
    pub run_id: u64,
    pub session: String,
    pub history: Vec<Message>,
    pub user: Message,
    pub cancel: Arc<AtomicBool>,
    pub deadline_s: u64,
    /// "provider/model" entries cooling down after failures: tried last.
    pub skip_models: Vec<String>,
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
    /// The run's new messages (user turn first), the answer, who answered.
    Final {
        messages: Vec<Message>,
        text: String,
        model: String,
        usage: (u64, u64),
    },
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
    pub agents: HashMap<String, ureq::Agent>,
    pub tools: tools::Registry,
    pub workspace: PathBuf,
}

pub struct Pool {
    tx: SyncSender<Job>,
}

const WORKER_STACK: usize = 1024 * 1024;

impl Pool {
    pub fn start(
        cfg: Arc<Config>,
        workspace: PathBuf,
        to_reactor: tokio::sync::mpsc::Sender<ToReactor>,
    ) -> Result<Pool, String> {
        let mut agents = HashMap::new();
        for (id, p) in &cfg.models.providers {
            let route = crate::net::route_for(&cfg, crate::net::Owner::Provider(id))?;
            agents.insert(id.clone(), provider::agent(p, &route)?);
        }
        let tools = tools::Registry::new(&cfg, &workspace)?;
        let ctx = Arc::new(Ctx {
            cfg: cfg.clone(),
            agents,
            tools,
            workspace,
        });
        let n = cfg.agents.defaults.max_concurrent;
        let (tx, rx) = sync_channel::<Job>(n * 2);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let ctx = ctx.clone();
            let out = to_reactor.clone();
            std::thread::Builder::new()
                .name(format!("agent-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || worker(&rx, &ctx, &out))
                .map_err(|e| format!("cannot start agent worker: {e}"))?;
        }
        Ok(Pool { tx })
    }

    /// Queues a job, or hands it back when the queue is full.
    pub fn try_submit(&self, job: Job) -> Result<(), Job> {
        self.tx.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(j)
            | std::sync::mpsc::TrySendError::Disconnected(j) => j,
        })
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, ctx: &Ctx, out: &tokio::sync::mpsc::Sender<ToReactor>) {
    loop {
        let job = {
            let guard = match rx.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match guard.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let run_id = job.run_id;
        let mut emit = |event: RunEvent| {
            let _ = out.blocking_send(ToReactor::Run(RunUpdate { run_id, event }));
        };
        run(ctx, job, &mut emit);
    }
}

/// Budget for the transcript placed in a request, from the primary model's
/// context window: (characters, turns).
pub fn history_budget(cfg: &Config) -> (usize, usize) {
    let window = cfg
        .agents
        .defaults
        .model
        .primary
        .as_deref()
        .and_then(|r| crate::config::find_model(cfg, r))
        .map(|(_, _, m)| (m.context_window, m.max_tokens))
        .unwrap_or((4096, 512));
    let tokens = window
        .0
        .saturating_sub(window.1)
        .saturating_sub(prompt::RESERVE_TOKENS) as usize;
    (tokens * prompt::CHARS_PER_TOKEN, 64)
}

pub fn turn_message(t: Turn) -> Message {
    match t.kind {
        TurnKind::Message => t.message,
        TurnKind::Summary => {
            let text: String = t
                .message
                .parts
                .iter()
                .filter_map(|p| {
                    if let Part::Text(s) = p {
                        Some(s.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            Message {
                role: Role::User,
                parts: vec![Part::Text(format!(
                    "[Summary of the earlier conversation]\n{text}"
                ))],
            }
        }
    }
}

/// One model in the chain, resolved from "provider/model".
struct Candidate<'a> {
    label: String,
    pid: &'a str,
    provider: &'a Provider,
    model: &'a ModelDef,
}

fn chain<'a>(cfg: &'a Config, skip: &[String]) -> Vec<Candidate<'a>> {
    let sel = &cfg.agents.defaults.model;
    let mut refs: Vec<&str> = sel.primary.iter().map(String::as_str).collect();
    refs.extend(sel.fallbacks.iter().map(String::as_str));
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
    tool_calls: Vec<(String, String, String)>,
    model: String,
    usage: (u64, u64),
}

pub fn run(ctx: &Ctx, job: Job, emit: &mut dyn FnMut(RunEvent)) {
    let deadline = Instant::now() + Duration::from_secs(job.deadline_s);
    let cfg = &ctx.cfg;
    let candidates = chain(cfg, &job.skip_models);
    if candidates.is_empty() {
        emit(RunEvent::Error {
            message: "no model configured: set agents.defaults.model.primary".into(),
            kind: "config".into(),
        });
        return;
    }
    let system = prompt::system_prompt(ctx);
    let mut messages = job.history;
    messages.push(job.user.clone());
    let mut new_messages = vec![job.user];
    let mut usage = (0u64, 0u64);
    let max_rounds = cfg.agents.defaults.max_rounds.max(1);
    for round in 0..max_rounds {
        let reply = match call_chain(
            ctx,
            &candidates,
            &system,
            &messages,
            &job.cancel,
            deadline,
            emit,
        ) {
            Ok(r) => r,
            Err(e) => {
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
        usage.0 += reply.usage.0;
        usage.1 += reply.usage.1;
        messages.push(reply.message.clone());
        new_messages.push(reply.message);
        if reply.tool_calls.is_empty() {
            emit(RunEvent::Final {
                messages: new_messages,
                text: reply.text,
                model: reply.model,
                usage,
            });
            return;
        }
        let last_round = round + 1 == max_rounds;
        let mut results = Vec::new();
        for (id, name, args) in reply.tool_calls {
            let summary = tools::summarize_args(&args);
            emit(RunEvent::Tool {
                name: name.clone(),
                phase: "start",
                summary: summary.clone(),
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
        let msg = Message {
            role: Role::User,
            parts: results,
        };
        messages.push(msg.clone());
        new_messages.push(msg);
        if last_round {
            // One more call without tools would exceed the limit; end with a note.
            let text = format!("(stopped after {max_rounds} tool rounds; raise agents.defaults.maxRounds to allow more)");
            let m = Message {
                role: Role::Assistant,
                parts: vec![Part::Text(text.clone())],
            };
            new_messages.push(m);
            emit(RunEvent::Final {
                messages: new_messages,
                text,
                model: reply.model,
                usage,
            });
            return;
        }
    }
}

fn call_chain(
    ctx: &Ctx,
    candidates: &[Candidate],
    system: &str,
    messages: &[Message],
    cancel: &AtomicBool,
    deadline: Instant,
    emit: &mut dyn FnMut(RunEvent),
) -> Result<Reply, CallError> {
    let mut last_err: Option<CallError> = None;
    for (i, c) in candidates.iter().enumerate() {
        let Some(agent) = ctx.agents.get(c.pid) else {
            continue;
        };
        let req = ChatRequest {
            model: c.model.id.clone(),
            system: system.to_string(),
            messages: messages.to_vec(),
            tools: ctx.tools.specs().to_vec(),
            max_tokens: c.model.max_tokens,
            temperature: ctx.cfg.agents.defaults.temperature,
            reasoning_budget: if c.model.reasoning {
                Some(ctx.cfg.agents.defaults.thinking_budget)
            } else {
                None
            },
            accepts_images: c.model.input.iter().any(|i| i == "image"),
        };
        let call_deadline =
            deadline.min(Instant::now() + Duration::from_secs(c.provider.timeouts.total));
        let mut text = String::new();
        let mut thinking = String::new();
        let mut signature: Option<String> = None;
        let mut calls = Vec::new();
        let mut usage = (0, 0);
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
            } => calls.push((id, name, arguments)),
            StreamEvent::Usage {
                input_tokens,
                output_tokens,
            } => usage = (input_tokens, output_tokens),
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
                for (id, name, args) in &calls {
                    parts.push(Part::ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: args.clone(),
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
