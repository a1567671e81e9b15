//! Discord REST v10, sans-IO: request URLs and bodies, the rate-limit
//! headers and 429 bodies, answer classification, and a limiter that keeps
//! per-bucket and global waits.
//!
//! Every request carries `Authorization: Bot <token>` and a
//! `User-Agent: DiscordBot (url, version)` ([`headers`]). Rate limits are
//! per route and major parameter (the channel id): the limiter learns each
//! route's bucket from `X-RateLimit-Bucket`, waits when a bucket's
//! `Remaining` is 0 until its `Reset-After`, and after a 429 waits the body's
//! `retry_after` (float seconds) for that bucket, or for everything when
//! `global` is true.

use crate::channel::envelope::truncate_chars;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Most routes and buckets remembered (one per channel written to, in
/// practice); past this the oldest are forgotten.
const MAX_BUCKETS: usize = 256;
/// Longest error message kept from an answer.
const MAX_MESSAGE_CHARS: usize = 300;

fn v10(api_root: &str) -> String {
    format!("{}/v10", api_root.trim_end_matches('/'))
}

/// The headers of every request.
pub fn headers(token: &str) -> [(&'static str, String); 2] {
    [
        ("Authorization", format!("Bot {token}")),
        (
            "User-Agent",
            format!("DiscordBot (pinch, {})", env!("CARGO_PKG_VERSION")),
        ),
    ]
}

/// `GET /gateway/bot`: the Gateway URL (and session start limits).
pub fn gateway_bot_url(api_root: &str) -> String {
    format!("{}/gateway/bot", v10(api_root))
}

/// The `url` of a `GET /gateway/bot` answer.
pub fn parse_gateway_bot(body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("GET /gateway/bot answered something that is not JSON: {e}"))?;
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("wss://") || u.starts_with("ws://"))
        .ok_or("GET /gateway/bot answered without a ws(s):// url")?;
    Ok(truncate_chars(url, 512))
}

/// The limiter's key for a route: method, route and major parameter.
pub fn route_key(method: &str, route: &str, major: &str) -> String {
    format!("{method} {route} {major}")
}

/// The `nonce` of part `index` of queue entry `seq`: the same on every
/// attempt and across restarts, at most 25 characters (Discord's limit):
/// "q" + up to 16 hex digits + "." + the part number.
pub fn nonce(seq: u64, index: usize) -> String {
    format!("q{seq:x}.{}", index.min(99_999))
}

/// `POST /channels/{id}/messages`: the URL, the route key and the body.
/// Mentions in the text never ping anyone (`allowed_mentions.parse: []`);
/// `reply_to` makes it a reply that still goes out if that message is gone.
/// With `enforce_nonce`, Discord answers a repeat of `nonce` by the same
/// bot within a few minutes with the message it already created, so a send
/// redone after a crash does not post twice.
pub fn create_message(
    api_root: &str,
    channel_id: &str,
    content: &str,
    reply_to: Option<&str>,
    nonce: &str,
) -> (String, String, Vec<u8>) {
    create(api_root, channel_id, content, reply_to, Some(nonce))
}

/// [`create_message`] without a nonce (a draft: sent once, never redone).
pub fn create_message_plain(
    api_root: &str,
    channel_id: &str,
    content: &str,
    reply_to: Option<&str>,
) -> (String, String, Vec<u8>) {
    create(api_root, channel_id, content, reply_to, None)
}

fn create(
    api_root: &str,
    channel_id: &str,
    content: &str,
    reply_to: Option<&str>,
    nonce: Option<&str>,
) -> (String, String, Vec<u8>) {
    let mut body = json!({"content": content, "allowed_mentions": {"parse": []}});
    if let Some(nonce) = nonce {
        body["nonce"] = nonce.into();
        body["enforce_nonce"] = true.into();
    }
    if let Some(id) = reply_to {
        body["message_reference"] = json!({"message_id": id, "fail_if_not_exists": false});
    }
    (
        format!("{}/channels/{channel_id}/messages", v10(api_root)),
        route_key("POST", "/channels/{id}/messages", channel_id),
        body.to_string().into_bytes(),
    )
}

/// `PATCH /channels/{id}/messages/{id}`: the URL, the route key (its own
/// bucket, per channel) and the body replacing the message's content.
pub fn edit_message(
    api_root: &str,
    channel_id: &str,
    message_id: &str,
    content: &str,
) -> (String, String, Vec<u8>) {
    let body = json!({"content": content, "allowed_mentions": {"parse": []}});
    (
        format!(
            "{}/channels/{channel_id}/messages/{message_id}",
            v10(api_root)
        ),
        route_key("PATCH", "/channels/{id}/messages/{id}", channel_id),
        body.to_string().into_bytes(),
    )
}

/// The id of the message a create answered with.
pub fn message_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 32)
        .map(str::to_string)
}

/// `POST /channels/{id}/typing` (no body): the indicator lasts ~10 s.
pub fn typing(api_root: &str, channel_id: &str) -> (String, String) {
    (
        format!("{}/channels/{channel_id}/typing", v10(api_root)),
        route_key("POST", "/channels/{id}/typing", channel_id),
    )
}

