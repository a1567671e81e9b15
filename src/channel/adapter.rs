//! The one interface between the reactor and a channel adapter.
//!
//! An adapter is a platform's sans-IO codec plus a thin I/O shell
//! (`src/channel/<name>/`). The reactor starts it through the registry
//! (`channel::registry`) with a [`Start`], hands it [`SendJob`]s through its
//! [`Handle`], and hears from it only through the [`Sink`] it was given: a
//! shell never imports the gateway. What a platform can do (message length,
//! formatting, threads, edits, typing) is declared in its [`Capabilities`], never
//! special-cased in the reactor.

use super::envelope::{Envelope, Outbound, ReplyTarget};
use super::split::Measure;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// News from an adapter's threads to the reactor.
pub enum AdapterEvent {
    /// A batch of inbound messages and the cursor that confirms it. The
    /// reactor commits the accepted messages and the cursor (channel state
    /// `"cursor"`) in one transaction, then answers on `ack`; the adapter
    /// moves past the batch only on `true`.
    Inbound {
        envelopes: Vec<Envelope>,
        /// The adapter's own resume point (Telegram: the next `getUpdates`
        /// offset), opaque to the reactor; `None` leaves the stored one.
        cursor: Option<String>,
        ack: SyncSender<bool>,
    },
    /// How the send of queue entry `seq` fared.
    Sent { seq: u64, result: SendResult },
    /// The adapter's health, shown in `/status`.
    Health(AdapterHealth),
}

/// An adapter's health, the same shape for every platform (`/status`
/// `channels.channels.<name>.health`, camelCase; times unix ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterHealth {
    /// "starting" (until the adapter reports), "up", "down", "connecting",
    /// "conflict" or "error" (not retried).
    pub state: &'static str,
    /// A word on the state; may be empty.
    pub detail: String,
    /// When the platform last answered with an event (or a poll).
    pub last_event_ms: Option<u64>,
    /// Recoveries after a lost connection (or failed poll) this UTC day.
    pub reconnects_today: u32,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The last error, if the adapter is not up because of one.
    pub error: Option<String>,
    /// Adapter-specific fields, shown beside the common ones.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for AdapterHealth {
    /// An adapter that has not reported yet.
    fn default() -> Self {
        AdapterHealth {
            state: "starting",
            detail: String::new(),
            last_event_ms: None,
            reconnects_today: 0,
            failures: 0,
            error: None,
            extra: Map::new(),
        }
    }
}

/// A count that starts again at 0 each UTC day (reconnects today).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyCount {
    day: u64,
    n: u32,
}

impl DailyCount {
    /// Counts one at unix ms `now_ms`.
    pub fn add(&mut self, now_ms: u64) {
        let day = now_ms / 86_400_000;
        if day != self.day {
            *self = DailyCount { day, n: 0 };
        }
        self.n = self.n.saturating_add(1);
    }

    /// The count on the UTC day of `now_ms`.
    pub fn on(&self, now_ms: u64) -> u32 {
        if now_ms / 86_400_000 == self.day {
            self.n
        } else {
            0
        }
    }
}

/// What the reactor asks an adapter's sender to do.
pub enum SendJob {
    /// One queued message (already split to the channel's limit), queued
    /// at unix ms `queued_ms`: a message queued before the adapter started
    /// may have been sent by the process before, its outcome unknown.
    Message {
        seq: u64,
        out: Outbound,
        queued_ms: u64,
    },
    /// A typing indicator in the chat (and thread) of `target`: one beat;
    /// the runtime repeats it at `Capabilities::typing_every_ms`.
    Typing { target: ReplyTarget },
    /// A best-effort draft of an answer in progress (platforms with
    /// `edits`): sent as a new message the first time, edited afterwards;
    /// `out.edit` names it. Not acknowledged; a queued message with the same
    /// `edit` name later replaces it.
    Draft { out: Outbound },
}

/// How one queued message fared.
#[derive(Debug)]
pub enum SendResult {
    Delivered,
    /// Try again later: after `after_s` when the platform said so.
    Retry {
        after_s: Option<u64>,
        error: String,
    },
    /// Never deliverable: the message becomes a dead letter.
    Permanent(String),
}

impl SendResult {
    /// The platform said 429: try again after its `Retry-After`.
    pub fn rate_limited(secs: u64) -> SendResult {
        SendResult::Retry {
            after_s: Some(secs),
            error: format!("429: retry after {secs} s"),
        }
    }

    /// Try again after the queue's backoff.
    pub fn retry(error: String) -> SendResult {
        SendResult::Retry {
            after_s: None,
            error,
        }
    }
}

/// A draft on screen: the platform's id of its message and the text it shows.
pub struct Draft {
    pub message_id: String,
    pub text: String,
}

/// Drafts shown by a shell's sender and not yet replaced, by name
/// (`Outbound::edit`); at most [`MAX_DRAFTS`] (one per run in flight is
/// enough: past that the oldest are forgotten and their answers go out as
/// new messages).
#[derive(Default)]
pub struct Drafts {
    shown: std::collections::HashMap<String, Draft>,
}

/// Drafts a sender remembers at once.
pub const MAX_DRAFTS: usize = 64;

impl Drafts {
    pub fn get(&self, name: &str) -> Option<&Draft> {
        self.shown.get(name)
    }

    /// Records that draft `name` is message `message_id` showing `text`.
    pub fn remember(&mut self, name: &str, message_id: String, text: String) {
        if self.shown.len() >= MAX_DRAFTS && !self.shown.contains_key(name) {
            self.shown.clear();
        }
        let draft = Draft { message_id, text };
        self.shown.insert(name.to_string(), draft);
    }

