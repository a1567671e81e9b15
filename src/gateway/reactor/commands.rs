//! In-chat commands inside the reactor: what `/new` `/reset` `/status`
//! `/model` `/think` `/compact` `/stop` `/help` `/whoami` do (parsing is
//! `channel::commands`), and the per-session `/model` and `/think` choices, kept in the store's kv table
//! (bounded). Commands never reach the model.

use super::{Reactor, Running};
use crate::channel::commands::{command_name, parse, think_budget, Command, Parsed, MENU};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

const KV_PREFS: &str = "session/prefs";
/// Sessions whose `/model` or `/think` choice is remembered.
const MAX_PREFS: usize = 256;
/// Sessions whose last run error is remembered for `/status`.
const MAX_ERRORS: usize = 256;

/// Who sent a command, and from where.
pub struct Asker {
    pub session: String,
    /// The channel's sender id and name (`None` for the web chat and CLI).
    pub sender: Option<(String, String)>,
    /// The owner may switch models and reset shared chats.
    pub owner: bool,
    pub group: bool,
}

/// What a command asks of the caller besides its reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub reply: String,
    /// `/new some text`: the text then goes to the model in the new session.
    pub then_run: Option<String>,
    /// `/compact`: start a compaction run.
    pub compact: bool,
}

impl Answer {
    fn say(reply: impl Into<String>) -> Answer {
        Answer {
            reply: reply.into(),
            ..Answer::default()
        }
    }
}

/// A session's own choices.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Prefs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think: Option<String>,
}

/// Command state the reactor owns.
#[derive(Default)]
pub struct ChatState {
    prefs: BTreeMap<String, Prefs>,
    last_error: HashMap<String, String>,
}

impl ChatState {
    pub fn load(store: &crate::store::Store) -> ChatState {
        let prefs = store
            .kv_get(KV_PREFS)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        ChatState {
            prefs,
            last_error: HashMap::new(),
        }
    }

    pub fn prefs(&self, session: &str) -> Option<&Prefs> {
        self.prefs.get(session)
    }

    /// Remembers a run's failure for `/status` (bounded).
    pub fn note_error(&mut self, session: &str, error: &str) {
        if self.last_error.len() >= MAX_ERRORS && !self.last_error.contains_key(session) {
            self.last_error.clear();
        }
        let line = format!(
            "{} {}",
            crate::util::rfc3339(crate::util::now_ms()),
            crate::util::truncate(error, 300)
        );
        self.last_error.insert(session.to_string(), line);
    }
}

impl Reactor {
    /// The model and reasoning budget a session's runs use, from `/model`
    /// and `/think`.
    pub(super) fn session_choices(&self, session: &str) -> (Option<String>, Option<u32>) {
        let Some(p) = self.chat.prefs(session) else {
            return (None, None);
        };
        let think = p
            .think
            .as_deref()
            .and_then(|t| think_budget(t, self.cfg.agents.defaults.thinking_budget));
        (p.model.clone(), think)
    }

    fn set_prefs(&mut self, session: &str, f: impl FnOnce(&mut Prefs)) {
        let prefs = &mut self.chat.prefs;
        if prefs.len() >= MAX_PREFS && !prefs.contains_key(session) {
            // Forget an arbitrary other session's choice: the map stays bounded.
            if let Some(k) = prefs.keys().next().cloned() {
                prefs.remove(&k);
            }
        }
        let p = prefs.entry(session.to_string()).or_default();
        f(p);
        if p.model.is_none() && p.think.is_none() {
            prefs.remove(session);
        }
        let bytes = serde_json::to_vec(&self.chat.prefs).unwrap_or_default();
        if let Err(e) = self.store.kv_put(KV_PREFS, &bytes) {
            log::error!("cannot persist session choices: {e}");
        }
    }

