//! Exactly-once posting on Slack, sans-IO. `chat.postMessage` has no
//! idempotency key, so every queued message carries pinch's send id in its
//! message metadata (`{"event_type": "pinch_send", "event_payload": {"id"}}`).
//! Before a send whose earlier attempt may have reached Slack is redone (it
//! survived a restart, or an attempt ended without an answer), one page of
//! the conversation since the message was queued is read with
//! `include_all_metadata` — `conversations.history`, or
//! `conversations.replies` for a thread — and a message carrying the id
//! means the send already happened.

use super::{Request, Value};
use crate::net::percent::encode;

/// The metadata event type of pinch's sends.
pub const EVENT_TYPE: &str = "pinch_send";
/// Messages read by one lookup (one page; Slack's default page size).
pub const PAGE: u32 = 100;
/// How far before the queue time the lookup starts: clock skew between
/// this host and Slack.
pub const SKEW_MS: u64 = 300_000;

/// The send id of queue entry `seq` queued at `queued_ms`: the same on every
/// attempt and across restarts, and not reused by a later queue.
pub fn send_id(seq: u64, queued_ms: u64) -> String {
    format!("{seq:x}.{queued_ms:x}")
}

/// The `metadata` argument of a send.
pub fn metadata(id: &str) -> Value {
    serde_json::json!({"event_type": EVENT_TYPE, "event_payload": {"id": id}})
}

/// The lookup for send `id` in `channel` (in thread `thread_ts` when the
/// send went to one), covering messages since `queued_ms` less the skew.
/// A form body, as for every read method.
pub fn lookup(
    api_root: &str,
    bot_token: &str,
    channel: &str,
    thread_ts: Option<&str>,
    queued_ms: u64,
) -> Request {
    let oldest_ms = queued_ms.saturating_sub(SKEW_MS);
    let mut form = format!(
        "channel={}&oldest={}.{:03}000&inclusive=true&limit={PAGE}&include_all_metadata=true",
        encode(channel),
        oldest_ms / 1000,
        oldest_ms % 1000
    );
    let name = match thread_ts.filter(|t| !t.is_empty()) {
        Some(ts) => {
            form.push_str("&ts=");
            form.push_str(&encode(ts));
            "conversations.replies"
        }
        None => "conversations.history",
    };
    let mut req = super::method(api_root, bot_token, name, None);
    req.body = form.into_bytes();
    req
}

/// The `ts` of the message in a lookup's answer that carries send `id`.
pub fn find(answer: &Value, id: &str) -> Option<String> {
    answer
        .get("messages")?
        .as_array()?
        .iter()
        .find(|m| {
            let meta = &m["metadata"];
            meta["event_type"].as_str() == Some(EVENT_TYPE)
                && meta["event_payload"]["id"].as_str() == Some(id)
        })
        .and_then(|m| m["ts"].as_str())
        .map(|ts| super::truncate_chars(ts, 32))
}
