//! The channel runtime's decisions, without I/O: which inbound messages are
//! accepted (access policy, pairing), when an accepted message becomes a
//! run, which queued replies go to which adapter, what a send's outcome
//! does to the queue, and the channels' health for `/status`. It is fed
//! events and the time and returns [`ChannelAction`]s; `channels.rs` carries
//! them out against the store and the adapters' handles.

use super::Origin;
use crate::agent::prompt::RunContext;
use crate::channel::adapter::{AdapterHealth, SendJob, SendResult};
use crate::channel::progress::Progress;
use crate::channel::{
    self, AccessConfig, ChatKind, Envelope, PairOutcome, Pairing, ReplyTarget, Verdict,
};
use crate::queue;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// What the reactor is asked to do for the channels.
pub enum ChannelAction {
    /// Hand `job` to the adapter of `channel` (its send queue is bounded:
    /// a job that does not fit is tried again at the next pump).
    Send { channel: String, job: SendJob },
    /// Start (or queue behind its session's run) the agent run for an
    /// accepted message.
    Run(ChannelRun),
}

/// An agent run for one inbound message.
pub struct ChannelRun {
    pub session: String,
    pub text: String,
    /// Where the answer goes and which inbox entry it settles.
    pub origin: Origin,
    /// Group chat or not, channel and sender: for the prompt.
    pub context: RunContext,
}

/// A batch screened by the access policy and pairing.
#[derive(Default)]
pub struct Screened {
    /// Messages for the inbox.
    pub accepted: Vec<Envelope>,
    /// Unknown direct senders, each with the pairing code to send them.
    pub pairing_codes: Vec<PairingCode>,
    /// Why each dropped message was dropped (counted, never silent).
    pub drops: Vec<String>,
}

pub struct PairingCode {
    pub envelope: Envelope,
    pub code: String,
}

/// What a send's outcome does to the delivery queue.
#[derive(Debug, PartialEq, Eq)]
pub enum SendRecord {
    Delivered {
        seq: u64,
    },
    /// Try again after the backoff (or the platform's `after_s`).
    Retry {
        seq: u64,
        after_s: Option<u64>,
        error: String,
    },
    /// Never deliverable: a dead letter.
    DeadLetter {
        seq: u64,
        error: String,
    },
}

/// An inbound message by channel and inbox id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InboundKey {
    pub channel: String,
    pub inbound: String,
}

/// Channel state the reactor owns.
#[derive(Default)]
pub struct ChannelRuntime {
    access: HashMap<String, AccessConfig>,
    pairing: HashMap<String, Pairing>,
    health: HashMap<String, AdapterHealth>,
    /// Queue sequence numbers handed to a send thread and not yet answered.
    inflight: HashSet<u64>,
    /// Inbound messages with a run in flight.
    running: HashSet<InboundKey>,
    /// Channels refusing new runs because their queue is full.
    backpressure: HashMap<String, String>,
    /// Typing and drafts of the runs in flight.
    pub progress: Progress,
}

impl ChannelRuntime {
    /// A channel whose adapter is starting, with its rules and the pairing
    /// state stored for it.
    pub fn add_channel(&mut self, name: &str, access: AccessConfig, pairing: Pairing) {
        self.access.insert(name.to_string(), access);
        self.pairing.insert(name.to_string(), pairing);
        self.health
            .insert(name.to_string(), AdapterHealth::default());
    }