    /// Answers one command.
    fn chat_command(&mut self, who: &Asker, command: Command, args: &str) -> Answer {
        let s = who.session.as_str();
        match command {
            Command::Help => {
                let mut t = String::from("Commands:\n");
                for (name, help) in MENU {
                    t.push_str(&format!("/{name} — {help}\n"));
                }
                t.push_str("Anything else goes to the assistant.");
                Answer::say(t)
            }
            Command::Whoami => match &who.sender {
                Some((id, name)) => Answer::say(format!(
                    "Your sender id is {id}{}. Put it in allowFrom (or owner) in pinch.json to allow you.",
                    if name.is_empty() { String::new() } else { format!(" ({name})") }
                )),
                None => Answer::say(format!(
                    "You are the operator of this gateway (web chat / CLI), in session {s}."
                )),
            },
            Command::Stop => {
                let mut stopped = 0;
                let mut typing = Vec::new();
                for r in self.runs.values().filter(|r| r.session == s) {
                    r.cancel.store(true, Ordering::SeqCst);
                    stopped += 1;
                    if let super::Origin::Channel { channel, inbound, .. } = &r.origin {
                        typing.push((channel.clone(), inbound.clone()));
                    }
                }
                // The typing indicator stops now, not when the run notices.
                for (channel, inbound) in typing {
                    self.channel_progress_stop(channel, inbound);
                }
                Answer::say(if stopped > 0 {
                    "Stopped."
                } else {
                    "Nothing is running."
                })
            }
            Command::New => {
                if who.group && !who.owner {
                    return Answer::say("Only the owner can start this group's conversation over.");
                }
                if self.busy.contains_key(s) {
                    return Answer::say(
                        "An answer is still being written; /stop it first, then /new.",
                    );
                }
                match self.archive_session(s) {
                    Ok(archived) => {
                        let reply = match archived {
                            Some(k) => format!("New conversation. The old one is archived as {k}."),
                            None => "New conversation.".to_string(),
                        };
                        Answer {
                            reply,
                            then_run: Some(args.to_string()).filter(|a| !a.is_empty()),
                            compact: false,
                        }
                    }
                    Err(e) => Answer::say(format!("Could not start over: {e}")),
                }
            }
            Command::Status => Answer::say(self.status_text(s)),
            Command::Model => {
                let current = self
                    .chat
                    .prefs(s)
                    .and_then(|p| p.model.clone())
                    .or_else(|| self.cfg.agents.defaults.model.primary.clone())
                    .unwrap_or_else(|| "none".into());
                let refs = crate::config::model_refs(&self.cfg);
                if args.is_empty() {
                    return Answer::say(format!(
                        "Model: {current}. Available: {}. Switch with /model provider/model, back with /model default.",
                        refs.join(", ")
                    ));
                }
                if !who.owner {
                    return Answer::say("Only the owner can switch models.");
                }
                if args == "default" {
                    self.set_prefs(s, |p| p.model = None);
                    let primary = self.cfg.agents.defaults.model.primary.clone();
                    return Answer::say(format!(
                        "Back to the default model ({}).",
                        primary.unwrap_or_default()
                    ));
                }
                if crate::config::find_model(&self.cfg, args).is_none() {
                    return Answer::say(format!(
                        "{args} is not configured. Available: {}",
                        refs.join(", ")
                    ));
                }
                let m = args.to_string();
                self.set_prefs(s, |p| p.model = Some(m));
                Answer::say(format!("This chat now uses {args}. /model default switches back."))
            }
            Command::Think => {
                let current = self
                    .chat
                    .prefs(s)
                    .and_then(|p| p.think.clone())
                    .unwrap_or_else(|| "default".into());
                if args.is_empty() {
                    return Answer::say(format!(
                        "Thinking: {current}. Set with /think off | low | medium | high (used by reasoning models)."
                    ));
                }
                let level = args.to_ascii_lowercase();
                if level == "default" {
                    self.set_prefs(s, |p| p.think = None);
                    return Answer::say("Thinking: default.");
                }
                if think_budget(&level, 0).is_none() {
                    return Answer::say("Use /think off, low, medium or high.");
                }
                let reply = format!("Thinking: {level}.");
                self.set_prefs(s, |p| p.think = Some(level));
                Answer::say(reply)
            }
            Command::Compact => {
                if self.busy.contains_key(s) {
                    return Answer::say("An answer is still being written; try /compact when it is done.");
                }
                Answer {
                    reply: "Compacting…".into(),
                    then_run: None,
                    compact: true,
                }
            }
        }
    }

