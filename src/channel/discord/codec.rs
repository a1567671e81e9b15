//! The Discord Gateway session, sans-IO: fed text frames, socket events and
//! the time, it answers with frames to send and what the shell must do.
//!
//! Connection: Hello (op 10) gives the heartbeat interval; the first beat
//! goes after `interval × jitter` (the jitter, a fraction from the caller's
//! randomness), then every interval, carrying the last dispatch sequence.
//! An interval without a Heartbeat ACK (op 11) is a zombie connection: the
//! shell closes it and resumes. After Hello comes Identify (op 2), or Resume
//! (op 6) when a session and a sequence are known. READY gives the bot's
//! user id, the session id and `resume_gateway_url`.
//!
//! Server requests: op 1 (beat now), op 7 (reconnect and resume), op 9
//! (invalid session: resumable or not). Close codes 4004 and 4010–4014
//! must not be retried: they end in [`CloseVerdict::Fatal`] with what to do.

use crate::channel::adapter::DailyCount;
use serde_json::{json, Value};

/// Longest session id or URL kept from READY.
const MAX_FIELD_BYTES: usize = 512;
/// Longest wait for Hello after connecting.
const HELLO_TIMEOUT_MS: u64 = 30_000;
/// Reconnect delay cap.
const MAX_BACKOFF_MS: u64 = 60_000;
/// A session stored this long ago or less is resumed at start; an older one
/// is not tried (Discord keeps a dropped session for minutes, not hours, and
/// answers a Resume of an expired one with op 9, then pinch identifies).
pub const RESUME_WITHIN_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No socket, or a socket before Hello.
    Connecting,
    /// Identify or Resume sent, waiting for READY / RESUMED.
    Handshaking,
    /// Receiving dispatches.
    Ready,
    /// A close code that must not be retried was received.
    Failed,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this text frame.
    Send(String),
    /// A dispatch for the adapter (`t`, `d`): `MESSAGE_CREATE` and others.
    Dispatch { kind: String, data: Value },
    /// The session is ready (READY or RESUMED).
    Ready { resumed: bool },
    /// Close the socket (code 4000: the session stays resumable) and
    /// connect again after `after_ms`, resuming when `resume` is set.
    Reconnect {
        resume: bool,
        after_ms: u64,
        why: String,
    },
}

/// What a close of the socket means.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseVerdict {
    Reconnect {
        resume: bool,
        after_ms: u64,
        why: String,
    },
    /// Do not reconnect; the text says what to change.
    Fatal(String),
}

/// One bot's Gateway session across connections.
#[derive(Debug)]
pub struct Session {
    token: String,
    intents: u64,
    phase: Phase,
    interval_ms: u64,
    next_beat_ms: Option<u64>,
    awaiting_ack: bool,
    seq: Option<u64>,
    session_id: Option<String>,
    resume_url: Option<String>,
    bot_id: Option<String>,
    /// Consecutive failed connections (reset by READY/RESUMED).
    failures: u32,
    last_event_ms: Option<u64>,
    reconnects: DailyCount,
    fatal: Option<String>,
    resuming: bool,
    /// When the socket opened, until Hello arrives.
    awaiting_hello_since: Option<u64>,
}

/// The close codes Discord documents as not to be reconnected, with the fix.
pub fn fatal_close(code: u16) -> Option<&'static str> {
    Some(match code {
        4004 => "Discord rejected the bot token (close 4004): set channels.discord.token to the token from the Developer Portal (Bot → Reset Token)",
        4010 => "Discord refused the shard (close 4010): pinch connects unsharded; check that no other program uses this token with shards",
        4011 => "Discord requires sharding for this bot (close 4011): it is in too many servers for one connection, which pinch does not support",
        4012 => "Discord refused the Gateway API version (close 4012): this pinch speaks Gateway v10; update pinch",
        4013 => "Discord refused the intents (close 4013): the intents value is invalid; report this as a bug",
        4014 => "Discord refused a privileged intent (close 4014): enable the Message Content intent in the Developer Portal (Bot → Privileged Gateway Intents), or set channels.discord.intents.messageContent to false",
        _ => return None,
    })
}

fn cap(s: &str) -> String {
    crate::util::truncate(s, MAX_FIELD_BYTES).to_string()
}

