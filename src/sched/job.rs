//! The scheduler core: job specs and their run state, which jobs are due,
//! catch-up after downtime, overlap prevention and jitter.
//! No I/O and no clock: the reactor passes `now_ms`, a jitter source, and
//! persists `snapshot()`; `restore()` rebuilds the scheduler after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::trigger::{fmt_ms, Trigger};

/// The largest jitter a job may ask for.
pub const MAX_JITTER_MS: u64 = 30_000;

/// Which session a job's agent turn runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionTarget {
    /// A session of its own (`cron:<name>`).
    #[default]
    Own,
    /// The main session.
    Main,
}

/// What a job does and when. Serialized in camelCase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    pub name: String,
    pub trigger: Trigger,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub session: SessionTarget,
    /// `"telegram:12345"`, or `None` for the last used chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_to: Option<String>,
    /// Run once after downtime if a run was missed (default true).
    #[serde(default = "default_true")]
    pub catch_up: bool,
    /// Fire up to this many ms after the slot (0..=30000, default 0).
    #[serde(default)]
    pub jitter_ms: u64,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl JobSpec {
    /// A spec with the defaults: own session, last used chat, catch-up on,
    /// no jitter, enabled.
    pub fn new(name: &str, trigger: Trigger, message: &str) -> JobSpec {
        JobSpec {
            name: name.to_string(),
            trigger,
            message: message.to_string(),
            skill: None,
            model: None,
            session: SessionTarget::Own,
            deliver_to: None,
            catch_up: true,
            jitter_ms: 0,
            enabled: true,
        }
    }

    /// Checks the spec; the error says what is wrong and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.len() > 64 {
            return Err(format!(
                "invalid job name \"{name}\": use 1 to 64 characters (letters, digits, '-', '_', '.')"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
        {
            return Err(format!(
                "invalid job name \"{name}\": character {c:?} is not allowed; use letters, digits, '-', '_' or '.'"
            ));
        }
        if self.message.trim().is_empty() {
            return Err(format!(
                "job \"{name}\" has an empty message: say what the assistant should do when it runs"
            ));
        }
        self.trigger
            .validate()
            .map_err(|e| format!("job \"{name}\": {e}"))?;
        if self.jitter_ms > MAX_JITTER_MS {
            return Err(format!(
                "job \"{name}\": jitter of {} ms is too large; use at most {MAX_JITTER_MS} ms",
                self.jitter_ms
            ));
        }
        if let Some(every) = self.trigger.interval_ms() {
            if self.jitter_ms >= every {
                return Err(format!(
                    "job \"{name}\": jitter of {} ms must be smaller than the interval of {every} ms",
                    self.jitter_ms
                ));
            }
        }
        if let Some(to) = &self.deliver_to {
            if crate::channel::envelope::ReplyTarget::parse(to).is_err() {
                return Err(format!(
                    "job \"{name}\": invalid delivery target \"{to}\"; use \"<channel>:<chat>\" like \"telegram:12345\", or leave it out for the last used chat"
                ));
            }
        }
        Ok(())
    }
}

/// How a run ended. Serialized as `{"status":"ok"}`,
/// `{"status":"error","reason":"..."}`, `{"status":"skipped","reason":"..."}`.
/// Read by hand from a `Value` (an adjacently tagged derive buffers the
/// object through serde's `Content`: several KB of code for one enum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Error(String),
    Skipped(String),
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let reason = || match v.get("reason").and_then(serde_json::Value::as_str) {
            Some(r) => Ok(r.to_string()),
            None => Err(D::Error::custom("an outcome without its reason")),
        };
        match v.get("status").and_then(serde_json::Value::as_str) {
            Some("ok") => Ok(Outcome::Ok),
            Some("error") => reason().map(Outcome::Error),
            Some("skipped") => reason().map(Outcome::Skipped),
            _ => Err(D::Error::custom(
                "an outcome's status must be \"ok\", \"error\" or \"skipped\"",
            )),
        }
    }
}

/// A job's run history and schedule. Serialized in camelCase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobState {
    /// When the last run started.
    pub last_run_ms: Option<u64>,
    pub last_outcome: Option<Outcome>,
    pub last_duration_ms: Option<u64>,
    /// When the job fires next: its slot plus jitter. Until the scheduler
    /// has drawn the jitter (at the next `due` call) this is the slot itself.
    pub next_run_ms: Option<u64>,
    /// The trigger time the next run belongs to (without jitter).
    pub next_slot_ms: Option<u64>,
    pub running_since_ms: Option<u64>,
    /// Number of finished runs.
    pub runs: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: JobSpec,
    state: JobState,
    /// The slot is set but its jitter has not been drawn yet.
    jitter_pending: bool,
    /// `run_now` asked (at this time) for a run at the next `due` call.
    forced: Option<u64>,
}

