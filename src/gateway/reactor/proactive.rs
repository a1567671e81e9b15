//! Proactivity, inside the reactor: scheduled jobs, the heartbeat and
//! webhook runs. Each is a trigger, a prompt (a skill hint and the message,
//! or the HEARTBEAT.md checklist), an agent run through the same per-session
//! queue as chat, and delivery of the answer to a channel in the transaction
//! that records it. The job table (`sched::Scheduler`) is pure: this file
//! gives it the clock, persists its snapshot in the store's kv table after
//! every change and every run, and turns due jobs into runs.

use super::{err, CallResult, Enqueued, Origin, Pending, Reactor, MAX_TEXT};
use crate::agent::{NewSummary, RunEvent, RunUpdate};
use crate::api_error::{ApiError, ErrorCode};
use crate::channel::ReplyTarget;
use crate::config::Config;
use crate::llm::{CacheUsage, Message, Part, Role, TokenUsage};
use crate::sched::heartbeat::{checklist_is_empty, is_nothing_to_report, next_beat};
use crate::sched::{
    parse_at, parse_every, HeartbeatConfig, JobSpec, JobState, Outcome, Scheduler, SessionTarget,
    Trigger, NOTHING_TO_REPORT,
};
use crate::store::{Store, Turn, TurnKind};
use crate::util::{now_ms, rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const KV_JOBS: &str = "sched/jobs";
const KV_JOBS_UNREADABLE: &str = "sched/jobs.unreadable";
const KV_HEARTBEAT: &str = "sched/heartbeat";
/// The owner's last chat as `channel:chat` (the first format; still written
/// for a binary rolled back to a release that reads only this).
const KV_LAST_CHAT: &str = "sched/lastChat";
/// The owner's last chat as a typed reply target (with its thread).
const KV_LAST_REPLY_TARGET: &str = "sched/lastReplyTarget";
/// Scheduled jobs at most.
const MAX_JOBS: usize = 100;
/// The reactor looks at the clock at least this often, so a wall-clock
/// step (NTP after boot on a board without a battery clock) is noticed.
const MAX_SLEEP_MS: u64 = 60_000;
const HEARTBEAT_SESSION: &str = "heartbeat";
/// Bytes of HEARTBEAT.md read.
const MAX_CHECKLIST: u64 = 16 * 1024;
const JOB_FIELDS: [&str; 13] = [
    "name", "message", "cron", "tz", "every", "at", "skill", "model", "session", "to", "catchUp",
    "jitter", "enabled",
];

/// What started a proactive run.
enum Kind {
    Job(String),
    Heartbeat,
    Hook(String),
}

/// A proactive run between its start and its end.
struct Active {
    kind: Kind,
    deliver_to: Option<String>,
    model: Option<String>,
    started_ms: u64,
}

impl Active {
    /// Delivery attempts of the answer: heartbeat alerts have their own
    /// bound (`heartbeat.maxAttempts`), so one unreachable chat never
    /// holds later beats' alerts; everything else follows `queue.maxAttempts`.
    fn max_attempts(&self, heartbeat: Option<&HeartbeatConfig>) -> Option<u32> {
        match self.kind {
            Kind::Heartbeat => Some(
                heartbeat
                    .and_then(|h| h.max_attempts)
                    .unwrap_or(crate::sched::heartbeat::DEFAULT_MAX_ATTEMPTS),
            ),
            _ => None,
        }
    }
}

/// What became of a run's answer.
enum Settled {
    Delivered(String),
    /// A heartbeat with nothing to report: neither delivered nor recorded.
    Quiet,
    /// Recorded in the session only; the reason.
    Undelivered(String),
}

/// Heartbeat state; the persisted part survives restarts.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Beat {
    last_ms: Option<u64>,
    last_result: Option<String>,
    beats: u64,
    alerts: u64,
    #[serde(skip)]
    next_ms: Option<u64>,
    #[serde(skip)]
    running: bool,
}

/// The reactor's proactive state.
pub(super) struct Proactive {
    sched: Scheduler,
    active: HashMap<u64, Active>,
    /// Where answers go when a job names no target: the chat (and thread
    /// or forum topic) the owner used last.
    last_chat: Option<ReplyTarget>,
    heartbeat: Option<HeartbeatConfig>,
    beat: Beat,
    /// Per configured hook: the last run's result.
    hooks_last: BTreeMap<String, String>,
    rng: u64,
}

impl Proactive {
    /// Restores jobs, heartbeat state and the last chat from the store. A
    /// job missed while the gateway was down runs once (if it catches up).
    pub(super) fn load(cfg: &Config, store: &Store) -> Proactive {
        let now = now_ms();
        let stored = match store.kv_get(KV_JOBS) {
            Ok(found) => found,
            Err(e) => {
                log::error!("cannot read the stored jobs: {e}");
                None
            }
        };
        let jobs: Vec<(JobSpec, JobState)> = match &stored {
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(j) => j,
                Err(e) => {
                    log::error!("the stored jobs are unreadable ({e}); starting without them (kept under {KV_JOBS_UNREADABLE})");
                    let _ = store.kv_put(KV_JOBS_UNREADABLE, bytes);
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let mut sched = Scheduler::restore(jobs, now);
        let seeded = super::consolidate::seed(&mut sched, cfg, now);
        let mut beat: Beat = store
            .kv_get(KV_HEARTBEAT)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let heartbeat = cfg.agents.defaults.heartbeat.clone();
        beat.next_ms = heartbeat
            .as_ref()
            .and_then(|h| next_beat(h, beat.last_ms, now));
        let last_chat = load_last_chat(store);
        let p = Proactive {
            sched,
            active: HashMap::new(),
            last_chat,
            heartbeat,
            beat,
            hooks_last: BTreeMap::new(),
            rng: now ^ (u64::from(std::process::id()) << 32) | 1,
        };
        if table_changed(&p.sched, seeded, stored.as_deref()) {
            save_jobs(store, &p.sched);
        }
        p
    }
}

/// The owner's last chat: the typed record, else the `channel:chat` string
/// an earlier release stored (no thread).
fn load_last_chat(store: &Store) -> Option<ReplyTarget> {
    let typed = store
        .kv_get(KV_LAST_REPLY_TARGET)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| target_from_json(&v));
    if typed.is_some() {
        return typed;
    }
    let old = store.kv_get(KV_LAST_CHAT).ok().flatten()?;
    let text = String::from_utf8(old).ok()?;
    match ReplyTarget::parse(text.trim()) {
        Ok(target) => Some(target),
        Err(e) => {
            log::warn!("the stored last chat is unreadable ({e}); jobs without a target wait for the owner's next message");
            None
        }
    }
}

/// `{"channel","account","chat","thread"}`: the stored last chat.
fn target_json(to: &ReplyTarget) -> Value {
    json!({"channel": to.channel, "account": to.account, "chat": to.chat_id, "thread": to.thread_id})
}

fn target_from_json(v: &Value) -> Option<ReplyTarget> {
    let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    Some(ReplyTarget {
        channel: field("channel")?.to_string(),
        account: field("account").unwrap_or("default").to_string(),
        chat_id: field("chat")?.to_string(),
        thread_id: field("thread").map(str::to_string),
        reply_to: None,
    })
}

/// `channel:chat`, with the thread when there is one (`#thread`), for
/// status lines and results.
fn describe(target: &ReplyTarget) -> String {
    match &target.thread_id {
        Some(thread) => format!("{}#{thread}", target.chat()),
        None => target.chat(),
    }
}

/// What the schedule asks the reactor to do at a given time.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ProactiveAction {
    /// Start the job of this name (its run, or the skip it records).
    StartJob(String),
    /// Persist the job table: due jobs moved their next run on.
    SaveJobs,
    /// Run the heartbeat.
    StartBeat,
}