    /// Archives a session's transcript and forgets it in memory.
    pub(super) fn archive_session(&mut self, session: &str) -> Result<Option<String>, String> {
        let archived = self.store.archive(session, crate::util::now_ms())?;
        self.sessions.map.remove(session);
        if let Some(k) = &archived {
            log::info!("session {session}: started over; the transcript is archived as {k}");
        }
        Ok(archived)
    }

    fn status_text(&self, s: &str) -> String {
        let (model, think) = self
            .chat
            .prefs(s)
            .map(|p| (p.model.clone(), p.think.clone()))
            .unwrap_or((None, None));
        let primary = self
            .cfg
            .agents
            .defaults
            .model
            .primary
            .clone()
            .unwrap_or_default();
        let model_line = match model {
            Some(m) => format!("Model: {m} (this chat; default {primary})"),
            None => format!("Model: {primary}"),
        };
        let (budget, _) = crate::agent::history_budget(&self.cfg, self.pool.overhead_chars);
        let meta = self.store.session(s).ok().flatten();
        let used = meta.as_ref().map(|m| m.unsummarized_chars()).unwrap_or(0);
        let pct = used.saturating_mul(100) / (budget.max(1) as u64);
        let compacted = if meta.as_ref().and_then(|m| m.summary_seq).is_some() {
            ", compacted before"
        } else {
            ""
        };
        let turns = meta.as_ref().map(|m| m.next_seq).unwrap_or(0);
        let running = self.runs.values().any(|r: &Running| r.session == s);
        let waiting = self.busy.get(s).map(|q| q.len()).unwrap_or(0);
        let q = crate::queue::stats(&self.store, crate::util::now_ms()).ok();
        let (depth, dead) = q.map(|q| (q.depth, q.dead)).unwrap_or((0, 0));
        let health_err = self
            .model_health
            .iter()
            .filter(|(_, health)| health.failures > 0)
            .map(|(model, health)| format!("{model}: {}", health.last_error))
            .next();
        let last_error = self
            .chat
            .last_error
            .get(s)
            .cloned()
            .or(health_err)
            .unwrap_or_else(|| "none".into());
        format!(
            "{model_line}\nThinking: {}\nContext: about {} of {} tokens ({pct}%), {turns} turns{compacted}\nQueue: {}, {waiting} waiting; outbound {depth} queued, {dead} dead letters\nLast error: {last_error}\nSession: {s}",
            think.unwrap_or_else(|| "default".into()),
            used / crate::agent::prompt::CHARS_PER_TOKEN as u64,
            budget / crate::agent::prompt::CHARS_PER_TOKEN,
            if running { "answering" } else { "idle" },
        )
    }