impl Entry {
    fn new(spec: JobSpec, state: JobState) -> Entry {
        Entry {
            spec,
            state,
            jitter_pending: false,
            forced: None,
        }
    }

    /// Sets the next slot; its fire time is the slot until jitter is drawn.
    fn set_slot(&mut self, slot: Option<u64>) {
        self.state.next_slot_ms = slot;
        self.state.next_run_ms = slot;
        self.jitter_pending = slot.is_some() && self.spec.jitter_ms > 0;
    }

    /// Schedules the first slot strictly after `after_ms`, or nothing when
    /// the job is disabled.
    fn schedule_after(&mut self, after_ms: u64) {
        if self.spec.enabled {
            let slot = self.spec.trigger.next_after(after_ms);
            self.set_slot(slot);
        } else {
            self.set_slot(None);
        }
    }

    fn draw_jitter(&mut self, jitter: &mut dyn FnMut(u64) -> u64) {
        if !self.jitter_pending {
            return;
        }
        self.jitter_pending = false;
        if let Some(slot) = self.state.next_slot_ms {
            let max = self.spec.jitter_ms.min(MAX_JITTER_MS);
            let j = if max == 0 { 0 } else { jitter(max).min(max) };
            self.state.next_run_ms = Some(slot.saturating_add(j));
        }
    }

    fn is_running(&self) -> bool {
        self.state.running_since_ms.is_some()
    }
}