impl Proactive {
    /// Milliseconds until the schedule next needs a look (a job or a beat
    /// due), at most `MAX_SLEEP_MS`.
    pub(super) fn wait_ms(&self, now: u64) -> u64 {
        let beat = if self.beat.running {
            None
        } else {
            self.beat.next_ms
        };
        [self.sched.next_wake(), beat]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_sub(now))
            .unwrap_or(MAX_SLEEP_MS)
            .min(MAX_SLEEP_MS)
    }

    /// What is due at `now`: jobs first (then their table is saved), then
    /// the heartbeat unless one is running.
    pub(super) fn due(&mut self, now: u64) -> Vec<ProactiveAction> {
        let rng = &mut self.rng;
        let jobs = self.sched.due(now, &mut |max| {
            crate::util::xorshift(rng) % max.saturating_add(1)
        });
        let mut actions: Vec<ProactiveAction> =
            jobs.into_iter().map(ProactiveAction::StartJob).collect();
        if !actions.is_empty() {
            actions.push(ProactiveAction::SaveJobs);
        }
        if !self.beat.running && self.beat.next_ms.is_some_and(|t| t <= now) {
            actions.push(ProactiveAction::StartBeat);
        }
        actions
    }
}

/// Whether the job table must be stored after a restart: restoring may have
/// marked interrupted runs or skipped slots, and seeding may have added or
/// removed the built-in job; but a table byte for byte the stored one is
/// not rewritten (a commit is an fsync, and start-up time on an SD card is
/// mostly fsyncs).
fn table_changed(sched: &Scheduler, seeded: bool, stored: Option<&[u8]>) -> bool {
    if !seeded && sched.list().is_empty() {
        return false;
    }
    // A table that cannot be serialized counts as changed: saving it logs why.
    serde_json::to_vec(&sched.snapshot()).ok().as_deref() != stored
}

fn save_jobs(store: &Store, sched: &Scheduler) {
    let r = serde_json::to_vec(&sched.snapshot())
        .map_err(|e| e.to_string())
        .and_then(|b| store.kv_put(KV_JOBS, &b));
    if let Err(e) = r {
        log::error!("cannot persist the jobs: {e}");
    }
}

impl Reactor {
    /// When the loop should next look at the schedule.
    pub(super) fn proactive_deadline(&self) -> tokio::time::Instant {
        let wait = self.proactive.wait_ms(now_ms());
        tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
    }

    /// Saves the job table (at shutdown).
    pub(super) fn flush_proactive(&self) {
        save_jobs(&self.store, &self.proactive.sched);
    }

    /// Starts what is due: jobs, then the heartbeat.
    pub(super) fn proactive_tick(&mut self) {
        let now = now_ms();
        // Jobs and beats may queue messages: the next tick reads the queue.
        self.delivery_wake_ms = 0;
        self.sweep_lost(now);
        for action in self.proactive.due(now) {
            match action {
                ProactiveAction::StartJob(name) => self.start_job(&name, now),
                ProactiveAction::SaveJobs => save_jobs(&self.store, &self.proactive.sched),
                ProactiveAction::StartBeat => {
                    let _ = self.start_beat(now);
                }
            }
        }
    }

    /// Records a run that vanished from its session queue as failed, so its
    /// job is not "running" forever.
    fn sweep_lost(&mut self, now: u64) {
        let lost: Vec<u64> = self
            .proactive
            .active
            .keys()
            .copied()
            .filter(|id| {
                !self.runs.contains_key(id)
                    && !self
                        .busy
                        .values()
                        .any(|q| q.iter().any(|p| p.run_id == *id))
            })
            .collect();
        for id in lost {
            let active = self.proactive.active.remove(&id);
            self.record(
                active,
                now,
                Err("the run was lost from its session queue".into()),
            );
        }
    }

    /// The model a proactive run tries first.
    pub(super) fn run_model(&self, run_id: u64) -> Option<String> {
        self.proactive
            .active
            .get(&run_id)
            .and_then(|a| a.model.clone())
    }

    /// Notes the chat (and thread) the owner used last: where answers of
    /// jobs without a target go. Channel adapters call this for each
    /// message from the owner.
    pub(crate) fn note_chat(&mut self, to: &ReplyTarget) {
        let to = ReplyTarget {
            reply_to: None,
            ..to.clone()
        };
        if self.proactive.last_chat.as_ref() == Some(&to) {
            return;
        }
        let typed = target_json(&to).to_string();
        let r = self
            .store
            .kv_put(KV_LAST_REPLY_TARGET, typed.as_bytes())
            .and_then(|()| self.store.kv_put(KV_LAST_CHAT, to.chat().as_bytes()));
        if let Err(e) = r {
            log::error!("cannot persist the last chat: {e}");
        }
        self.proactive.last_chat = Some(to);
    }