    /// Applies the access policy and pairing to a batch from `channel`;
    /// `None` for a channel that is not running.
    pub fn screen(
        &mut self,
        channel: &str,
        envelopes: Vec<Envelope>,
        now: u64,
        rng: &mut dyn FnMut() -> u64,
    ) -> Option<Screened> {
        let access = self.access.get(channel)?;
        let mut out = Screened::default();
        for env in envelopes {
            let verdict = {
                let pairing = self.pairing.get(channel);
                let approved = |s: &str| pairing.map(|p| p.is_approved(s)).unwrap_or(false);
                channel::decide(access, &env, &approved)
            };
            match verdict {
                Verdict::Accept => out.accepted.push(env),
                Verdict::Pair => {
                    let outcome = self
                        .pairing
                        .entry(channel.to_string())
                        .or_default()
                        .request(&env.sender_id, &env.sender_name, now, rng);
                    match outcome {
                        PairOutcome::Issue { code } => out.pairing_codes.push(PairingCode {
                            envelope: env,
                            code,
                        }),
                        PairOutcome::AlreadyApproved => out.accepted.push(env),
                        PairOutcome::AlreadyPending => out.drops.push("pairing-pending".into()),
                        PairOutcome::TooManyPending => out.drops.push("pairing-limit".into()),
                    }
                }
                Verdict::Drop(reason) => out.drops.push(format!("{reason:?}")),
            }
        }
        Some(out)
    }

    /// The channel's pairing state as stored (channel state `"pairing"`).
    pub fn pairing_bytes(&self, channel: &str) -> Option<Vec<u8>> {
        self.pairing
            .get(channel)
            .and_then(|p| serde_json::to_vec(p).ok())
    }

    pub fn pairing(&self) -> &HashMap<String, Pairing> {
        &self.pairing
    }

    pub fn pairing_mut(&mut self, channel: &str) -> Option<&mut Pairing> {
        self.pairing.get_mut(channel)
    }

    /// Decides whether an accepted message starts a run now: not while its
    /// run is in flight, nor while the channel's queue is full
    /// (`queue_full`: why, from the queue's own check). `quote`: replies
    /// quote the message (`replyToMode`).
    pub fn plan_run(
        &mut self,
        env: &Envelope,
        session: String,
        queue_full: Option<String>,
        quote: bool,
    ) -> Vec<ChannelAction> {
        let key = InboundKey {
            channel: env.channel.clone(),
            inbound: queue::inbound_id(env),
        };
        if self.running.contains(&key) {
            return Vec::new();
        }
        if let Some(why) = queue_full {
            // The message stays in the inbox and runs when the queue drains.
            self.backpressure.insert(env.channel.clone(), why);
            return Vec::new();
        }
        self.backpressure.remove(&env.channel);
        let text = if env.attachments.is_empty() {
            env.text.clone()
        } else {
            format!(
                "{}\n[{} attachment(s) not shown]",
                env.text,
                env.attachments.len()
            )
        };
        let origin = Origin::Channel {
            channel: key.channel.clone(),
            inbound: key.inbound.clone(),
            target: ReplyTarget::from_envelope(env, quote),
        };
        // Typing comes from `progress` once the run has started.
        vec![ChannelAction::Run(ChannelRun {
            session,
            text,
            origin,
            context: run_context(env),
        })]
    }

    /// Notes a run in flight for an inbound message.
    pub fn run_started(&mut self, channel: &str, inbound: &str) {
        self.running.insert(InboundKey {
            channel: channel.to_string(),
            inbound: inbound.to_string(),
        });
    }

    /// Notes that an inbound message's run ended (or never started).
    pub fn run_ended(&mut self, channel: &str, inbound: &str) {
        self.running.remove(&InboundKey {
            channel: channel.to_string(),
            inbound: inbound.to_string(),
        });
    }

    /// True when no channel is held back by a full queue.
    pub fn idle(&self) -> bool {
        self.backpressure.is_empty()
    }

    /// Sequence numbers handed to an adapter and not yet answered.
    pub fn inflight(&self) -> &HashSet<u64> {
        &self.inflight
    }

    /// Due queue entries as send jobs for the adapters of `live` channels.
    pub fn plan_sends(
        &self,
        due: Vec<queue::QueuedMsg>,
        live: impl Fn(&str) -> bool,
    ) -> Vec<ChannelAction> {
        due.into_iter()
            .filter(|m| !self.inflight.contains(&m.seq) && live(&m.row.outbound.channel))
            .map(|m| ChannelAction::Send {
                channel: m.row.outbound.channel.clone(),
                job: SendJob::Message {
                    seq: m.seq,
                    out: m.row.outbound,
                    queued_ms: m.row.first_ms,
                },
            })
            .collect()
    }