/// The set of jobs, keyed by name.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    jobs: BTreeMap<String, Entry>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Adds a job and schedules its first run strictly after `now_ms`.
    /// Jitter is drawn at the next `due` call.
    pub fn add(&mut self, spec: JobSpec, now_ms: u64) -> Result<(), String> {
        spec.validate()?;
        if self.jobs.contains_key(&spec.name) {
            return Err(format!(
                "a job named \"{}\" already exists; edit it, remove it first, or pick another name",
                spec.name
            ));
        }
        check_future(&spec, now_ms)?;
        let mut entry = Entry::new(spec, JobState::default());
        entry.schedule_after(now_ms);
        if entry.spec.enabled && entry.state.next_slot_ms.is_none() {
            return Err(format!(
                "job \"{}\" would never run: its trigger has no time after {}",
                entry.spec.name,
                fmt_ms(now_ms)
            ));
        }
        self.jobs.insert(entry.spec.name.clone(), entry);
        Ok(())
    }

    /// Removes a job; false if there was none by that name. A run in
    /// progress is not stopped (its `finished` call is then ignored).
    pub fn remove(&mut self, name: &str) -> bool {
        self.jobs.remove(name).is_some()
    }

    /// Replaces the spec of job `name` (the new spec may rename it). Run
    /// history and a run in progress are kept; the next run is recomputed
    /// from `now_ms`.
    pub fn edit(&mut self, name: &str, spec: JobSpec, now_ms: u64) -> Result<(), String> {
        spec.validate()?;
        if !self.jobs.contains_key(name) {
            return Err(no_such_job(name));
        }
        if spec.name != name && self.jobs.contains_key(&spec.name) {
            return Err(format!(
                "cannot rename \"{name}\" to \"{}\": a job with that name already exists",
                spec.name
            ));
        }
        check_future(&spec, now_ms)?;
        let mut entry = match self.jobs.remove(name) {
            Some(e) => e,
            None => return Err(no_such_job(name)),
        };
        entry.spec = spec;
        entry.forced = None;
        entry.schedule_after(now_ms);
        self.jobs.insert(entry.spec.name.clone(), entry);
        Ok(())
    }

    /// Enables or disables a job; enabling schedules it from `now_ms`.
    pub fn set_enabled(&mut self, name: &str, enabled: bool, now_ms: u64) -> Result<(), String> {
        let entry = self.jobs.get_mut(name).ok_or_else(|| no_such_job(name))?;
        if entry.spec.enabled == enabled {
            return Ok(());
        }
        entry.spec.enabled = enabled;
        entry.schedule_after(now_ms);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<(&JobSpec, &JobState)> {
        self.jobs.get(name).map(|e| (&e.spec, &e.state))
    }

    /// All jobs, sorted by name.
    pub fn list(&self) -> Vec<(&JobSpec, &JobState)> {
        self.jobs.values().map(|e| (&e.spec, &e.state)).collect()
    }

    /// Owned copies of all jobs, for persisting; feed them to `restore`.
    pub fn snapshot(&self) -> Vec<(JobSpec, JobState)> {
        self.jobs
            .values()
            .map(|e| (e.spec.clone(), e.state.clone()))
            .collect()
    }

    /// Rebuilds the scheduler after a restart. A job whose fire time passed
    /// while the gateway was down runs once at the next `due` call (not once
    /// per missed slot) if `catch_up`; otherwise it moves to its next future
    /// slot and records `Outcome::Skipped("missed while down")`. A run that
    /// was in progress when the gateway stopped is recorded as an error.
    /// Jobs whose spec no longer validates are kept, unscheduled, with the
    /// reason as their last outcome.
    pub fn restore(specs_and_states: Vec<(JobSpec, JobState)>, now_ms: u64) -> Scheduler {
        let mut sched = Scheduler::new();
        for (spec, state) in specs_and_states {
            let name = spec.name.clone();
            let entry = restore_entry(spec, state, now_ms);
            if sched.jobs.insert(name.clone(), entry).is_some() {
                log::warn!("restore: duplicate job \"{name}\"; keeping the last one");
            }
        }
        sched
    }

    /// Names of the jobs to start now, marked as running. A job still
    /// running when its time comes is not started again: that slot is
    /// skipped and the next one scheduled. Also draws the jitter of every
    /// newly scheduled slot, so call it before `next_wake`.
    ///
    /// `jitter(max)` should return a random value in `0..=max`; larger
    /// values are clamped to `max`.
    pub fn due(&mut self, now_ms: u64, jitter: &mut dyn FnMut(u64) -> u64) -> Vec<String> {
        let mut started = Vec::new();
        for (name, entry) in self.jobs.iter_mut() {
            entry.draw_jitter(jitter);
            // run_now refuses running jobs, so a flag on one is stale.
            if entry.forced.take().is_some() && !entry.is_running() {
                entry.state.running_since_ms = Some(now_ms);
                // A manual run does not use up a future slot.
                if matches!(entry.state.next_slot_ms, Some(s) if s <= now_ms) {
                    entry.schedule_after(now_ms);
                    entry.draw_jitter(jitter);
                }
                started.push(name.clone());
                continue;
            }
            if !entry.spec.enabled {
                continue;
            }
            let fire = match entry.state.next_run_ms {
                Some(f) if f <= now_ms => f,
                _ => continue,
            };
            if entry.is_running() {
                log::info!(
                    "job \"{name}\": skipping the run due at {} because the previous run is still going",
                    fmt_ms(fire)
                );
            } else {
                entry.state.running_since_ms = Some(now_ms);
                started.push(name.clone());
            }
            entry.schedule_after(now_ms);
            entry.draw_jitter(jitter);
        }
        started
    }

    /// Records the end of a run started by `due` and schedules the next one.
    /// A one-shot `At` job disables itself. Slots that passed during the
    /// run are skipped.
    pub fn finished(&mut self, name: &str, now_ms: u64, outcome: Outcome) {
        let entry = match self.jobs.get_mut(name) {
            Some(e) => e,
            None => {
                log::warn!("finished: no job named \"{name}\" (removed while running?)");
                return;
            }
        };
        let started = match entry.state.running_since_ms.take() {
            Some(s) => s,
            None => {
                log::warn!("finished: job \"{name}\" was not running; recording it anyway");
                now_ms
            }
        };
        entry.state.last_run_ms = Some(started);
        entry.state.last_duration_ms = Some(now_ms.saturating_sub(started));
        entry.state.last_outcome = Some(outcome);
        entry.state.runs = entry.state.runs.saturating_add(1);
        let passed = match entry.state.next_slot_ms {
            Some(s) => s <= now_ms,
            None => true,
        };
        if passed {
            if let Trigger::At { .. } = entry.spec.trigger {
                // One-shot: done. (A manual run before its time keeps it.)
                entry.spec.enabled = false;
                entry.set_slot(None);
            } else {
                entry.schedule_after(now_ms);
            }
        } else if !entry.spec.enabled {
            entry.set_slot(None);
        }
    }

    /// The earliest fire time among enabled jobs that are not running (or a
    /// pending `run_now`): when the reactor should call `due` next.
    pub fn next_wake(&self) -> Option<u64> {
        self.jobs
            .values()
            .filter_map(|e| {
                if e.is_running() {
                    None
                } else if let Some(at) = e.forced {
                    Some(at)
                } else if e.spec.enabled {
                    e.state.next_run_ms
                } else {
                    None
                }
            })
            .min()
    }

    /// Asks for a run of `name` at the next `due` call, whatever its
    /// schedule (also for a disabled job). Its future slots are unchanged.
    pub fn run_now(&mut self, name: &str, now_ms: u64) -> Result<(), String> {
        let entry = self.jobs.get_mut(name).ok_or_else(|| no_such_job(name))?;
        if let Some(since) = entry.state.running_since_ms {
            return Err(format!(
                "job \"{name}\" is already running (since {}); wait for it to finish",
                fmt_ms(since.min(now_ms))
            ));
        }
        entry.forced = Some(now_ms);
        Ok(())
    }
}