    /// The owner's last chat, for the `message` tool's `"owner"` target.
    pub(super) fn owner_chat(&self) -> Option<&ReplyTarget> {
        self.proactive.last_chat.as_ref()
    }

    fn start_job(&mut self, name: &str, now: u64) {
        let Some(spec) = self.proactive.sched.get(name).map(|(s, _)| s.clone()) else {
            return;
        };
        let session = match spec.session {
            SessionTarget::Own => format!("cron:{}", spec.name),
            SessionTarget::Main => "main".to_string(),
        };
        let active = Active {
            kind: Kind::Job(spec.name.clone()),
            deliver_to: spec.deliver_to.clone(),
            model: spec.model.clone(),
            started_ms: now,
        };
        let text = if spec.name == super::consolidate::JOB {
            match super::consolidate::prompt(&self.cfg, &self.pool.workspace, now) {
                Some(t) => t,
                None => {
                    let why = Outcome::Skipped("no daily notes since the last run".into());
                    self.proactive.sched.finished(name, now, why);
                    return;
                }
            }
        } else {
            with_skill(&spec.message, spec.skill.as_deref())
        };
        match self.start_proactive(&session, text, active) {
            Ok((run, _)) => log::info!("job \"{name}\": run {run} started in session {session}"),
            Err(ApiError { message: msg, .. }) => {
                log::warn!("job \"{name}\" could not start: {msg}");
                self.proactive
                    .sched
                    .finished(name, now, Outcome::Error(msg));
            }
        }
    }

    /// Starts (or queues behind the session's current run) an agent run
    /// whose end is handled here. Returns the run id and whether it waits.
    fn start_proactive(
        &mut self,
        session: &str,
        text: String,
        active: Active,
    ) -> Result<(u64, bool), ApiError> {
        let run_id = self.new_run_id();
        let pending = Pending {
            origin: Origin::Job,
            text,
            run_id,
            run: Default::default(),
        };
        self.proactive.active.insert(run_id, active);
        match self.enqueue_run(session, pending) {
            Ok(enqueued) => Ok((run_id, enqueued == Enqueued::Queued)),
            Err(e) => {
                self.proactive.active.remove(&run_id);
                Err(e)
            }
        }
    }

    /// Runs the heartbeat now: an empty checklist costs no model call.
    fn start_beat(&mut self, now: u64) -> CallResult {
        let Some(cfg) = self.proactive.heartbeat.clone() else {
            return Err(err(
                ErrorCode::NotFound,
                "no heartbeat configured: set agents.defaults.heartbeat, e.g. {\"every\": \"30m\"}",
            ));
        };
        if self.proactive.beat.running {
            return Err(err(ErrorCode::Busy, "a heartbeat is already running"));
        }
        if let Some(why) = self.owner_idle(cfg.skip_idle_days, now) {
            self.beat_done(now, now, why, false);
            return Ok(json!({"started": false, "reason": "the owner has been idle"}));
        }
        let checklist = read_checklist(&self.pool.workspace.join("HEARTBEAT.md"));
        if checklist_is_empty(&checklist) {
            self.beat_done(now, now, "empty checklist: no model call".into(), false);
            return Ok(json!({"started": false, "reason": "HEARTBEAT.md has nothing to check"}));
        }
        let active = Active {
            kind: Kind::Heartbeat,
            deliver_to: cfg.to.clone(),
            model: cfg.model.clone(),
            started_ms: now,
        };
        match self.start_proactive(HEARTBEAT_SESSION, heartbeat_prompt(&checklist), active) {
            Ok((run, _)) => {
                self.proactive.beat.running = true;
                Ok(json!({"started": true, "runId": run.to_string(), "session": HEARTBEAT_SESSION}))
            }
            Err(e) => {
                self.beat_done(now, now, format!("error: {}", e.message), false);
                Err(e)
            }
        }
    }

    fn beat_done(&mut self, started: u64, now: u64, result: String, alert: bool) {
        log::info!("heartbeat: {result}");
        let b = &mut self.proactive.beat;
        b.running = false;
        b.last_ms = Some(started);
        b.beats += 1;
        if alert {
            b.alerts += 1;
        }
        b.last_result = Some(result);
        b.next_ms = self
            .proactive
            .heartbeat
            .as_ref()
            .and_then(|c| next_beat(c, Some(started), now));
        let r = serde_json::to_vec(&self.proactive.beat)
            .map_err(|e| e.to_string())
            .and_then(|v| self.store.kv_put(KV_HEARTBEAT, &v));
        if let Err(e) = r {
            log::error!("cannot persist the heartbeat state: {e}");
        }
    }

    /// Keeps the run in its own session and reports the answer into
    /// `main`, delivered to the owner's last chat.
    #[allow(clippy::too_many_arguments)]
    fn settle_in_main(
        &mut self,
        session: &str,
        label: &str,
        turns: &[Turn],
        usage: TokenUsage,
        text: &str,
        now: u64,
        max_attempts: Option<u32>,
    ) -> Settled {
        match self.store.append(session, turns, usage, now) {
            Ok(meta) => self.sessions.put(meta),
            Err(e) => log::error!("session {session}: could not persist the turn: {e}"),
        }
        let to = self.proactive.last_chat.clone();
        match (
            self.report_to_main(label, to.as_ref(), text, now, max_attempts),
            to,
        ) {
            (Ok(()), Some(to)) => Settled::Delivered(describe(&to)),
            (Ok(()), None) => Settled::Undelivered(format!("no chat to deliver to: give a target (--to telegram:<chat>) or write to the assistant from a channel first; the answer is in session {session}, reported into main")),
            (Err(e), _) => Settled::Undelivered(format!("could not report into main: {e}; the answer is in session {session}")),
        }
    }

