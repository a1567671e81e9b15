//! Visible progress while a channel run is in flight, sans-IO: fed the run's
//! start, its streamed text, a failover restart and the clock, it returns
//! what to send — typing beats at the adapter's cadence and a draft message
//! edited with the text so far — and at the end names the draft that the
//! final answer replaces. The reactor only forwards run events here and
//! hands the returned [`Action`]s to the adapter; what a platform can do
//! comes from its [`Capabilities`], so a new adapter gets this for free.
//!
//! Drafts are best-effort: the final answer alone goes through the durable
//! queue, as an edit of the draft (`Outbound::edit`) or, when the draft is
//! unknown to the adapter (it failed, or the process restarted), as a new
//! message.

use super::adapter::Capabilities;
use super::envelope::{Outbound, ReplyTarget};
use super::split::Measure;
use crate::config::Streaming;
use serde_json::Value;
use std::collections::HashMap;

/// Draft edits at most this often; no draft before the run is this old,
/// so a fast answer goes out as one message.
pub const EDIT_EVERY_MS: u64 = 1_000;
/// The first draft waits for a sentence end after this many characters…
const SENTENCE_MIN_CHARS: usize = 12;
/// …or for this many characters without one.
const DRAFT_MIN_CHARS: usize = 60;
/// The reactor ticks once a second: a beat due within half a tick is sent
/// now, so beats keep to the cadence within ±0.5 s.
const EARLY_MS: u64 = 500;
/// Runs tracked at once; more get no progress (their answer is unaffected).
const MAX_RUNS: usize = 256;

/// How progress shows in one chat, from the adapter and the channel config.
#[derive(Debug, Clone, Copy)]
pub struct ChatSettings {
    /// Typing cadence; 0: the platform has no typing indicator for bots.
    pub typing_every_ms: u64,
    /// Drafts edited as the text streams.
    pub drafts: bool,
    pub max_text: usize,
    pub measure: Measure,
}

impl ChatSettings {
    /// `streaming` unset: partial in direct chats, off in groups. Drafts need
    /// a platform that edits messages.
    pub fn new(
        caps: &Capabilities,
        streaming: Option<&Value>,
        group: bool,
        limit: usize,
    ) -> ChatSettings {
        let mode = match streaming.map(Streaming::parse) {
            Some(Ok((mode, _))) => mode,
            Some(Err(_)) | None if group => Streaming::Off,
            _ => Streaming::Partial,
        };
        ChatSettings {
            typing_every_ms: u64::from(caps.typing_every_ms),
            drafts: caps.edits && mode == Streaming::Partial,
            max_text: limit,
            measure: caps.measure,
        }
    }
}

/// What to hand to the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A typing beat in the chat (and thread) of the target.
    Typing(ReplyTarget),
    /// Send or edit the draft (`edit` names it) with the text so far.
    Draft(Outbound),
}

/// A channel run: the channel and its inbound message id (the draft's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub channel: String,
    pub inbound: String,
}

struct RunProgress {
    target: ReplyTarget,
    settings: ChatSettings,
    next_typing_ms: u64,
    started_ms: u64,
    /// Streamed text of the current model attempt.
    text: String,
    /// What the draft shows; empty before the first draft.
    shown: String,
    last_edit_ms: u64,
}

/// Progress of every channel run in flight.
#[derive(Default)]
pub struct Progress {
    runs: HashMap<RunKey, RunProgress>,
}