fn no_such_job(name: &str) -> String {
    format!("no job named \"{name}\"; list the jobs to see their names")
}

fn check_future(spec: &JobSpec, now_ms: u64) -> Result<(), String> {
    if let Trigger::At { at_ms } = spec.trigger {
        if spec.enabled && at_ms <= now_ms {
            return Err(format!(
                "job \"{}\": the time {} is in the past (now is {}); pick a future time",
                spec.name,
                fmt_ms(at_ms),
                fmt_ms(now_ms)
            ));
        }
    }
    Ok(())
}

fn restore_entry(spec: JobSpec, state: JobState, now_ms: u64) -> Entry {
    let mut entry = Entry::new(spec, state);
    let name = entry.spec.name.clone();
    if entry.state.running_since_ms.take().is_some() {
        entry.state.last_outcome = Some(Outcome::Error(
            "interrupted: the gateway stopped during this run".to_string(),
        ));
    }
    if let Err(e) = entry.spec.validate() {
        log::warn!("restore: job \"{name}\" is not scheduled: {e}");
        entry.state.last_outcome = Some(Outcome::Error(e));
        entry.set_slot(None);
        return entry;
    }
    if !entry.spec.enabled {
        entry.set_slot(None);
        return entry;
    }
    let slot = match entry.state.next_slot_ms.or(entry.state.next_run_ms) {
        Some(s) => Some(s),
        None => match entry.spec.trigger {
            Trigger::At { at_ms } if entry.state.runs == 0 => Some(at_ms),
            Trigger::At { .. } => None,
            _ => entry
                .spec
                .trigger
                .next_after(entry.state.last_run_ms.unwrap_or(now_ms)),
        },
    };
    let slot = match slot {
        Some(s) => s,
        None => {
            if let Trigger::At { .. } = entry.spec.trigger {
                entry.spec.enabled = false;
            }
            entry.set_slot(None);
            return entry;
        }
    };
    // Keep an already drawn fire time if it belongs to this slot.
    let fire = match entry.state.next_run_ms {
        Some(r) if r >= slot && r - slot <= entry.spec.jitter_ms => r,
        _ => slot,
    };
    if fire > now_ms {
        entry.state.next_slot_ms = Some(slot);
        entry.state.next_run_ms = Some(fire);
        entry.jitter_pending = fire == slot && entry.spec.jitter_ms > 0 && slot > now_ms;
        return entry;
    }
    // Missed while down.
    if entry.spec.catch_up {
        log::info!(
            "job \"{name}\" missed its run at {} while down; running it once now",
            fmt_ms(fire)
        );
        entry.state.next_slot_ms = Some(slot);
        entry.state.next_run_ms = Some(fire);
        entry.jitter_pending = false;
    } else {
        log::info!(
            "job \"{name}\" missed its run at {} while down; skipping to the next slot",
            fmt_ms(fire)
        );
        entry.state.last_outcome = Some(Outcome::Skipped("missed while down".to_string()));
        entry.schedule_after(now_ms);
        if entry.state.next_slot_ms.is_none() {
            if let Trigger::At { .. } = entry.spec.trigger {
                entry.spec.enabled = false;
            }
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_and_bad_ones_are_errors() {
        for o in [
            Outcome::Ok,
            Outcome::Error("model timeout".into()),
            Outcome::Skipped("missed while down".into()),
        ] {
            let text = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), o, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Outcome::Error("x".into())).unwrap(),
            r#"{"status":"error","reason":"x"}"#
        );
        for bad in [r#"{"status":"error"}"#, r#"{"status":"maybe"}"#, "[]", "7"] {
            assert!(serde_json::from_str::<Outcome>(bad).is_err(), "{bad}");
        }
    }
    use crate::sched::trigger::parse_at;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 86_400_000;

    fn ms(s: &str) -> u64 {
        parse_at(s).expect("test time")
    }

    fn no_jitter(_max: u64) -> u64 {
        0
    }

    fn hourly(name: &str) -> JobSpec {
        JobSpec::new(
            name,
            Trigger::Cron {
                expr: "0 * * * *".to_string(),
                tz: "UTC".to_string(),
            },
            "check the mail",
        )
    }

    #[test]
    fn add_computes_next_run_and_rejects_bad_specs() {
        let now = ms("2026-06-05T10:20:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("mail"), now).unwrap();
        let (_, st) = s.get("mail").unwrap();
        assert_eq!(st.next_run_ms, Some(ms("2026-06-05T11:00:00Z")));
        assert_eq!(s.next_wake(), Some(ms("2026-06-05T11:00:00Z")));

        let e = s.add(hourly("mail"), now).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        let e = s.add(hourly("bad name"), now).unwrap_err();
        assert!(e.contains("not allowed"), "{e}");
        let mut j = hourly("j");
        j.jitter_ms = 30_001;
        assert!(s.add(j, now).unwrap_err().contains("at most 30000"));
        let mut j = hourly("d");
        j.deliver_to = Some("telegram".to_string());
        assert!(s.add(j, now).unwrap_err().contains("<channel>:<chat>"));
        let j = JobSpec::new("old", Trigger::At { at_ms: now - 1 }, "hi");
        assert!(s.add(j, now).unwrap_err().contains("in the past"));
        let j = JobSpec::new(
            "c",
            Trigger::Cron {
                expr: "0 7 * *".to_string(),
                tz: "UTC".to_string(),
            },
            "hi",
        );
        let e = s.add(j, now).unwrap_err();
        assert!(e.contains("expected 5 fields"), "{e}");
        let mut j = JobSpec::new(
            "e",
            Trigger::Every {
                millis: 20_000,
                anchor_ms: 0,
            },
            "hi",
        );
        j.jitter_ms = 20_000;
        assert!(s
            .add(j, now)
            .unwrap_err()
            .contains("smaller than the interval"));
        assert_eq!(s.list().len(), 1);
    }

    #[test]
    fn due_runs_then_finished_schedules_next() {
        let now = ms("2026-06-05T10:20:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("mail"), now).unwrap();
        assert!(s.due(now, &mut no_jitter).is_empty());
        let t = ms("2026-06-05T11:00:00Z");
        assert!(s.due(t - 1, &mut no_jitter).is_empty());
        assert_eq!(s.due(t, &mut no_jitter), vec!["mail".to_string()]);
        assert_eq!(s.get("mail").unwrap().1.running_since_ms, Some(t));
        assert_eq!(s.next_wake(), None, "running jobs do not wake the reactor");
        s.finished("mail", t + 5_000, Outcome::Ok);
        let (_, st) = s.get("mail").unwrap();
        assert_eq!(st.last_run_ms, Some(t));
        assert_eq!(st.last_duration_ms, Some(5_000));
        assert_eq!(st.last_outcome, Some(Outcome::Ok));
        assert_eq!(st.runs, 1);
        assert_eq!(st.running_since_ms, None);
        assert_eq!(st.next_run_ms, Some(t + HOUR));
        assert_eq!(s.next_wake(), Some(t + HOUR));
    }

    #[test]
    fn catch_up_after_three_days_down_runs_once() {
        let start = ms("2026-06-01T10:30:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("mail"), start).unwrap();
        let saved = serde_json::to_string(&s.snapshot()).unwrap();

        let back = start + 3 * DAY;
        let jobs: Vec<(JobSpec, JobState)> = serde_json::from_str(&saved).unwrap();
        let mut s = Scheduler::restore(jobs, back);
        assert_eq!(s.next_wake(), Some(ms("2026-06-01T11:00:00Z")));
        assert_eq!(s.due(back, &mut no_jitter), vec!["mail".to_string()]);
        // the slot moved to the future, not to the next missed hour
        let next = s.get("mail").unwrap().1.next_run_ms.unwrap();
        assert_eq!(next, ms("2026-06-04T11:00:00Z"));
        assert!(s.due(back + 1, &mut no_jitter).is_empty());
        s.finished("mail", back + 10_000, Outcome::Ok);
        assert!(s.due(back + 20_000, &mut no_jitter).is_empty());
        assert_eq!(s.get("mail").unwrap().1.runs, 1);
        assert_eq!(s.next_wake(), Some(ms("2026-06-04T11:00:00Z")));
    }

    #[test]
    fn no_catch_up_skips_to_next_future_slot() {
        let start = ms("2026-06-01T10:30:00Z");
        let mut spec = hourly("mail");
        spec.catch_up = false;
        let mut s = Scheduler::new();
        s.add(spec, start).unwrap();
        let back = start + 3 * DAY;
        let mut s = Scheduler::restore(s.snapshot(), back);
        let (_, st) = s.get("mail").unwrap();
        assert_eq!(
            st.last_outcome,
            Some(Outcome::Skipped("missed while down".to_string()))
        );
        assert_eq!(st.next_run_ms, Some(ms("2026-06-04T11:00:00Z")));
        assert_eq!(st.runs, 0);
        assert!(s.due(back, &mut no_jitter).is_empty());
    }

    #[test]
    fn restore_of_a_future_job_changes_nothing() {
        let start = ms("2026-06-01T10:30:00Z");
        let mut s = Scheduler::new();
        let mut spec = hourly("mail");
        spec.jitter_ms = 10_000;
        spec.skill = Some("email".to_string());
        spec.deliver_to = Some("telegram:12345".to_string());
        spec.session = SessionTarget::Main;
        s.add(spec, start).unwrap();
        s.add(
            JobSpec::new("once", Trigger::At { at_ms: start + DAY }, "ping"),
            start,
        )
        .unwrap();
        s.due(start, &mut |_| 7_000);
        s.run_now("once", start).unwrap();
        s.due(start + 1, &mut no_jitter);
        s.finished(
            "once",
            start + 2,
            Outcome::Error("model timeout".to_string()),
        );
        let before = s.snapshot();
        let json = serde_json::to_string_pretty(&before).unwrap();
        assert!(json.contains("\"kind\": \"cron\""), "{json}");
        assert!(json.contains("\"deliverTo\": \"telegram:12345\""), "{json}");
        assert!(json.contains("\"status\": \"error\""), "{json}");
        let parsed: Vec<(JobSpec, JobState)> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, before);
        let s2 = Scheduler::restore(parsed, start + 1_000);
        assert_eq!(s2.snapshot(), before);
        assert_eq!(
            s2.get("mail").unwrap().1.next_run_ms,
            Some(ms("2026-06-01T11:00:07Z"))
        );
    }

    #[test]
    fn restore_marks_interrupted_runs_and_defaults_missing_fields() {
        let json = r#"[[{"name":"mail","trigger":{"kind":"every","millis":3600000,"anchorMs":0},"message":"m"},
                        {"runningSinceMs":1000,"nextRunMs":3600000}]]"#;
        let jobs: Vec<(JobSpec, JobState)> = serde_json::from_str(json).unwrap();
        assert!(jobs[0].0.catch_up && jobs[0].0.enabled);
        assert_eq!(jobs[0].0.session, SessionTarget::Own);
        let mut s = Scheduler::restore(jobs, 2 * HOUR + 5);
        let (_, st) = s.get("mail").unwrap();
        assert_eq!(st.running_since_ms, None);
        assert!(matches!(&st.last_outcome, Some(Outcome::Error(e)) if e.contains("interrupted")));
        assert_eq!(
            s.due(2 * HOUR + 5, &mut no_jitter),
            vec!["mail".to_string()]
        );
        assert_eq!(s.get("mail").unwrap().1.next_run_ms, Some(3 * HOUR));
    }

    #[test]
    fn restore_keeps_invalid_jobs_unscheduled() {
        let mut spec = hourly("mail");
        spec.trigger = Trigger::Cron {
            expr: "0 * * * *".to_string(),
            tz: "Mars/Olympus".to_string(),
        };
        let s = Scheduler::restore(vec![(spec, JobState::default())], 0);
        let (_, st) = s.get("mail").unwrap();
        assert_eq!(st.next_run_ms, None);
        assert!(
            matches!(&st.last_outcome, Some(Outcome::Error(e)) if e.contains("unknown time zone"))
        );
        assert_eq!(s.next_wake(), None);
    }

    #[test]
    fn overlap_is_prevented_and_slot_advanced() {
        let t0 = ms("2026-06-05T11:00:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("slow"), t0 - MIN).unwrap();
        assert_eq!(s.due(t0, &mut no_jitter), vec!["slow".to_string()]);
        // an hour later it is still running: not started again
        let t1 = t0 + HOUR;
        assert!(s.due(t1, &mut no_jitter).is_empty());
        assert_eq!(s.get("slow").unwrap().1.next_run_ms, Some(t1 + HOUR));
        assert_eq!(s.get("slow").unwrap().1.running_since_ms, Some(t0));
        // it finishes after the 12:00 slot without due being called
        s.finished("slow", t1 + HOUR + 30 * MIN, Outcome::Ok);
        let st = s.get("slow").unwrap().1;
        assert_eq!(st.next_run_ms, Some(t1 + 2 * HOUR));
        assert_eq!(st.runs, 1);
        assert!(s.run_now("slow", t1).is_ok());
        assert_eq!(
            s.due(t1 + 2 * HOUR, &mut no_jitter),
            vec!["slow".to_string()]
        );
        let e = s.run_now("slow", t1 + 2 * HOUR).unwrap_err();
        assert!(e.contains("already running"), "{e}");
    }

    #[test]
    fn jitter_never_before_slot_nor_beyond_max() {
        let t0 = ms("2026-06-05T10:30:00Z");
        let slot = ms("2026-06-05T11:00:00Z");
        for draw in [0u64, 1, 12_345, 20_000, 20_001, u64::MAX] {
            let mut spec = hourly("j");
            spec.jitter_ms = 20_000;
            let mut s = Scheduler::new();
            s.add(spec, t0).unwrap();
            let asked = std::cell::Cell::new(0u64);
            let mut src = |max: u64| {
                asked.set(max);
                draw
            };
            assert!(s.due(t0, &mut src).is_empty());
            assert_eq!(asked.get(), 20_000);
            let fire = s.get("j").unwrap().1.next_run_ms.unwrap();
            assert!(fire >= slot && fire <= slot + 20_000, "draw {draw}: {fire}");
            assert_eq!(fire, slot + draw.min(20_000));
            assert_eq!(s.get("j").unwrap().1.next_slot_ms, Some(slot));
            assert_eq!(s.next_wake(), Some(fire));
            if fire > slot {
                assert!(s.due(fire - 1, &mut src).is_empty());
            }
            assert_eq!(s.due(fire, &mut src), vec!["j".to_string()]);
        }
    }

    #[test]
    fn jitter_next_slot_stays_on_the_grid() {
        let t0 = ms("2026-06-05T10:30:00Z");
        let mut spec = hourly("j");
        spec.jitter_ms = 30_000;
        let mut s = Scheduler::new();
        s.add(spec, t0).unwrap();
        let mut src = |max: u64| max;
        s.due(t0, &mut src);
        let fire = ms("2026-06-05T11:00:30Z");
        assert_eq!(s.due(fire, &mut src), vec!["j".to_string()]);
        s.finished("j", fire + 1_000, Outcome::Ok);
        s.due(fire + 2_000, &mut src);
        let st = s.get("j").unwrap().1;
        assert_eq!(st.next_slot_ms, Some(ms("2026-06-05T12:00:00Z")));
        assert_eq!(st.next_run_ms, Some(ms("2026-06-05T12:00:30Z")));
    }

    #[test]
    fn at_job_runs_once_then_disables_itself() {
        let now = 1_000_000;
        let mut s = Scheduler::new();
        s.add(
            JobSpec::new("once", Trigger::At { at_ms: now + 5_000 }, "remind me"),
            now,
        )
        .unwrap();
        assert!(s.due(now + 4_999, &mut no_jitter).is_empty());
        assert_eq!(s.due(now + 5_000, &mut no_jitter), vec!["once".to_string()]);
        s.finished("once", now + 6_000, Outcome::Ok);
        let (spec, st) = s.get("once").unwrap();
        assert!(!spec.enabled);
        assert_eq!(st.next_run_ms, None);
        assert_eq!(s.next_wake(), None);
        assert!(s.due(now + DAY, &mut no_jitter).is_empty());
    }

    #[test]
    fn at_job_missed_while_down() {
        let now = 1_000_000;
        let mut s = Scheduler::new();
        s.add(
            JobSpec::new("once", Trigger::At { at_ms: now + 5_000 }, "x"),
            now,
        )
        .unwrap();
        let snap = s.snapshot();
        let mut s = Scheduler::restore(snap.clone(), now + DAY);
        assert_eq!(s.due(now + DAY, &mut no_jitter), vec!["once".to_string()]);
        s.finished("once", now + DAY + 1, Outcome::Ok);
        assert!(!s.get("once").unwrap().0.enabled);

        let mut snap = snap;
        snap[0].0.catch_up = false;
        let mut s = Scheduler::restore(snap, now + DAY);
        assert!(s.due(now + DAY, &mut no_jitter).is_empty());
        let (spec, st) = s.get("once").unwrap();
        assert!(!spec.enabled);
        assert_eq!(
            st.last_outcome,
            Some(Outcome::Skipped("missed while down".to_string()))
        );
    }

    #[test]
    fn run_now_runs_without_using_up_the_slot() {
        let now = ms("2026-06-05T10:20:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("mail"), now).unwrap();
        assert!(s.run_now("nope", now).unwrap_err().contains("no job named"));
        s.run_now("mail", now).unwrap();
        assert_eq!(s.next_wake(), Some(now));
        assert_eq!(s.due(now, &mut no_jitter), vec!["mail".to_string()]);
        s.finished("mail", now + 1_000, Outcome::Ok);
        assert_eq!(
            s.get("mail").unwrap().1.next_run_ms,
            Some(ms("2026-06-05T11:00:00Z"))
        );
        // works for disabled jobs too
        s.set_enabled("mail", false, now).unwrap();
        assert_eq!(s.next_wake(), None);
        s.run_now("mail", now + 2_000).unwrap();
        assert_eq!(s.due(now + 2_000, &mut no_jitter), vec!["mail".to_string()]);
        s.finished("mail", now + 3_000, Outcome::Ok);
        assert_eq!(s.get("mail").unwrap().1.next_run_ms, None);
        assert_eq!(s.get("mail").unwrap().1.runs, 2);
    }

    #[test]
    fn edit_remove_and_disable() {
        let now = ms("2026-06-05T10:20:00Z");
        let mut s = Scheduler::new();
        s.add(hourly("a"), now).unwrap();
        s.add(hourly("b"), now).unwrap();
        let mut spec = hourly("c");
        spec.trigger = Trigger::Cron {
            expr: "0 7 * * 1-5".to_string(),
            tz: "Europe/Berlin".to_string(),
        };
        let e = s.edit("a", hourly("b"), now).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert!(s
            .edit("zz", hourly("zz"), now)
            .unwrap_err()
            .contains("no job named"));
        s.edit("a", spec, now).unwrap();
        assert!(s.get("a").is_none());
        assert_eq!(
            s.get("c").unwrap().1.next_run_ms,
            Some(ms("2026-06-08T07:00:00+02:00"))
        );
        let names: Vec<&str> = s.list().iter().map(|(j, _)| j.name.as_str()).collect();
        assert_eq!(names, vec!["b", "c"]);
        s.set_enabled("b", false, now).unwrap();
        assert_eq!(s.next_wake(), Some(ms("2026-06-08T07:00:00+02:00")));
        assert!(s.due(now + 2 * HOUR, &mut no_jitter).is_empty());
        s.set_enabled("b", true, now + 2 * HOUR).unwrap();
        assert_eq!(s.next_wake(), Some(ms("2026-06-05T13:00:00Z")));
        assert!(s.remove("b"));
        assert!(!s.remove("b"));
        s.finished("b", now, Outcome::Ok); // ignored, no panic
    }

    #[test]
    fn every_job_keeps_its_anchor_across_runs() {
        let anchor = 1_000_000;
        let mut s = Scheduler::new();
        let spec = JobSpec::new(
            "tick",
            Trigger::Every {
                millis: 30 * MIN,
                anchor_ms: anchor,
            },
            "tick",
        );
        s.add(spec, anchor).unwrap();
        assert_eq!(s.next_wake(), Some(anchor + 30 * MIN));
        let t = anchor + 30 * MIN + 3_000; // late wake-up
        assert_eq!(s.due(t, &mut no_jitter), vec!["tick".to_string()]);
        s.finished("tick", t + 7 * MIN, Outcome::Ok);
        assert_eq!(s.next_wake(), Some(anchor + 60 * MIN));
    }
}