    /// The end of a proactive run (its final answer or its error).
    pub(super) fn job_run_ended(&mut self, u: RunUpdate) {
        let Some(session) = self.runs.get(&u.run_id).map(|r| r.session.clone()) else {
            return;
        };
        let active = self.proactive.active.remove(&u.run_id);
        let now = now_ms();
        let result = match u.event {
            RunEvent::Final {
                messages,
                text,
                model,
                usage,
                cache,
                summary,
            } => {
                self.note_cache(usage, cache);
                let turns = final_turns(now, messages, &model, usage, cache, summary);
                Ok(self.settle(&session, active.as_ref(), &turns, usage, &text, now))
            }
            RunEvent::Error { message, kind } => {
                self.runs_failed += 1;
                Err(format!("{kind}: {message}"))
            }
            _ => return,
        };
        self.finish(u.run_id, &session);
        self.record(active, now, result);
    }

    /// A queued proactive run that could not start.
    pub(super) fn job_start_failed(&mut self, run_id: u64, msg: String) {
        let active = self.proactive.active.remove(&run_id);
        self.record(active, now_ms(), Err(msg));
    }

    /// Delivers the answer (to the target, else the last chat) in the same
    /// transaction that records the turns; without either, records them only.
    fn settle(
        &mut self,
        session: &str,
        active: Option<&Active>,
        turns: &[Turn],
        usage: TokenUsage,
        text: &str,
        now: u64,
    ) -> Settled {
        let heartbeat = matches!(active.map(|a| &a.kind), Some(Kind::Heartbeat));
        if heartbeat && is_nothing_to_report(text) {
            return Settled::Quiet;
        }
        if matches!(active.map(|a| &a.kind), Some(Kind::Job(n)) if n == super::consolidate::JOB) {
            // Memory upkeep talks to nobody.
            return Settled::Quiet;
        }
        // Without a target, jobs and heartbeats report into the owner's main session.
        let report = active.and_then(|a| match (&a.kind, &a.deliver_to) {
            (Kind::Job(n), None) => Some(format!("job {n}")),
            (Kind::Heartbeat, None) => Some("heartbeat".to_string()),
            _ => None,
        });
        let max_attempts = active.and_then(|a| a.max_attempts(self.proactive.heartbeat.as_ref()));
        if let Some(label) = report.filter(|_| self.cfg.session.main_scope() && session != "main") {
            return self.settle_in_main(session, &label, turns, usage, text, now, max_attempts);
        }
        let target = match active.and_then(|a| a.deliver_to.as_deref()) {
            Some(to) => {
                Some(crate::channel::registry::check_target(to).map_err(|e| (to.to_string(), e)))
            }
            None => self.proactive.last_chat.clone().map(Ok),
        };
        let why = match target {
            Some(Ok(target)) => {
                match self.deliver_with(
                    session,
                    &target,
                    turns,
                    usage,
                    None,
                    text,
                    super::DeliveryOptions {
                        max_attempts,
                        ..Default::default()
                    },
                ) {
                    Ok(()) => return Settled::Delivered(describe(&target)),
                    Err(e) => format!("could not queue the answer for {}: {e}", describe(&target)),
                }
            }
            Some(Err((to, e))) => format!("could not queue the answer for {to}: {e}"),
            None => "no chat to deliver to: give a target (--to telegram:<chat>) or write to the assistant from a channel first".to_string(),
        };
        match self.store.append(session, turns, usage, now) {
            Ok(meta) => self.sessions.put(meta),
            Err(e) => log::error!("session {session}: could not persist the turn: {e}"),
        }
        Settled::Undelivered(format!("{why}; the answer is in session {session}"))
    }

    /// Notes how a proactive run ended, where its kind keeps such things.
    fn record(&mut self, active: Option<Active>, now: u64, result: Result<Settled, String>) {
        let Some(active) = active else {
            return;
        };
        match active.kind {
            Kind::Job(name) => {
                let outcome = match result {
                    Ok(Settled::Delivered(_)) | Ok(Settled::Quiet) => Outcome::Ok,
                    Ok(Settled::Undelivered(why)) => Outcome::Error(why),
                    Err(e) => Outcome::Error(e),
                };
                log::info!("job \"{name}\" finished: {}", outcome_str(&outcome));
                self.proactive.sched.finished(&name, now, outcome);
                save_jobs(&self.store, &self.proactive.sched);
            }
            Kind::Heartbeat => {
                let (text, alert) = match result {
                    Ok(Settled::Delivered(to)) => (format!("alert delivered to {to}"), true),
                    Ok(Settled::Quiet) => ("nothing to report".to_string(), false),
                    Ok(Settled::Undelivered(why)) => (format!("alert not delivered: {why}"), true),
                    Err(e) => (format!("error: {e}"), false),
                };
                self.beat_done(active.started_ms, now, text, alert);
            }
            Kind::Hook(name) => {
                let text = match result {
                    Ok(Settled::Delivered(to)) => format!("delivered to {to}"),
                    Ok(Settled::Quiet) => "nothing to report".to_string(),
                    Ok(Settled::Undelivered(why)) => format!("not delivered: {why}"),
                    Err(e) => format!("error: {e}"),
                };
                log::info!("hook \"{name}\": {text}");
                if self.cfg.hooks.contains_key(&name) {
                    let line = format!("{}: {text}", rfc3339(now));
                    self.proactive.hooks_last.insert(name, line);
                }
            }
        }
    }