impl Progress {
    /// A run starts (or waits for its session): the first typing beat.
    pub fn start(
        &mut self,
        key: RunKey,
        target: ReplyTarget,
        settings: ChatSettings,
        now_ms: u64,
    ) -> Vec<Action> {
        if self.runs.len() >= MAX_RUNS {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if settings.typing_every_ms > 0 {
            actions.push(Action::Typing(target.clone()));
        }
        self.runs.insert(
            key,
            RunProgress {
                next_typing_ms: now_ms.saturating_add(settings.typing_every_ms),
                started_ms: now_ms,
                target,
                settings,
                text: String::new(),
                shown: String::new(),
                last_edit_ms: 0,
            },
        );
        actions
    }

    /// Streamed answer text.
    pub fn delta(&mut self, key: &RunKey, text: &str, now_ms: u64) -> Vec<Action> {
        let Some(run) = self.runs.get_mut(key) else {
            return Vec::new();
        };
        if !run.settings.drafts {
            return Vec::new();
        }
        // Beyond what one message shows nothing more is needed.
        if run.settings.measure.of(&run.text) <= run.settings.max_text.saturating_mul(2) {
            run.text.push_str(text);
        }
        run.draft(&key.inbound, now_ms).into_iter().collect()
    }

    /// The model failed mid-stream and the next one starts over: its text
    /// replaces the draft's at the next edit.
    pub fn restart(&mut self, key: &RunKey) {
        if let Some(run) = self.runs.get_mut(key) {
            run.text.clear();
        }
    }

    /// Due typing beats and draft edits held back by the edit interval.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for (key, run) in self.runs.iter_mut() {
            let every = run.settings.typing_every_ms;
            if every > 0 && run.next_typing_ms <= now_ms.saturating_add(EARLY_MS) {
                run.next_typing_ms = now_ms.saturating_add(every);
                actions.push(Action::Typing(run.target.clone()));
            }
            if run.settings.drafts {
                actions.extend(run.draft(&key.inbound, now_ms));
            }
        }
        actions
    }

    /// The run ended: its progress stops. Returns the draft's name when a
    /// draft was sent, for the final answer to replace.
    pub fn finish(&mut self, key: &RunKey) -> Option<String> {
        let run = self.runs.remove(key)?;
        (!run.shown.is_empty()).then(|| key.inbound.clone())
    }
}

impl RunProgress {
    /// The draft to send now, if it is time and its text changed.
    fn draft(&mut self, name: &str, now_ms: u64) -> Option<Action> {
        if self.shown.is_empty() {
            if !worth_a_draft(&self.text) || now_ms < self.started_ms.saturating_add(EDIT_EVERY_MS)
            {
                return None;
            }
        } else if now_ms < self.last_edit_ms.saturating_add(EDIT_EVERY_MS) {
            return None;
        }
        let visible = self.text.trim();
        if visible.is_empty() {
            return None;
        }
        let text = if self.settings.measure.of(visible) > self.settings.max_text {
            super::split::split_with(visible, self.settings.max_text, self.settings.measure)
                .into_iter()
                .next()
                .unwrap_or_default()
        } else {
            visible.to_string()
        };
        if text == self.shown {
            return None;
        }
        self.shown = text.clone();
        self.last_edit_ms = now_ms;
        let mut out = self.target.outbound(text);
        out.edit = Some(name.to_string());
        Some(Action::Draft(out))
    }
}