/// What the rate-limit headers of one answer say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateInfo {
    pub bucket: Option<String>,
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset-After`, in milliseconds.
    pub reset_after_ms: Option<u64>,
    pub global: bool,
}

/// Float seconds ("1.25") → milliseconds, bounded to a day; None if not a
/// finite non-negative number.
pub fn seconds_to_ms(text: &str) -> Option<u64> {
    let secs: f64 = text.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some((secs.min(86_400.0) * 1000.0).ceil() as u64)
}

/// Reads the `X-RateLimit-*` headers through `get` (case-insensitive lookup).
pub fn parse_rate_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> RateInfo {
    RateInfo {
        bucket: get("x-ratelimit-bucket")
            .filter(|b| !b.is_empty() && b.len() <= 64)
            .map(str::to_string),
        remaining: get("x-ratelimit-remaining").and_then(|r| r.trim().parse().ok()),
        reset_after_ms: get("x-ratelimit-reset-after").and_then(seconds_to_ms),
        global: get("x-ratelimit-global").is_some_and(|g| g.eq_ignore_ascii_case("true")),
    }
}

/// How an answer is to be taken.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    /// 429: wait `retry_after_ms` (everything, when `global`), then retry.
    RateLimited {
        retry_after_ms: u64,
        global: bool,
    },
    /// Worth retrying later (5xx, unreadable answers).
    Transient(String),
    /// Never going to work as it is (bad token, no access, unknown channel).
    Permanent(String),
}

/// Classifies a REST answer; `retry_after_header` is the `Retry-After`
/// header (whole seconds), used when the 429 body has none.
pub fn classify(status: u16, body: &[u8], retry_after_header: Option<&str>) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Ok;
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = truncate_chars(
        v.get("message").and_then(Value::as_str).unwrap_or(""),
        MAX_MESSAGE_CHARS,
    );
    let code = v.get("code").and_then(Value::as_u64).unwrap_or(0);
    match status {
        429 => {
            let from_body = match v.get("retry_after") {
                Some(Value::Number(n)) => n.as_f64().and_then(|f| seconds_to_ms(&f.to_string())),
                Some(Value::String(s)) => seconds_to_ms(s),
                _ => None,
            };
            let retry_after_ms = from_body
                .or_else(|| retry_after_header.and_then(seconds_to_ms))
                .unwrap_or(1000);
            let global = v.get("global").and_then(Value::as_bool).unwrap_or(false);
            Outcome::RateLimited {
                retry_after_ms,
                global,
            }
        }
        401 => Outcome::Permanent(format!(
            "Discord rejected the bot token (401 {message}): set channels.discord.token to the token from the Developer Portal"
        )),
        403 => Outcome::Permanent(format!(
            "Discord refused (403, code {code}: {message}): give the bot the Send Messages permission in that channel"
        )),
        404 => Outcome::Permanent(format!(
            "Discord does not know that channel (404, code {code}: {message})"
        )),
        400..=499 => Outcome::Permanent(format!(
            "Discord refused the message ({status}, code {code}: {message})"
        )),
        _ => Outcome::Transient(format!("Discord answered {status} {message}")),
    }
}

/// Per-bucket and global waits, learnt from answers.
#[derive(Debug, Default)]
pub struct Limiter {
    /// Route key → bucket id (from `X-RateLimit-Bucket`).
    route_bucket: HashMap<String, String>,
    /// Bucket id (or route key before its bucket is known) → time the
    /// bucket may be used again, when it is exhausted.
    blocked_until: HashMap<String, u64>,
    global_until: u64,
}

impl Limiter {
    fn bucket_of(&self, route: &str) -> String {
        self.route_bucket
            .get(route)
            .cloned()
            .unwrap_or_else(|| route.to_string())
    }

    /// Milliseconds to wait before a request on `route` may go.
    pub fn wait_ms(&self, route: &str, now: u64) -> u64 {
        let bucket = self.blocked_until.get(&self.bucket_of(route)).copied();
        let until = bucket.unwrap_or(0).max(self.global_until);
        until.saturating_sub(now)
    }

    fn bound(&mut self, now: u64) {
        if self.blocked_until.len() > MAX_BUCKETS {
            self.blocked_until.retain(|_, until| *until > now);
        }
        if self.blocked_until.len() > MAX_BUCKETS {
            self.blocked_until.clear();
        }
        if self.route_bucket.len() > MAX_BUCKETS {
            self.route_bucket.clear();
        }
    }

    /// Records the headers of an answer on `route`.
    pub fn on_response(&mut self, route: &str, info: &RateInfo, now: u64) {
        if let Some(b) = &info.bucket {
            if self.route_bucket.get(route) != Some(b) {
                self.route_bucket.insert(route.to_string(), b.clone());
            }
        }
        let bucket = self.bucket_of(route);
        match (info.remaining, info.reset_after_ms) {
            (Some(0), Some(after)) => {
                self.blocked_until.insert(bucket, now.saturating_add(after));
            }
            _ => {
                self.blocked_until.remove(&bucket);
            }
        }
        self.bound(now);
    }

    /// Records a 429 on `route`.
    pub fn on_429(&mut self, route: &str, retry_after_ms: u64, global: bool, now: u64) {
        let until = now.saturating_add(retry_after_ms);
        if global {
            self.global_until = self.global_until.max(until);
        } else {
            let bucket = self.bucket_of(route);
            self.blocked_until.insert(bucket, until);
        }
        self.bound(now);
    }
}