impl Session {
    pub fn new(token: &str, intents: u64) -> Session {
        Session {
            token: token.to_string(),
            intents,
            phase: Phase::Connecting,
            interval_ms: 0,
            next_beat_ms: None,
            awaiting_ack: false,
            seq: None,
            session_id: None,
            resume_url: None,
            bot_id: None,
            failures: 0,
            last_event_ms: None,
            reconnects: DailyCount::default(),
            fatal: None,
            resuming: false,
            awaiting_hello_since: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
    pub fn bot_id(&self) -> Option<&str> {
        self.bot_id.as_deref()
    }
    pub fn last_event_ms(&self) -> Option<u64> {
        self.last_event_ms
    }
    /// Reconnects on the UTC day of `now`.
    pub fn reconnects_today(&self, now: u64) -> u32 {
        self.reconnects.on(now)
    }
    /// Failed connections in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// The session as the adapter's cursor (committed with each inbound
    /// message, so its sequence is that of the last committed dispatch):
    /// `{"sessionId", "resumeUrl", "seq", "botId", "savedMs"}`. None until
    /// READY.
    pub fn cursor(&self, now: u64) -> Option<String> {
        Some(
            json!({
                "sessionId": self.session_id.as_deref()?,
                "resumeUrl": self.resume_url.as_deref()?,
                "seq": self.seq?,
                "botId": self.bot_id.as_deref()?,
                "savedMs": now,
            })
            .to_string(),
        )
    }

    /// Takes up a session stored by [`Session::cursor`] when it is at most
    /// [`RESUME_WITHIN_MS`] old, so the first connection resumes it. False
    /// (and nothing changed) for anything else.
    pub fn restore(&mut self, cursor: &str, now: u64) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(cursor) else {
            return false;
        };
        let text = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(cap)
        };
        let fresh = v
            .get("savedMs")
            .and_then(Value::as_u64)
            .is_some_and(|saved| saved <= now && now - saved <= RESUME_WITHIN_MS);
        let url = text("resumeUrl").filter(|u| u.starts_with("wss://") || u.starts_with("ws://"));
        match (
            fresh,
            text("sessionId"),
            url,
            v.get("seq").and_then(Value::as_u64),
            text("botId"),
        ) {
            (true, Some(id), Some(url), Some(seq), Some(bot)) => {
                self.session_id = Some(id);
                self.resume_url = Some(url);
                self.seq = Some(seq);
                self.bot_id = Some(bot);
                true
            }
            _ => false,
        }
    }

    /// Where the next connection goes: the session's `resume_gateway_url`
    /// when resuming, else `default_url`; with `?v=10&encoding=json`.
    pub fn connect_url(&self, default_url: &str, resume: bool) -> String {
        let base = match (&self.resume_url, resume && self.can_resume()) {
            (Some(u), true) => u.as_str(),
            _ => default_url,
        };
        let base = base.trim_end_matches('/');
        format!("{base}/?v=10&encoding=json")
    }

    fn can_resume(&self) -> bool {
        self.session_id.is_some() && self.seq.is_some()
    }

    /// A new socket is open: wait for Hello. `resume` says whether the
    /// session should be resumed on it.
    pub fn on_connected(&mut self, resume: bool, now: u64) {
        self.awaiting_hello_since = Some(now);
        self.phase = Phase::Connecting;
        self.next_beat_ms = None;
        self.awaiting_ack = false;
        self.resuming = resume && self.can_resume();
        if !self.resuming {
            self.forget_session();
        }
    }

    fn forget_session(&mut self) {
        self.session_id = None;
        self.seq = None;
        self.resume_url = None;
    }

    fn note_reconnect(&mut self, now: u64) {
        self.reconnects.add(now);
    }

    /// Delay before the next attempt: random in [0, 1 s × 2^failures], capped.
    fn backoff(&mut self, random: u64) -> u64 {
        let ceiling = 1000u64
            .checked_shl(self.failures.min(16))
            .unwrap_or(MAX_BACKOFF_MS)
            .min(MAX_BACKOFF_MS);
        self.failures = self.failures.saturating_add(1);
        random % ceiling.saturating_add(1)
    }

    fn reconnect(&mut self, resume: bool, after_ms: u64, why: String, now: u64) -> Action {
        self.begin_reconnect(resume, now);
        Action::Reconnect {
            resume,
            after_ms,
            why,
        }
    }

    fn begin_reconnect(&mut self, resume: bool, now: u64) {
        self.awaiting_hello_since = None;
        self.note_reconnect(now);
        self.phase = Phase::Connecting;
        self.next_beat_ms = None;
        if !resume {
            self.forget_session();
        }
    }

    fn heartbeat(&self) -> String {
        json!({"op": 1, "d": self.seq}).to_string()
    }

    fn identify(&self) -> String {
        json!({"op": 2, "d": {
            "token": self.token,
            "intents": self.intents,
            "properties": {"os": "linux", "browser": "pinch", "device": "pinch"},
        }})
        .to_string()
    }

    fn resume(&self) -> String {
        json!({"op": 6, "d": {
            "token": self.token,
            "session_id": self.session_id,
            "seq": self.seq,
        }})
        .to_string()
    }