/// A first sentence, or enough text without one.
fn worth_a_draft(text: &str) -> bool {
    let text = text.trim_start();
    let chars = text.chars().count();
    if chars >= DRAFT_MIN_CHARS {
        return true;
    }
    chars >= SENTENCE_MIN_CHARS
        && (text.trim_end().ends_with(['.', '!', '?', ':'])
            || [". ", "! ", "? ", "\n"]
                .iter()
                .any(|end| text.contains(end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caps(typing: u32, edits: bool) -> Capabilities {
        Capabilities {
            max_text: 40,
            measure: Measure::Chars,
            formatting: super::super::adapter::Formatting::Plain,
            threads: false,
            edits,
            typing_every_ms: typing,
        }
    }

    fn key() -> RunKey {
        RunKey {
            channel: "telegram".into(),
            inbound: "default:42:7".into(),
        }
    }

    fn target() -> ReplyTarget {
        ReplyTarget::parse("telegram:42").expect("target")
    }

    fn drafts(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Draft(o) => Some(o.text.clone()),
                Action::Typing(_) => None,
            })
            .collect()
    }

    #[test]
    fn typing_beats_keep_to_the_cadence_until_the_run_ends() {
        let mut p = Progress::default();
        let settings = ChatSettings::new(&caps(4_000, true), None, false, 40);
        let first = p.start(key(), target(), settings, 10_000);
        assert_eq!(first, vec![Action::Typing(target())]);
        let mut beats = vec![10_000];
        for now in (11_000..30_000).step_by(1_000) {
            if p.tick(now).iter().any(|a| matches!(a, Action::Typing(_))) {
                beats.push(now);
            }
        }
        let gaps: Vec<u64> = beats.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 4, "{beats:?}");
        assert!(gaps.iter().all(|g| (3_500..=4_500).contains(g)), "{gaps:?}");
        assert_eq!(p.finish(&key()), None, "no draft was sent");
        assert!(p.tick(60_000).is_empty(), "stopped with the run");
    }

    #[test]
    fn a_platform_without_typing_gets_no_beats() {
        let mut p = Progress::default();
        let settings = ChatSettings::new(&caps(0, false), None, false, 40);
        assert!(p.start(key(), target(), settings, 0).is_empty());
        assert!(p.tick(100_000).is_empty());
        assert!(
            p.delta(&key(), "Hello there. More", 1).is_empty(),
            "no edits"
        );
    }

    #[test]
    fn the_draft_follows_the_text_at_most_once_a_second() {
        let mut p = Progress::default();
        let settings = ChatSettings::new(&caps(0, true), None, false, 40);
        p.start(key(), target(), settings, 0);
        assert!(p.delta(&key(), "Hel", 100).is_empty(), "no sentence yet");
        assert!(
            p.delta(&key(), "lo there. ", 200).is_empty(),
            "a fast answer needs none"
        );
        let first = p.delta(&key(), "Next", 1_200);
        assert_eq!(drafts(&first), vec!["Hello there. Next"]);
        if let Action::Draft(o) = &first[0] {
            assert_eq!(o.edit.as_deref(), Some("default:42:7"));
        }
        assert!(p.delta(&key(), " part", 1_700).is_empty(), "too soon");
        assert_eq!(drafts(&p.tick(2_300)), vec!["Hello there. Next part"]);
        assert!(p.tick(3_500).is_empty(), "unchanged text is not edited");
        // A failover: the next model's text replaces the draft.
        p.restart(&key());
        assert_eq!(
            drafts(&p.delta(&key(), "Other answer.", 4_000)),
            vec!["Other answer."]
        );
        assert_eq!(p.finish(&key()).as_deref(), Some("default:42:7"));
        // Past one message the draft shows the first part only.
        p.start(key(), target(), settings, 10_000);
        let long = drafts(&p.delta(&key(), &"word ".repeat(30), 11_100));
        assert_eq!(long.len(), 1, "{long:?}");
        assert!(long[0].starts_with("word word") && long[0].chars().count() <= 40);
    }

    #[test]
    fn groups_stream_only_when_asked_and_modes_map_to_the_nearest() {
        let c = caps(4_000, true);
        assert!(ChatSettings::new(&c, None, false, 40).drafts);
        assert!(!ChatSettings::new(&c, None, true, 40).drafts);
        assert!(ChatSettings::new(&c, Some(&json!("partial")), true, 40).drafts);
        assert!(!ChatSettings::new(&c, Some(&json!({"mode": "off"})), false, 40).drafts);
        assert!(!ChatSettings::new(&caps(0, false), None, false, 40).drafts);
        let (mode, note) = Streaming::parse(&json!({"mode": "block"})).expect("block");
        assert_eq!(mode, Streaming::Partial);
        assert!(note.expect("note").contains("block"));
        assert_eq!(
            Streaming::parse(&json!("progress")).expect("p").0,
            Streaming::Off
        );
        assert!(Streaming::parse(&json!("fast")).is_err());
        assert!(Streaming::parse(&json!(3)).is_err());
    }
}
