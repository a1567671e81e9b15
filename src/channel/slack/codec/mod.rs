//! Slack Socket Mode and Web API, sans-IO: Socket Mode frames in (`hello`,
//! `events_api` envelopes, `disconnect`), acks out, events classified into
//! envelopes (DMs, group DMs, channel posts with their mention), Web API
//! requests (`auth.test`, `apps.connections.open`, `chat.postMessage`,
//! `chat.update`) and their answers (`ok: false` errors, 429 with
//! `Retry-After`). `lookup` finds a send that already reached Slack.
//!
//! The caller owns the sockets and the clock. Tokens travel only in the
//! `Authorization` header of the requests built here, never in a URL.

use crate::channel::envelope::{truncate_chars, ChatKind, DedupWindow, Envelope, MAX_TEXT_CHARS};
use serde_json::{json, Value};

pub mod lookup;

pub const CHANNEL: &str = "slack";
pub const DEFAULT_API_ROOT: &str = "https://slack.com/api";
/// Slack's recommended (and OpenClaw's) message size; the API truncates at 40,000.
pub const TEXT_CHUNK_LIMIT: usize = 4000;
/// Largest Socket Mode frame or Web API body parsed.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Event ids and (channel, ts) pairs remembered for dedup, each.
pub const DEDUP_WINDOW: usize = 512;
const MAX_ERROR_CHARS: usize = 200;

/// One Socket Mode frame from Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The connection is ready.
    Hello { num_connections: u64 },
    /// Slack will close this connection: open a fresh URL and reconnect.
    Disconnect { reason: String },
    /// An envelope to ack. `payload` is the Events API `event_callback` for
    /// `events_api`; other kinds (slash commands, interactivity) are acked and ignored.
    Envelope {
        envelope_id: String,
        kind: String,
        payload: Value,
        retry_attempt: u64,
    },
    /// A frame pinch does not act on.
    Other(String),
}

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Result<Frame, String> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(format!("frame of {} bytes is too large", text.len()));
    }
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(id) = v.get("envelope_id").and_then(Value::as_str) {
        if id.is_empty() || id.len() > 256 {
            return Err("envelope_id is empty or too long".into());
        }
        return Ok(Frame::Envelope {
            envelope_id: id.to_string(),
            retry_attempt: v.get("retry_attempt").and_then(Value::as_u64).unwrap_or(0),
            payload: v.get_mut("payload").map(Value::take).unwrap_or(Value::Null),
            kind,
        });
    }
    Ok(match kind.as_str() {
        "hello" => Frame::Hello {
            num_connections: v
                .get("num_connections")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        },
        "disconnect" => Frame::Disconnect {
            reason: truncate_chars(
                v.get("reason").and_then(Value::as_str).unwrap_or("unknown"),
                64,
            ),
        },
        _ => Frame::Other(truncate_chars(&kind, 64)),
    })
}

/// The ack Slack expects within ~3 s: the envelope id and an empty payload,
/// as the official client sends it.
pub fn ack_frame(envelope_id: &str) -> String {
    json!({ "envelope_id": envelope_id, "payload": {} }).to_string()
}

/// The bot as `auth.test` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BotIdentity {
    pub user_id: String,
    pub bot_id: String,
    pub team_id: String,
}

impl BotIdentity {
    pub fn from_auth_test(v: &Value) -> Result<BotIdentity, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let id = BotIdentity {
            user_id: s("user_id"),
            bot_id: s("bot_id"),
            team_id: s("team_id"),
        };
        if id.user_id.is_empty() {
            return Err(
                "auth.test answered without user_id: is botToken a bot token (xoxb-)?".into(),
            );
        }
        Ok(id)
    }
}

/// Why an event produced no envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotAnEvent,
    RepeatedEvent,
    /// The `message` + `app_mention` pair for one post, or a redelivery.
    RepeatedMessage,
    OtherEventType,
    /// Edits, deletions, joins and other subtypes.
    Subtype,
    FromBot,
    FromSelf,
    Malformed,
}

/// A classified post and the keys that identify it for dedup.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub envelope: Envelope,
    pub event_id: String,
    post: String,
}

/// Turns Events API payloads into envelopes, remembering what it has seen.
pub struct Classifier {
    pub bot: BotIdentity,
    pub account: String,
    events: DedupWindow,
    posts: DedupWindow,
}

impl Classifier {
    pub fn new(bot: BotIdentity, account: &str) -> Classifier {
        Classifier {
            bot,
            account: account.to_string(),
            events: DedupWindow::new(DEDUP_WINDOW),
            posts: DedupWindow::new(DEDUP_WINDOW),
        }
    }