    /// One text frame from the Gateway. `random` feeds the heartbeat jitter
    /// and reconnect delays.
    pub fn on_frame(&mut self, text: &str, now: u64, random: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                log::debug!("discord: unreadable gateway frame ignored: {e}");
                return out;
            }
        };
        self.last_event_ms = Some(now);
        let op = v.get("op").and_then(Value::as_u64);
        match op {
            Some(10) => {
                let interval = v
                    .pointer("/d/heartbeat_interval")
                    .and_then(Value::as_u64)
                    .unwrap_or(41_250)
                    .clamp(1_000, 600_000);
                self.interval_ms = interval;
                self.awaiting_hello_since = None;
                // jitter: a fraction of the interval, from 1/1000 steps
                let first = interval.saturating_mul(random % 1001) / 1000;
                self.next_beat_ms = Some(now.saturating_add(first));
                self.awaiting_ack = false;
                self.phase = Phase::Handshaking;
                out.push(Action::Send(if self.resuming {
                    self.resume()
                } else {
                    self.identify()
                }));
            }
            Some(11) => self.awaiting_ack = false,
            Some(1) => out.push(Action::Send(self.heartbeat())),
            Some(7) => out.push(self.reconnect(
                true,
                0,
                "Discord asked for a reconnect (op 7)".into(),
                now,
            )),
            Some(9) => {
                let resumable = v.get("d").and_then(Value::as_bool).unwrap_or(false);
                // Discord asks for a wait of 1–5 s before a new Identify.
                let after = if resumable { 0 } else { 1000 + random % 4001 };
                let why = format!("Discord invalidated the session (op 9, resumable: {resumable})");
                out.push(self.reconnect(resumable, after, why, now));
            }
            Some(0) => {
                if let Some(s) = v.get("s").and_then(Value::as_u64) {
                    self.seq = Some(self.seq.map_or(s, |old| old.max(s)));
                }
                let kind = v.get("t").and_then(Value::as_str).unwrap_or("");
                let data = v.get("d").cloned().unwrap_or(Value::Null);
                match kind {
                    "READY" => {
                        self.session_id = data.get("session_id").and_then(Value::as_str).map(cap);
                        self.resume_url = data
                            .get("resume_gateway_url")
                            .and_then(Value::as_str)
                            .filter(|u| u.starts_with("wss://") || u.starts_with("ws://"))
                            .map(cap);
                        if let Some(id) = data.pointer("/user/id").and_then(Value::as_str) {
                            self.bot_id = Some(cap(id));
                        }
                        self.phase = Phase::Ready;
                        self.failures = 0;
                        out.push(Action::Ready { resumed: false });
                    }
                    "RESUMED" => {
                        self.phase = Phase::Ready;
                        self.failures = 0;
                        out.push(Action::Ready { resumed: true });
                    }
                    _ => out.push(Action::Dispatch {
                        kind: kind.to_string(),
                        data,
                    }),
                }
            }
            _ => log::debug!("discord: gateway op {op:?} ignored"),
        }
        out
    }

    /// When [`Session::on_tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_beat_ms.or_else(|| {
            self.awaiting_hello_since
                .map(|t| t.saturating_add(HELLO_TIMEOUT_MS))
        })
    }

    /// Timers: the heartbeat, and zombie detection (no ACK for the previous
    /// beat when the next one is due).
    pub fn on_tick(&mut self, now: u64) -> Vec<Action> {
        if let Some(since) = self.awaiting_hello_since {
            if now >= since.saturating_add(HELLO_TIMEOUT_MS) {
                self.awaiting_hello_since = None;
                let why = "no Hello within 30 s of connecting".to_string();
                let resume = self.resuming;
                return vec![self.reconnect(resume, 0, why, now)];
            }
        }
        let Some(due) = self.next_beat_ms else {
            return Vec::new();
        };
        if now < due {
            return Vec::new();
        }
        if self.awaiting_ack {
            let why = "no Heartbeat ACK within one interval (zombie connection)".to_string();
            return vec![self.reconnect(true, 0, why, now)];
        }
        self.awaiting_ack = true;
        self.next_beat_ms = Some(due.saturating_add(self.interval_ms).max(now));
        vec![Action::Send(self.heartbeat())]
    }

    /// The socket closed (`code` when the peer sent a close frame) or broke.
    pub fn on_close(&mut self, code: Option<u16>, now: u64, random: u64) -> CloseVerdict {
        self.next_beat_ms = None;
        self.awaiting_hello_since = None;
        if let Some(text) = code.and_then(fatal_close) {
            self.phase = Phase::Failed;
            self.fatal = Some(text.to_string());
            return CloseVerdict::Fatal(text.to_string());
        }
        // 4007 invalid seq, 4009 session timed out: identify anew. Closes
        // 1000/1001 from the server end the session too.
        let resume = !matches!(code, Some(4007) | Some(4009) | Some(1000) | Some(1001));
        let after = self.backoff(random);
        let why = match code {
            Some(c) => format!("the Gateway closed the connection (code {c})"),
            None => "the Gateway connection was lost".to_string(),
        };
        self.begin_reconnect(resume, now);
        CloseVerdict::Reconnect {
            resume,
            after_ms: after,
            why,
        }
    }

    /// A connection attempt failed before any frame (DNS, TCP, TLS, HTTP
    /// upgrade): back off and try again, resuming if the session allows.
    pub fn on_connect_failed(&mut self, random: u64) -> u64 {
        self.backoff(random)
    }
}