    /// `cron.*`, `heartbeat.run` and `hook.run`.
    pub(super) fn proactive_call(&mut self, method: &str, params: Value) -> CallResult {
        let now = now_ms();
        let invalid = |e: String| err(ErrorCode::InvalidRequest, e);
        match method {
            "cron.list" => Ok(json!({"jobs": self.jobs_json(), "lastChat": self.last_chat_json()})),
            "cron.get" => {
                let name = name_param(&params)?;
                let (s, st) = self
                    .proactive
                    .sched
                    .get(&name)
                    .ok_or_else(|| err(ErrorCode::NotFound, no_job(&name)))?;
                Ok(job_json(s, st))
            }
            "cron.add" => {
                if self.proactive.sched.list().len() >= MAX_JOBS {
                    return Err(invalid(format!(
                        "there are already {MAX_JOBS} jobs, the most pinch keeps; remove some first"
                    )));
                }
                let spec = spec_from(&params, None, now, &self.cfg).map_err(invalid)?;
                let name = spec.name.clone();
                self.proactive.sched.add(spec, now).map_err(invalid)?;
                save_jobs(&self.store, &self.proactive.sched);
                log::info!("job \"{name}\" added");
                self.job_answer(&name)
            }
            "cron.edit" => {
                let name = name_param(&params)?;
                let base = self
                    .proactive
                    .sched
                    .get(&name)
                    .map(|(s, _)| s.clone())
                    .ok_or_else(|| err(ErrorCode::NotFound, no_job(&name)))?;
                let mut changes = params.clone();
                if let Some(o) = changes.as_object_mut() {
                    o.remove("name");
                    if let Some(r) = o.remove("rename") {
                        o.insert("name".into(), r);
                    }
                }
                let spec = spec_from(&changes, Some(&base), now, &self.cfg).map_err(invalid)?;
                let new_name = spec.name.clone();
                self.proactive
                    .sched
                    .edit(&name, spec, now)
                    .map_err(invalid)?;
                save_jobs(&self.store, &self.proactive.sched);
                self.job_answer(&new_name)
            }
            "cron.remove" => {
                let name = name_param(&params)?;
                if !self.proactive.sched.remove(&name) {
                    return Err(err(ErrorCode::NotFound, no_job(&name)));
                }
                save_jobs(&self.store, &self.proactive.sched);
                log::info!("job \"{name}\" removed");
                Ok(json!({"name": name, "removed": true}))
            }
            "cron.run" => {
                let name = name_param(&params)?;
                self.proactive.sched.run_now(&name, now).map_err(|e| {
                    if e.starts_with("no job") {
                        err(ErrorCode::NotFound, e)
                    } else {
                        err(ErrorCode::Busy, e)
                    }
                })?;
                self.proactive_tick();
                let run = self
                    .proactive
                    .active
                    .iter()
                    .find_map(|(id, a)| match &a.kind {
                        Kind::Job(n) if *n == name => Some(id.to_string()),
                        _ => None,
                    });
                let (_, st) = self
                    .proactive
                    .sched
                    .get(&name)
                    .ok_or_else(|| err(ErrorCode::NotFound, no_job(&name)))?;
                Ok(json!({"name": name, "runId": run, "outcome": outcome_text(&st.last_outcome)}))
            }
            "cron.lastChat" => {
                if let Some(to) = params.get("to").and_then(Value::as_str) {
                    let mut target = crate::channel::registry::check_target(to).map_err(invalid)?;
                    target.thread_id = params
                        .get("thread")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string);
                    self.note_chat(&target);
                }
                Ok(
                    json!({"lastChat": self.last_chat_json(), "lastChatThread": self.proactive.last_chat.as_ref().and_then(|t| t.thread_id.clone())}),
                )
            }
            "heartbeat.run" => self.start_beat(now),
            "hook.run" => self.run_hook(&params, now),
            other => Err(err(
                ErrorCode::MethodNotFound,
                format!("unknown method {other:?}; see docs/protocol.md"),
            )),
        }
    }

    fn job_answer(&self, name: &str) -> CallResult {
        let (s, st) = self
            .proactive
            .sched
            .get(name)
            .ok_or_else(|| err(ErrorCode::NotFound, no_job(name)))?;
        Ok(json!({"job": job_json(s, st)}))
    }

    /// `POST /hooks/<name>`, checked: unknown hook, wrong token and
    /// oversized body are refused before anything runs.
    fn run_hook(&mut self, p: &Value, now: u64) -> CallResult {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(hook) = self.cfg.hooks.get(name).cloned() else {
            return Err(err(ErrorCode::NotFound, format!("no hook named {name:?}")));
        };
        let presented = p.get("token").and_then(Value::as_str).unwrap_or("");
        if !token_matches(presented, &hook.token) {
            return Err(err(ErrorCode::Unauthorized,
                format!("missing or wrong hook token: send Authorization: Bearer <hooks.{name}.token> (or X-Pinch-Token)"),
            ));
        }
        let bytes = p.get("bytes").and_then(Value::as_u64).unwrap_or(0);
        if bytes > hook.max_body_bytes as u64 {
            return Err(err(
                ErrorCode::TooLarge,
                format!(
                    "body of {bytes} bytes is over hooks.{name}.maxBodyBytes ({})",
                    hook.max_body_bytes
                ),
            ));
        }
        let body = p.get("body").and_then(Value::as_str).unwrap_or("");
        let body = crate::util::truncate(body, hook.max_body_bytes);
        let text = with_skill(
            &hook.message.replace("{{body}}", body),
            hook.skill.as_deref(),
        );
        let session = format!("hook:{name}");
        let active = Active {
            kind: Kind::Hook(name.to_string()),
            deliver_to: hook.to.clone(),
            model: hook.model.clone(),
            started_ms: now,
        };
        let (run, queued) = self.start_proactive(&session, text, active)?;
        log::info!("hook \"{name}\": run {run} started");
        Ok(json!({"runId": run.to_string(), "session": session, "queued": queued}))
    }

    fn jobs_json(&self) -> Vec<Value> {
        self.proactive
            .sched
            .list()
            .into_iter()
            .map(|(s, st)| job_json(s, st))
            .collect()
    }

    /// The `cron` section of `/status`.
    pub(super) fn proactive_status(&self) -> Value {
        let jobs = self.jobs_json();
        let b = &self.proactive.beat;
        let heartbeat = self.proactive.heartbeat.as_ref().map(|c| {
            json!({
                "every": c.every,
                "to": c.to,
                "nextBeat": b.next_ms.map(rfc3339),
                "lastBeat": b.last_ms.map(rfc3339),
                "lastResult": b.last_result,
                "beats": b.beats,
                "alerts": b.alerts,
                "running": b.running,
            })
        });
        let hooks: BTreeMap<&String, Option<&String>> = self
            .cfg
            .hooks
            .keys()
            .map(|k| (k, self.proactive.hooks_last.get(k)))
            .collect();
        json!({"jobs": jobs, "heartbeat": heartbeat, "hooks": hooks, "lastChat": self.last_chat_json(), "lastChatThread": self.proactive.last_chat.as_ref().and_then(|t| t.thread_id.clone())})
    }

    /// `lastChat` on the wire: `channel:chat` as before (the thread is
    /// `lastChatThread`).
    fn last_chat_json(&self) -> Option<String> {
        self.proactive.last_chat.as_ref().map(ReplyTarget::chat)
    }
}