    /// The final answer replaced draft `name`: it is no longer one.
    pub fn forget(&mut self, name: &str) {
        self.shown.remove(name);
    }
}

/// The reactor's hold on a running adapter.
pub struct Handle {
    /// Bounded: the reactor uses `try_send` and retries on its next pump.
    pub send: SyncSender<SendJob>,
    pub stop: Arc<AtomicBool>,
}

/// Send jobs a shell's sender may hold before the reactor's `try_send` has
/// to wait for its next pump.
pub const SEND_QUEUE_JOBS: usize = 32;

impl Handle {
    /// What every shell opens with: a bounded send queue and a stop flag
    /// (`handle.stop`, to clone into its threads). The shell's sender thread
    /// takes the receiver; the reactor keeps the handle.
    pub fn new() -> (Handle, Receiver<SendJob>) {
        let (send, jobs) = sync_channel::<SendJob>(SEND_QUEUE_JOBS);
        let handle = Handle {
            send,
            stop: Arc::new(AtomicBool::new(false)),
        };
        (handle, jobs)
    }

    /// Asks the adapter's threads to end at their next check.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Where an adapter reports: returns false once the reactor is gone, and the
/// adapter's threads then end. Built by the gateway around its own channel.
pub type Sink = Arc<dyn Fn(AdapterEvent) -> bool + Send + Sync>;

/// The markup a platform renders; the reactor keeps Markdown from the model
/// and each shell converts it on send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formatting {
    /// Text only.
    Plain,
    /// Telegram's HTML subset (`parse_mode: "HTML"`).
    TelegramHtml,
    /// Slack's mrkdwn.
    SlackMrkdwn,
    /// Markdown as the platform renders it (Discord).
    Markdown,
}

/// What a platform can do, declared by its adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Longest message text, counted in `measure`; replies are split to it
    /// (or to the channel's smaller `textChunkLimit`).
    pub max_text: usize,
    pub measure: Measure,
    pub formatting: Formatting,
    /// Replies can go to a thread / forum topic.
    pub threads: bool,
    /// Sent messages can be edited: answers stream into an edited draft
    /// (`SendJob::Draft`, `Outbound::edit`).
    pub edits: bool,
    /// How often the typing indicator is repeated while a run is in
    /// flight, ms; 0: the platform has none for bots.
    pub typing_every_ms: u32,
}

/// Everything an adapter gets at start.
pub struct Start {
    /// The channel's name (`channels.<name>`), used in logs and thread names.
    pub channel: String,
    /// The account id (`"default"` while one account per channel).
    pub account: String,
    /// The channel's config block (`channels.<name>`).
    pub config: crate::config::Channel,
    /// The channel's network route.
    pub route: crate::net::Route,
    /// The cursor committed with the last inbound batch, if any.
    pub cursor: Option<String>,
    pub sink: Sink,
}

impl Start {
    /// The platform's API root: `channels.<name>.apiRoot` (tests, proxies),
    /// else the platform's own.
    pub fn api_root(&self, platform_default: &str) -> String {
        self.config
            .api_root
            .clone()
            .unwrap_or_else(|| platform_default.to_string())
    }
}

/// How an adapter is started: spawns its threads and returns at once.
pub type StartFn = fn(Start) -> Result<Handle, String>;

/// Starts one of an adapter's threads (`name` is `<channel>-<role>`, as
/// `ps -T` shows it) with a small stack; an error says which thread. The
/// thread is recorded so the gateway can join it at shutdown
/// ([`take_threads`]).
pub fn spawn_thread(
    name: String,
    stack_kib: usize,
    body: impl FnOnce() + Send + 'static,
) -> Result<(), String> {
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .stack_size(stack_kib.saturating_mul(1024))
        .spawn(body)
        .map_err(|e| format!("cannot start thread {name}: {e}"))?;
    let mut threads = crate::util::lock(&THREADS);
    // Threads that already ended need no join: keeps the list bounded by
    // the adapters' live threads.
    threads.retain(|t| !t.handle.is_finished());
    threads.push(NamedThread { name, handle });
    Ok(())
}

/// A started thread with its name, to be joined at shutdown.
pub struct NamedThread {
    pub name: String,
    pub handle: std::thread::JoinHandle<()>,
}

/// Adapter threads started and not yet taken by [`take_threads`].
static THREADS: std::sync::Mutex<Vec<NamedThread>> = std::sync::Mutex::new(Vec::new());

/// Hands over every adapter thread started so far (the gateway joins them
/// after telling the adapters to stop).
pub fn take_threads() -> Vec<NamedThread> {
    std::mem::take(&mut *crate::util::lock(&THREADS))
}

/// The timeouts of a shell's Web API agent: 10 s to connect, 30 s for the
/// answer and between reads.
pub fn api_timeouts() -> crate::net::Timeouts {
    crate::net::Timeouts {
        connect: std::time::Duration::from_secs(10),
        recv_response: std::time::Duration::from_secs(30),
        per_read: Some(std::time::Duration::from_secs(30)),
    }
}

/// Sleeps until unix millisecond `ms`, in steps of at most 200 ms so a
/// raised `stop` ends the wait early.
pub fn sleep_until(ms: u64, stop: &AtomicBool) {
    while crate::util::now_ms() < ms && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(
            ms.saturating_sub(crate::util::now_ms()).min(200),
        ));
    }
}