    /// A command from a WebSocket client (`chat.send` with `/…` text).
    /// Returns the `chat.send` answer, or `None` when the text is for the
    /// model (after `/new rest`: `text` is the rest, `note` the reply).
    pub(super) fn client_command(
        &mut self,
        conn: u64,
        session: &str,
        text: &mut String,
        note: &mut Option<(&'static str, String)>,
    ) -> Option<super::CallResult> {
        let (command, args) = match parse(text, None) {
            Parsed::Text => return None,
            Parsed::OtherBot => {
                return Some(Ok(
                    json!({"session": session, "command": "ignored", "text": ""}),
                ))
            }
            Parsed::Command { command, args } => (command, args.to_string()),
        };
        let who = Asker {
            session: session.to_string(),
            sender: None,
            owner: true,
            group: false,
        };
        let answer = self.chat_command(&who, command, &args);
        let name = command_name(command);
        if answer.compact {
            return Some(self.start_compaction(session, super::Origin::Client(conn)).map(
                |run| json!({"runId": run.to_string(), "session": session, "queued": false, "command": name, "text": answer.reply}),
            ));
        }
        match answer.then_run {
            Some(rest) => {
                // The caller starts the run and answers with the reply too.
                *text = rest;
                *note = Some((name, answer.reply));
                None
            }
            None => Some(Ok(
                json!({"session": session, "command": name, "text": answer.reply}),
            )),
        }
    }

    /// Starts a run that only compacts the session; returns its run id.
    fn start_compaction(
        &mut self,
        session: &str,
        origin: super::Origin,
    ) -> Result<u64, crate::api_error::ApiError> {
        let run_id = self.new_run_id();
        let pending = super::Pending {
            origin,
            text: String::new(),
            run_id,
            run: crate::agent::prompt::RunContext {
                compact_only: true,
                ..Default::default()
            },
        };
        self.enqueue_run(session, pending)?;
        Ok(run_id)
    }

    /// A command arriving on a channel, already committed to the inbox.
    /// Returns false when the message is for the model (its text possibly
    /// replaced by `/new`'s rest).
    pub(crate) fn channel_command(
        &mut self,
        env: &mut crate::channel::Envelope,
        session: &str,
    ) -> bool {
        let (command, args) = match parse(&env.text, None) {
            Parsed::Text => return false,
            Parsed::OtherBot => (None, String::new()),
            Parsed::Command { command, args } => (Some(command), args.to_string()),
        };
        let inbound = crate::queue::inbound_id(env);
        let channel = env.channel.clone();
        let target = crate::channel::ReplyTarget::from_envelope(env, false);
        let Some(command) = command else {
            self.command_done(&channel, &inbound, session, &target, "");
            return true;
        };
        let who = Asker {
            session: session.to_string(),
            sender: Some((env.sender_id.clone(), env.sender_name.clone())),
            owner: self.is_owner(env),
            group: env.chat_kind == crate::channel::ChatKind::Group,
        };
        let answer = self.chat_command(&who, command, &args);
        if answer.compact {
            let origin = super::Origin::Channel {
                channel: channel.clone(),
                inbound: inbound.clone(),
                target: target.clone(),
            };
            match self.start_compaction(session, origin) {
                Ok(_) => {
                    self.channels.run_started(&channel, &inbound);
                }
                Err(e) => {
                    let text = format!("Could not compact: {}", e.message);
                    self.command_done(&channel, &inbound, session, &target, &text);
                }
            }
            return true;
        }
        match answer.then_run {
            Some(rest) => {
                // The reply goes out now; the rest runs like a message.
                if let Err(e) = self.deliver(
                    session,
                    &target,
                    &[],
                    crate::llm::TokenUsage::default(),
                    None,
                    &answer.reply,
                ) {
                    log::warn!("{channel}: cannot queue the command's reply: {e}");
                }
                env.text = rest;
                false
            }
            None => {
                self.command_done(&channel, &inbound, session, &target, &answer.reply);
                true
            }
        }
    }

    /// Marks a command's inbound message answered, queueing `reply` (none
    /// when empty) in the same transaction.
    fn command_done(
        &mut self,
        channel: &str,
        inbound: &str,
        session: &str,
        target: &crate::channel::ReplyTarget,
        reply: &str,
    ) {
        if let Err(e) = self.deliver(
            session,
            target,
            &[],
            crate::llm::TokenUsage::default(),
            Some(crate::queue::InboundKey {
                channel,
                id: inbound,
            }),
            reply,
        ) {
            log::error!("{channel}: could not commit the command's reply: {e}");
        }
    }
}