    /// Notes that the adapter took queue entry `seq`.
    pub fn handed_over(&mut self, seq: u64) {
        self.inflight.insert(seq);
    }

    /// What the outcome of sending `seq` does to the queue.
    pub fn on_sent(&mut self, seq: u64, result: SendResult) -> SendRecord {
        self.inflight.remove(&seq);
        match result {
            SendResult::Delivered => SendRecord::Delivered { seq },
            SendResult::Retry { after_s, error } => SendRecord::Retry {
                seq,
                after_s,
                error,
            },
            SendResult::Permanent(error) => SendRecord::DeadLetter { seq, error },
        }
    }

    /// An adapter's health report, shown as is.
    pub fn on_health(&mut self, channel: &str, health: AdapterHealth) {
        self.health.insert(channel.to_string(), health);
    }

    /// The `/status` section for channels (`queue`: the queue's stats).
    pub fn status(&self, now: u64, queue: Value) -> Value {
        let mut chans = serde_json::Map::new();
        for (name, h) in &self.health {
            let pending = self
                .pairing
                .get(name)
                .map(|p| p.list(now).len())
                .unwrap_or(0);
            chans.insert(name.clone(), json!({"health": h, "pairingPending": pending, "backpressure": self.backpressure.get(name)}));
        }
        json!({"channels": chans, "queue": queue})
    }
}