    /// Classifies one `events_api` payload (an `event_callback`). Nothing is
    /// remembered until [`Classifier::remember`]: a post the reactor could not
    /// commit is left unacked, and Slack's retry must not look like a repeat.
    pub fn classify(&self, payload: &Value) -> Result<Incoming, Skip> {
        if payload.get("type").and_then(Value::as_str) != Some("event_callback") {
            return Err(Skip::NotAnEvent);
        }
        let event = payload.get("event").ok_or(Skip::Malformed)?;
        let event_id = payload
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !event_id.is_empty() && self.events.contains(&event_id) {
            return Err(Skip::RepeatedEvent);
        }
        let envelope = self.envelope(event)?;
        let post = format!("{}:{}", envelope.chat_id, envelope.platform_id);
        if self.posts.contains(&post) {
            return Err(Skip::RepeatedMessage);
        }
        Ok(Incoming {
            envelope,
            event_id,
            post,
        })
    }

    /// Records an event and its post as handled.
    pub fn remember(&mut self, incoming: &Incoming) {
        if !incoming.event_id.is_empty() {
            self.events.seen_or_insert(&incoming.event_id);
        }
        self.posts.seen_or_insert(&incoming.post);
    }

    /// Records a skipped event's id, so its retries are skipped without work.
    pub fn remember_event(&mut self, payload: &Value) {
        if let Some(id) = payload.get("event_id").and_then(Value::as_str) {
            self.events.seen_or_insert(id);
        }
    }

    fn envelope(&self, e: &Value) -> Result<Envelope, Skip> {
        let s = |k: &str| e.get(k).and_then(Value::as_str);
        let kind = s("type").unwrap_or("");
        if kind != "message" && kind != "app_mention" {
            return Err(Skip::OtherEventType);
        }
        match s("subtype") {
            None | Some("file_share") | Some("thread_broadcast") => {}
            Some("bot_message") => return Err(Skip::FromBot),
            Some(_) => return Err(Skip::Subtype),
        }
        let user = s("user").unwrap_or("");
        if !self.bot.user_id.is_empty() && user == self.bot.user_id {
            return Err(Skip::FromSelf);
        }
        if e.get("bot_id").is_some_and(|b| !b.is_null()) {
            return Err(if s("bot_id") == Some(self.bot.bot_id.as_str()) {
                Skip::FromSelf
            } else {
                Skip::FromBot
            });
        }
        let channel = s("channel").unwrap_or("");
        let ts = s("ts").unwrap_or("");
        if user.is_empty()
            || channel.is_empty()
            || ts.is_empty()
            || channel.len() > 64
            || ts.len() > 32
        {
            return Err(Skip::Malformed);
        }
        let chat_kind = match s("channel_type") {
            Some("im") => ChatKind::Direct,
            Some(_) => ChatKind::Group,
            // app_mention carries no channel_type: the id prefix tells (D = DM).
            None if channel.starts_with('D') => ChatKind::Direct,
            None => ChatKind::Group,
        };
        let raw = s("text").unwrap_or("");
        let tag = format!("<@{}>", self.bot.user_id);
        let mentioned =
            kind == "app_mention" || (!self.bot.user_id.is_empty() && raw.contains(&tag));
        let text = if self.bot.user_id.is_empty() {
            raw.to_string()
        } else {
            raw.replace(&tag, "")
        };
        let name = e
            .get("user_profile")
            .and_then(|p| {
                ["display_name", "real_name"]
                    .iter()
                    .filter_map(|k| p.get(*k).and_then(Value::as_str))
                    .find(|n| !n.is_empty())
            })
            .unwrap_or(user);
        Ok(Envelope {
            channel: CHANNEL.into(),
            account: self.account.clone(),
            chat_id: channel.into(),
            chat_kind,
            sender_id: user.into(),
            sender_username: None,
            sender_name: truncate_chars(name, 64),
            mentioned,
            reply_to_bot: false,
            text: truncate_chars(plain_text(&text).trim(), MAX_TEXT_CHARS),
            attachments: Vec::new(),
            platform_id: ts.into(),
            time_ms: ts_to_ms(ts),
            thread_id: s("thread_ts").filter(|t| t.len() <= 32).map(str::to_string),
            parent_group: None,
        })
    }
}

/// Slack's `ts` (`"1712345678.000200"`) as unix milliseconds; 0 when malformed.
pub fn ts_to_ms(ts: &str) -> u64 {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: u64 = secs.parse().unwrap_or(0);
    let ms: u64 = frac.get(..3).and_then(|f| f.parse().ok()).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(ms)
}