/// The turns of a finished run: the new summary (if any), then the run's
/// messages, the last answer carrying the usage.
pub(super) fn final_turns(
    now: u64,
    messages: Vec<Message>,
    model: &str,
    usage: TokenUsage,
    cache: CacheUsage,
    summary: Option<NewSummary>,
) -> Vec<Turn> {
    let mut turns = Vec::new();
    if let Some(summary) = summary {
        let mut t = Turn::message(
            now,
            Message {
                role: Role::User,
                parts: vec![Part::Text(summary.text)],
            },
        );
        t.kind = TurnKind::Summary;
        t.covers_through = Some(summary.through_seq);
        t.cum_chars = summary.through_chars;
        turns.push(t);
    }
    let last_assistant = messages.iter().rposition(|m| m.role == Role::Assistant);
    for (i, m) in messages.into_iter().enumerate() {
        let mut t = Turn::message(now, m);
        if t.message.role == Role::Assistant {
            t.model = Some(model.to_string());
        }
        if Some(i) == last_assistant {
            t.usage = Some(usage);
            if cache != CacheUsage::default() {
                t.cache = Some(cache);
            }
        }
        turns.push(t);
    }
    turns
}

fn with_skill(message: &str, skill: Option<&str>) -> String {
    match skill {
        Some(s) => format!("Use the `{s}` skill.\n\n{message}"),
        None => message.to_string(),
    }
}

fn heartbeat_prompt(checklist: &str) -> String {
    format!(
        "Heartbeat check. Go through this checklist (from HEARTBEAT.md). If nothing needs the user's attention, reply with exactly {NOTHING_TO_REPORT}. Otherwise reply with only the message for the user.\n\n{}",
        checklist.trim()
    )
}

fn read_checklist(path: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        if let Err(e) = f.take(MAX_CHECKLIST).read_to_end(&mut buf) {
            log::warn!("cannot read {}: {e}", path.display());
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Compares a presented secret with the expected one through their SHA-256
/// digests, so the time taken reveals neither content nor length.
fn token_matches(presented: &str, expected: &str) -> bool {
    let d = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    !expected.is_empty() && crate::util::ct_eq(d(presented).as_ref(), d(expected).as_ref())
}

fn no_job(name: &str) -> String {
    format!("no job named \"{name}\"; `pinch cron list` shows the jobs")
}

fn name_param(params: &Value) -> Result<String, ApiError> {
    params
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidRequest,
                "params.name (the job's name) is required",
            )
        })
}

/// Human form of a trigger: `cron 0 7 * * 1-5 (Europe/Berlin)`,
/// `every 30m`, `at 2026-12-01T06:00:00.000Z`.
pub fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Cron { expr, tz } => format!("cron {expr} ({tz})"),
        Trigger::Every { millis, .. } => format!("every {}", duration_text(*millis)),
        Trigger::At { at_ms } => format!("at {}", rfc3339(*at_ms)),
    }
}

/// `90_000` → `1m30s`.
pub fn duration_text(ms: u64) -> String {
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    if out.is_empty() {
        out = format!("{ms}ms");
    }
    out
}

fn outcome_str(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".to_string(),
        Outcome::Error(e) => format!("error: {e}"),
        Outcome::Skipped(r) => format!("skipped: {r}"),
    }
}

fn outcome_text(o: &Option<Outcome>) -> Option<String> {
    o.as_ref().map(outcome_str)
}

fn job_json(s: &JobSpec, st: &JobState) -> Value {
    let trigger = trigger_text(&s.trigger);
    let to = s.deliver_to.as_deref().unwrap_or("last chat");
    let next = st.next_run_ms.map(rfc3339);
    let summary = format!(
        "{}: {trigger} -> {to}; next {}; last {}",
        s.name,
        next.as_deref().unwrap_or("-"),
        outcome_text(&st.last_outcome).unwrap_or_else(|| "-".into())
    );
    json!({
        "name": s.name,
        "trigger": trigger,
        "message": s.message,
        "skill": s.skill,
        "model": s.model,
        "session": s.session,
        "to": s.deliver_to,
        "catchUp": s.catch_up,
        "jitterMs": s.jitter_ms,
        "enabled": s.enabled,
        "nextRun": next,
        "nextRunMs": st.next_run_ms,
        "lastRun": st.last_run_ms.map(rfc3339),
        "outcome": outcome_text(&st.last_outcome),
        "durationMs": st.last_duration_ms,
        "running": st.running_since_ms.is_some(),
        "runs": st.runs,
        "summary": summary,
    })
}

/// The time zone a cron job gets without `tz`: the gateway's own.
fn system_tz() -> String {
    jiff::tz::TimeZone::system()
        .iana_name()
        .map(str::to_string)
        .unwrap_or_else(|| "UTC".to_string())
}