/// The prompt's view of a channel message: a group chat or not, and
/// `telegram group · from Ann (@ann)` for the user-turn envelope.
fn run_context(env: &Envelope) -> RunContext {
    let group = env.chat_kind == ChatKind::Group;
    let mut origin = format!("{} {}", env.channel, if group { "group" } else { "direct" });
    // Platform names are outside input: no brackets or line breaks that
    // could pass for the end of the envelope.
    let clean = |s: &str| -> String {
        crate::util::truncate_chars(s.trim(), 64)
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
    RunContext {
        group,
        origin,
        compact_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{DmPolicy, GroupPolicy, Outbound};

    fn env(sender: &str, kind: ChatKind, text: &str, id: &str) -> Envelope {
        Envelope {
            channel: "telegram".into(),
            account: "default".into(),
            chat_id: if kind == ChatKind::Direct {
                sender.into()
            } else {
                "-100".into()
            },
            chat_kind: kind,
            sender_id: sender.into(),
            sender_username: None,
            sender_name: "Ann [x]".into(),
            mentioned: false,
            reply_to_bot: false,
            text: text.into(),
            attachments: vec![],
            platform_id: id.into(),
            time_ms: 0,
            thread_id: None,
            parent_group: None,
        }
    }

    fn runtime(dm_policy: DmPolicy) -> ChannelRuntime {
        let mut rt = ChannelRuntime::default();
        let access = AccessConfig {
            dm_policy,
            allow_from: vec!["42".into()],
            group_policy: GroupPolicy::Disabled,
            ..AccessConfig::default()
        };
        rt.add_channel("telegram", access, Pairing::default());
        rt
    }

    #[test]
    fn a_batch_is_screened_into_accepted_pairing_codes_and_counted_drops() {
        let mut rt = runtime(DmPolicy::Pairing);
        let batch = vec![
            env("42", ChatKind::Direct, "hi", "1"),
            env("7", ChatKind::Direct, "let me in", "2"),
            env("7", ChatKind::Direct, "again", "3"),
            env("42", ChatKind::Group, "in a group", "4"),
        ];
        let mut rng = || 12345;
        let s = rt
            .screen("telegram", batch, 1_000, &mut rng)
            .expect("running");
        assert_eq!(s.accepted.len(), 1);
        assert_eq!(s.accepted[0].platform_id, "1");
        assert_eq!(s.pairing_codes.len(), 1, "one code per stranger");
        assert_eq!(s.pairing_codes[0].envelope.sender_id, "7");
        assert_eq!(
            s.drops,
            vec!["pairing-pending".to_string(), "GroupDisabled".to_string()]
        );
        let stored = rt.pairing_bytes("telegram").expect("pairing state");
        assert!(String::from_utf8_lossy(&stored).contains("\"7\""));
        assert!(rt.screen("slack", Vec::new(), 1_000, &mut rng).is_none());
        let status = rt.status(1_000, Value::Null);
        assert_eq!(status["channels"]["telegram"]["pairingPending"], 1);
        assert_eq!(
            status["channels"]["telegram"]["health"]["state"],
            "starting"
        );
    }

    #[test]
    fn an_accepted_message_runs_once_and_waits_while_the_queue_is_full() {
        let mut rt = runtime(DmPolicy::Allowlist);
        let mut message = env("42", ChatKind::Direct, "hello", "9");
        message.attachments = Vec::new();
        let full = rt.plan_run(&message, "s".into(), Some("queue full".into()), true);
        assert!(full.is_empty(), "no run while the queue is full");
        assert!(!rt.idle());
        assert_eq!(
            rt.status(0, Value::Null)["channels"]["telegram"]["backpressure"],
            "queue full"
        );
        let actions = rt.plan_run(&message, "s".into(), None, true);
        assert!(rt.idle(), "backpressure ends with the next run");
        assert_eq!(
            actions.len(),
            1,
            "typing comes from progress, after the start"
        );
        let ChannelAction::Run(run) = &actions[0] else {
            panic!("a run");
        };
        assert_eq!(run.session, "s");
        assert_eq!(run.text, "hello");
        assert_eq!(run.context.origin, "telegram direct · from Ann  x ");
        let Origin::Channel {
            channel,
            inbound,
            target,
        } = &run.origin
        else {
            panic!("a channel origin");
        };
        assert_eq!(target.reply_to.as_deref(), Some("9"), "replies quote");
        rt.run_started(channel, inbound);
        assert!(
            rt.plan_run(&message, "s".into(), None, true).is_empty(),
            "never two runs for one message"
        );
        rt.run_ended(channel, inbound);
        assert_eq!(rt.plan_run(&message, "s".into(), None, false).len(), 1);
    }

    #[test]
    fn due_replies_go_to_live_adapters_and_outcomes_become_queue_records() {
        let mut rt = runtime(DmPolicy::Allowlist);
        let queued = |seq: u64, channel: &str| queue::QueuedMsg {
            seq,
            row: queue::QueuedRow {
                outbound: Outbound {
                    channel: channel.into(),
                    account: "default".into(),
                    chat_id: "42".into(),
                    text: format!("reply {seq}"),
                    reply_to: None,
                    thread_id: None,
                    max_attempts: None,
                    edit: None,
                },
                chat_key: format!("{channel}:default:42"),
                attempts: 0,
                next_at_ms: 0,
                first_ms: 0,
                last_error: None,
                bytes: 10,
            },
        };
        let due = vec![queued(1, "telegram"), queued(2, "slack")];
        let actions = rt.plan_sends(due, |c| c == "telegram");
        assert_eq!(actions.len(), 1, "no adapter, no send");
        assert!(matches!(
            &actions[0],
            ChannelAction::Send { channel, job: SendJob::Message { seq: 1, .. } } if channel == "telegram"
        ));
        rt.handed_over(1);
        assert!(rt.inflight().contains(&1));
        assert!(
            rt.plan_sends(vec![queued(1, "telegram")], |_| true)
                .is_empty(),
            "one hand-over per entry"
        );
        let retry = rt.on_sent(
            1,
            SendResult::Retry {
                after_s: Some(3),
                error: "429".into(),
            },
        );
        assert_eq!(
            retry,
            SendRecord::Retry {
                seq: 1,
                after_s: Some(3),
                error: "429".into()
            }
        );
        assert!(rt.inflight().is_empty());
        assert_eq!(
            rt.on_sent(1, SendResult::Permanent("blocked".into())),
            SendRecord::DeadLetter {
                seq: 1,
                error: "blocked".into()
            }
        );
        assert_eq!(
            rt.on_sent(2, SendResult::Delivered),
            SendRecord::Delivered { seq: 2 }
        );
    }
}