/// Inbound mrkdwn as plain text: `<@U1>` → `@U1`, `<#C1|general>` → `#general`,
/// `<url|label>` → `label (url)`, `<!here>` → `@here`, entities decoded.
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(id) = target.strip_prefix('@') {
            out.push('@');
            out.push_str(label.unwrap_or(id));
        } else if let Some(id) = target.strip_prefix('#') {
            out.push('#');
            out.push_str(label.unwrap_or(id));
        } else if let Some(special) = target.strip_prefix('!') {
            out.push('@');
            out.push_str(label.unwrap_or(special.split('^').next().unwrap_or(special)));
        } else {
            match label {
                Some(l) if l != target => {
                    out.push_str(l);
                    out.push_str(" (");
                    out.push_str(target);
                    out.push(')');
                }
                _ => out.push_str(target),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A Web API call to make: POST `url` with a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub authorization: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn method(api_root: &str, token: &str, name: &str, body: Option<Value>) -> Request {
    let (content_type, body) = match body {
        Some(v) => (
            "application/json; charset=utf-8",
            v.to_string().into_bytes(),
        ),
        None => ("application/x-www-form-urlencoded", Vec::new()),
    };
    Request {
        url: format!("{}/{name}", api_root.trim_end_matches('/')),
        authorization: format!("Bearer {token}"),
        content_type,
        body,
    }
}

/// `auth.test` with the bot token: who the bot is.
pub fn auth_test(api_root: &str, bot_token: &str) -> Request {
    method(api_root, bot_token, "auth.test", None)
}

/// `apps.connections.open` with the app-level token: a single-use WebSocket URL.
pub fn connections_open(api_root: &str, app_token: &str) -> Request {
    method(api_root, app_token, "apps.connections.open", None)
}

/// `chat.postMessage` of one already-split, already-formatted chunk; a
/// queued message carries its send id in the metadata ([`lookup`]).
pub fn post_message(
    api_root: &str,
    bot_token: &str,
    channel: &str,
    mrkdwn: &str,
    thread_ts: Option<&str>,
    send_id: Option<&str>,
) -> Request {
    let mut body = json!({ "channel": channel, "text": mrkdwn, "unfurl_links": false });
    if let Some(t) = thread_ts.filter(|t| !t.is_empty()) {
        body["thread_ts"] = Value::from(t);
    }
    if let Some(id) = send_id {
        body["metadata"] = lookup::metadata(id);
    }
    method(api_root, bot_token, "chat.postMessage", Some(body))
}

/// `chat.update` of message `ts` with new mrkdwn text (a draft edited, or
/// replaced by the final answer, which then carries its send id).
/// `parse: "none"` as `chat.postMessage` has by default (chat.update's
/// default is `client`).
pub fn update_message(
    api_root: &str,
    bot_token: &str,
    channel: &str,
    ts: &str,
    mrkdwn: &str,
    send_id: Option<&str>,
) -> Request {
    let mut body = json!({ "channel": channel, "ts": ts, "text": mrkdwn, "parse": "none" });
    if let Some(id) = send_id {
        body["metadata"] = lookup::metadata(id);
    }
    method(api_root, bot_token, "chat.update", Some(body))
}

/// The `ts` of the message a `chat.postMessage` answer created.
pub fn posted_ts(answer: &Value) -> Option<String> {
    answer["ts"]
        .as_str()
        .filter(|ts| !ts.is_empty())
        .map(|ts| truncate_chars(ts, 32))
}

/// The URL from an `apps.connections.open` answer.
pub fn socket_url(result: &Value) -> Result<String, String> {
    match result.get("url").and_then(Value::as_str) {
        Some(u) if u.starts_with("wss://") || u.starts_with("ws://") => Ok(u.to_string()),
        _ => Err("apps.connections.open answered without a ws(s):// url".into()),
    }
}

/// What to do with a Web API answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `ok: true`: the whole body.
    Ok(Value),
    /// 429 (or `ok: false, error: "ratelimited"`): wait this many seconds.
    RetryAfter(u64),
    /// Network, 5xx, Slack-side errors: retry with backoff.
    Transient(String),
    /// Bad token, missing scope, unknown channel, …: retrying will not help.
    Fatal(String),
}

/// Classifies an HTTP status, its `Retry-After` header and body; status 0 = network failure.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Outcome {
    let wait = || {
        retry_after
            .and_then(|r| r.trim().parse::<u64>().ok())
            .unwrap_or(5)
            .clamp(1, 3600)
    };
    if status == 429 {
        return Outcome::RetryAfter(wait());
    }
    if body.len() > MAX_FRAME_BYTES {
        return Outcome::Transient(format!("answer of {} bytes is too large", body.len()));
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if status == 0 || status >= 500 => {
            return Outcome::Transient(format!("HTTP {status}"))
        }
        Err(_) => return Outcome::Transient(format!("HTTP {status}: the answer is not JSON")),
    };
    if status == 200 && v.get("ok").and_then(Value::as_bool) == Some(true) {
        return Outcome::Ok(v);
    }
    let error = truncate_chars(
        v.get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error"),
        MAX_ERROR_CHARS,
    );
    match error.as_str() {
        "ratelimited" | "rate_limited" => Outcome::RetryAfter(wait()),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
        | "team_added_to_org" => Outcome::Transient(error),
        _ if status >= 500 => Outcome::Transient(error),
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked"
        | "token_expired" | "not_allowed_token_type" => Outcome::Fatal(format!(
            "{error}: the token was refused; check channels.slack.appToken (xapp-, scope connections:write) and botToken (xoxb-)"
        )),
        "missing_scope" => Outcome::Fatal(format!(
            "missing_scope{}: add the scope to the Slack app and reinstall it",
            v.get("needed")
                .and_then(Value::as_str)
                .map(|n| format!(" ({})", truncate_chars(n, 64)))
                .unwrap_or_default()
        )),
        _ => Outcome::Fatal(error),
    }
}

#[cfg(test)]
mod tests;