/// Builds a job spec from API params (`cron.add`, or `cron.edit` over
/// `base`): `name`, `message`, one of `cron` (+ `tz`) / `every` / `at`,
/// and optionally `skill`, `model`, `session` ("own" | "main"), `to`,
/// `catchUp`, `jitter` ("30s" or ms), `enabled`. An empty string clears an
/// optional field.
pub(super) fn spec_from(
    p: &Value,
    base: Option<&JobSpec>,
    now: u64,
    cfg: &Config,
) -> Result<JobSpec, String> {
    let obj = p
        .as_object()
        .ok_or("params must be a JSON object like {\"name\": \"digest\", \"every\": \"1h\", \"message\": \"...\"}")?;
    for k in obj.keys() {
        if !JOB_FIELDS.contains(&k.as_str()) {
            let near = crate::util::nearest(k, JOB_FIELDS)
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown job field {k:?}{near}; fields: {}",
                JOB_FIELDS.join(", ")
            ));
        }
    }
    let text = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.trim().to_string())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let flag = |k: &str| -> Result<Option<bool>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("{k} must be true or false")),
        }
    };
    // An empty string clears an optional field.
    let optional = |k: &str, cur: Option<String>| -> Result<Option<String>, String> {
        Ok(match text(k)? {
            None => cur,
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v),
        })
    };
    let mut spec = match base {
        Some(b) => b.clone(),
        None => JobSpec::new("", Trigger::At { at_ms: 0 }, ""),
    };
    if let Some(n) = text("name")? {
        spec.name = n;
    }
    if spec.name.is_empty() {
        return Err("a job needs a name, like \"digest\" (--name)".into());
    }
    if let Some(m) = text("message")? {
        spec.message = m;
    }
    if spec.message.is_empty() {
        return Err(format!(
            "job \"{}\" needs a message: what the assistant should do when it runs (--message)",
            spec.name
        ));
    }
    if spec.message.len() > MAX_TEXT {
        return Err(format!(
            "the message is {} bytes; the limit is {MAX_TEXT}",
            spec.message.len()
        ));
    }
    let (cron, every, at, tz) = (text("cron")?, text("every")?, text("at")?, text("tz")?);
    if [cron.is_some(), every.is_some(), at.is_some()]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err("give one of cron, every or at, not several".into());
    }
    if let Some(expr) = cron {
        let old_tz = match &spec.trigger {
            Trigger::Cron { tz, .. } if base.is_some() => Some(tz.clone()),
            _ => None,
        };
        let tz = tz.or(old_tz).unwrap_or_else(system_tz);
        spec.trigger = Trigger::Cron { expr, tz };
    } else if let Some(e) = every {
        spec.trigger = Trigger::Every {
            millis: parse_every(&e)?,
            anchor_ms: now,
        };
    } else if let Some(a) = at {
        spec.trigger = Trigger::At {
            at_ms: parse_at(&a)?,
        };
        // Setting a new time re-arms a one-shot job that already ran.
        spec.enabled = true;
    } else if let Some(tz) = tz {
        match &mut spec.trigger {
            Trigger::Cron { tz: t, .. } => *t = tz,
            _ => return Err("tz applies to cron schedules only".into()),
        }
    } else if base.is_none() {
        return Err("say when the job runs: cron \"0 7 * * 1-5\" (with tz), every \"30m\", or at \"2026-12-01T07:00:00+01:00\"".into());
    }
    spec.skill = optional("skill", spec.skill.take())?;
    if let Some(s) = &spec.skill {
        if s.len() > 64 || s.chars().any(|c| c.is_whitespace() || c == '`') {
            return Err(format!("skill {s:?} is not a skill name"));
        }
    }
    spec.model = optional("model", spec.model.take())?;
    if let Some(m) = &spec.model {
        if crate::config::find_model(cfg, m).is_none() {
            return Err(format!(
                "model {m:?} is not configured; use \"provider/model\", one of: {}",
                crate::config::model_refs(cfg).join(", ")
            ));
        }
    }
    spec.deliver_to = optional("to", spec.deliver_to.take())?;
    if let Some(to) = &spec.deliver_to {
        crate::channel::registry::check_target(to)?;
    }
    if let Some(s) = text("session")? {
        spec.session = match s.as_str() {
            "own" => SessionTarget::Own,
            "main" => SessionTarget::Main,
            other => return Err(format!("session {other:?}: use \"own\" or \"main\"")),
        };
    }
    if let Some(c) = flag("catchUp")? {
        spec.catch_up = c;
    }
    if let Some(e) = flag("enabled")? {
        spec.enabled = e;
    }
    match obj.get("jitter") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            spec.jitter_ms = n.as_u64().ok_or("jitter must be a whole number of ms")?
        }
        Some(Value::String(s)) => {
            spec.jitter_ms =
                crate::sched::trigger::parse_duration_ms(s).map_err(|e| format!("jitter: {e}"))?
        }
        Some(_) => return Err("jitter must be like \"30s\" or a number of ms".into()),
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut c = Config::default();
        crate::config::apply_defaults(&mut c);
        c
    }

    #[test]
    fn a_restart_rewrites_the_job_table_only_when_it_changed() {
        let c = cfg();
        let t0 = 1_700_000_000_000;
        let mut first = Scheduler::restore(Vec::new(), t0);
        assert!(super::super::consolidate::seed(&mut first, &c, t0));
        assert!(
            table_changed(&first, true, None),
            "the seeded table is saved"
        );
        let saved = serde_json::to_vec(&first.snapshot()).unwrap();

        // The next start, a minute later: same jobs, same bytes, no commit.
        let later = t0 + 60_000;
        let jobs: Vec<(JobSpec, JobState)> = serde_json::from_slice(&saved).unwrap();
        let mut again = Scheduler::restore(jobs, later);
        assert!(!super::super::consolidate::seed(&mut again, &c, later));
        assert!(!table_changed(&again, false, Some(&saved)));

        // Stored bytes that differ (another spelling of the same table, or
        // unreadable bytes) are replaced.
        let pretty = serde_json::to_vec_pretty(&first.snapshot()).unwrap();
        assert!(table_changed(&again, false, Some(&pretty)));
        assert!(table_changed(&again, false, Some(b"{")));

        // No jobs and nothing seeded: nothing to write.
        let mut off = c.clone();
        off.agents.defaults.memory_consolidation = "off".into();
        let mut empty = Scheduler::restore(Vec::new(), later);
        assert!(!super::super::consolidate::seed(&mut empty, &off, later));
        assert!(!table_changed(&empty, false, None));
    }

    #[test]
    fn spec_from_builds_and_explains() {
        let c = cfg();
        let p = json!({"name": "digest", "cron": "0 7 * * 1-5", "tz": "Europe/Berlin", "message": " news ", "to": "telegram:1", "jitter": "30s", "catchUp": false, "model": "local/local", "skill": "news-digest", "session": "main"});
        let s = spec_from(&p, None, 5, &c).unwrap();
        assert_eq!(s.message, "news");
        assert_eq!(s.jitter_ms, 30_000);
        assert!(!s.catch_up);
        assert_eq!(s.session, SessionTarget::Main);
        assert_eq!(s.deliver_to.as_deref(), Some("telegram:1"));
        assert_eq!(trigger_text(&s.trigger), "cron 0 7 * * 1-5 (Europe/Berlin)");

        let e = |p: Value| spec_from(&p, None, 5, &c).unwrap_err();
        assert!(e(json!({"every": "1h", "message": "m"})).contains("needs a name"));
        assert!(e(json!({"name": "a", "every": "1h"})).contains("needs a message"));
        assert!(e(json!({"name": "a", "message": "m"})).contains("say when the job runs"));
        assert!(e(json!({"name": "a", "message": "m", "evry": "1h"}))
            .contains("did you mean \"every\""));
        assert!(
            e(json!({"name": "a", "message": "m", "every": "1h", "model": "x/y"}))
                .contains("local/local")
        );
        assert!(
            e(json!({"name": "a", "message": "m", "every": "1h", "session": "shared"}))
                .contains("\"own\" or \"main\"")
        );
        assert!(e(json!({"name": "a", "message": "m", "every": 5})).contains("must be a string"));

        let every = spec_from(
            &json!({"name": "a", "message": "m", "every": "90s"}),
            None,
            7,
            &c,
        )
        .unwrap();
        assert_eq!(
            every.trigger,
            Trigger::Every {
                millis: 90_000,
                anchor_ms: 7
            }
        );
        assert_eq!(trigger_text(&every.trigger), "every 1m30s");
    }

    #[test]
    fn edits_change_only_what_is_given() {
        let c = cfg();
        let base = spec_from(&json!({"name": "d", "cron": "0 7 * * *", "tz": "Asia/Tokyo", "message": "m", "to": "telegram:1"}), None, 0, &c).unwrap();
        let s = spec_from(&json!({"cron": "0 8 * * *", "to": ""}), Some(&base), 0, &c).unwrap();
        assert_eq!(
            s.trigger,
            Trigger::Cron {
                expr: "0 8 * * *".into(),
                tz: "Asia/Tokyo".into()
            }
        );
        assert_eq!(s.deliver_to, None, "an empty string clears");
        assert_eq!(s.message, "m");
        let s = spec_from(&json!({"tz": "UTC", "name": "e"}), Some(&base), 0, &c).unwrap();
        assert_eq!(s.name, "e");
        assert_eq!(
            s.trigger,
            Trigger::Cron {
                expr: "0 7 * * *".into(),
                tz: "UTC".into()
            }
        );
        let every = spec_from(&json!({"every": "1h"}), Some(&base), 0, &c).unwrap();
        assert!(spec_from(&json!({"tz": "UTC"}), Some(&every), 0, &c)
            .unwrap_err()
            .contains("cron schedules only"));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(duration_text(86_400_000 + 3_600_000), "1d1h");
        assert_eq!(duration_text(500), "500ms");
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", ""));
        assert_eq!(with_skill("go", Some("x")), "Use the `x` skill.\n\ngo");
        assert!(heartbeat_prompt("- a\n").ends_with(
            "exactly HEARTBEAT_OK. Otherwise reply with only the message for the user.\n\n- a"
        ));
        // The method table routes the proactive methods here.
        let find = super::super::methods::find;
        assert!(
            find("cron.add").is_some() && find("hook.run").is_some() && find("cron.x").is_none()
        );
    }

    fn scheduler(heartbeat: Option<HeartbeatConfig>, now: u64) -> Proactive {
        let mut beat = Beat::default();
        beat.next_ms = heartbeat.as_ref().and_then(|h| next_beat(h, None, now));
        Proactive {
            sched: Scheduler::new(),
            active: HashMap::new(),
            last_chat: None,
            heartbeat,
            beat,
            hooks_last: BTreeMap::new(),
            rng: 7,
        }
    }

    #[test]
    fn the_schedule_says_what_is_due_at_the_injected_time() {
        let start = 1_000_000;
        let mut p = scheduler(None, start);
        assert_eq!(p.wait_ms(start), MAX_SLEEP_MS, "nothing scheduled");
        assert!(p.due(start).is_empty());
        let every = Trigger::Every {
            millis: 10_000,
            anchor_ms: start,
        };
        p.sched
            .add(JobSpec::new("tea", every, "Time for tea"), start)
            .expect("add");
        assert_eq!(p.wait_ms(start), 10_000);
        assert!(p.due(start + 9_999).is_empty(), "not yet");
        assert_eq!(
            p.due(start + 10_000),
            vec![
                ProactiveAction::StartJob("tea".into()),
                ProactiveAction::SaveJobs
            ]
        );
        assert!(p.due(start + 10_001).is_empty(), "once per slot");
        assert_eq!(
            p.wait_ms(start + 10_001),
            MAX_SLEEP_MS,
            "a running job is not due again"
        );
        p.sched
            .finished("tea", start + 10_001, Outcome::Skipped("test".into()));
        assert_eq!(p.wait_ms(start + 10_001), 9_999, "the next slot");
    }

    #[test]
    fn a_heartbeat_is_due_on_time_and_never_twice_at_once() {
        let start = 1_000_000;
        let heartbeat = HeartbeatConfig {
            every: "1m".into(),
            ..HeartbeatConfig::default()
        };
        let mut p = scheduler(Some(heartbeat), start);
        let next = p.beat.next_ms.expect("a beat is scheduled");
        assert_eq!(p.wait_ms(start), next - start);
        assert!(p.due(next - 1).is_empty());
        assert_eq!(p.due(next), vec![ProactiveAction::StartBeat]);
        p.beat.running = true;
        assert!(p.due(next + 1).is_empty(), "no beat while one runs");
        assert_eq!(p.wait_ms(next + 1), MAX_SLEEP_MS);
    }
}
