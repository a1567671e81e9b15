//! Codec: the Telegram Bot API (long polling), sans-IO: URL/body builders, response
//! classification, update parsing (`parse`), the poll backoff/health state machine
//! (`poll`) and Markdown → Telegram HTML (`format`). The I/O shell that drives it is
//! `shell` (a long-poll thread and a send thread).
//!
//! The caller owns the HTTP client and the clock. The bot token sits in the URL path
//! (`<apiRoot>/bot<token>/<method>`): always pass URLs through [`redact`] before logging.
//!
//! Formatting rule: send each chunk first with `parse_mode` `"HTML"` (the caller renders
//! Markdown to Telegram HTML, escaping with [`escape_html`]); if the answer classifies as
//! [`ApiOutcome::MarkupRejected`], resend the same chunk's *source text* with no
//! parse mode. Chunks are split to [`CAPABILITIES`] (UTF-16 code units, because
//! Telegram counts its 4096 limit in them after entity parsing).

mod format;
mod parse;
mod poll;
pub mod shell;

pub use format::markdown_to_html;
pub use parse::{parse_updates, ApiError, BotIdentity, SkipKind, Skipped, UpdateBatch};
pub use poll::{Health, PollState};

use super::adapter::{Capabilities, Formatting};
use super::envelope::Outbound;
use serde_json::{json, Map, Value};

pub const CHANNEL: &str = "telegram";
/// What Telegram can do, for the adapter registry.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_text: TEXT_LIMIT_UTF16,
    measure: super::split::Measure::Utf16,
    formatting: Formatting::TelegramHtml,
    threads: true,
    edits: true,
    typing_every_ms: 4_000,
};
pub const DEFAULT_API_ROOT: &str = "https://api.telegram.org";
/// Telegram's hard limit on message text, UTF-16 code units.
pub const TEXT_LIMIT_UTF16: usize = 4096;
/// Chunk size we send (leaves room for markup growth), as OpenClaw does.
pub const TEXT_CHUNK_LIMIT: usize = 4000;
/// Largest response body parsed.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Longest error description kept from a response.
const MAX_DESC_CHARS: usize = 300;

fn method_url(api_root: &str, token: &str, method: &str) -> String {
    format!("{}/bot{}/{}", api_root.trim_end_matches('/'), token, method)
}

/// `getUpdates` long-poll URL (GET). Only `message` updates are requested; `offset` is
/// the last processed `update_id + 1` (see `UpdateBatch::next_offset`).
pub fn get_updates_url(api_root: &str, token: &str, offset: Option<i64>, timeout_s: u32) -> String {
    let mut url = method_url(api_root, token, "getUpdates");
    url.push_str(&format!(
        "?timeout={timeout_s}&limit=100&allowed_updates=%5B%22message%22%5D"
    ));
    if let Some(o) = offset {
        url.push_str(&format!("&offset={o}"));
    }
    url
}

/// `getMe` (POST JSON): bot id and username for [`BotIdentity::from_get_me`].
pub fn get_me_request(api_root: &str, token: &str) -> (String, Vec<u8>) {
    (method_url(api_root, token, "getMe"), b"{}".to_vec())
}

/// `setMyCommands` (POST JSON): the command menu Telegram shows, from
/// `channel::commands::MENU` (descriptions cut to Telegram's 256 characters).
pub fn set_my_commands_request(
    api_root: &str,
    token: &str,
    commands: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let list: Vec<Value> = commands
        .iter()
        .map(|(c, d)| json!({"command": c, "description": crate::util::truncate(d, 256)}))
        .collect();
    (
        method_url(api_root, token, "setMyCommands"),
        json!({ "commands": list }).to_string().into_bytes(),
    )
}

/// Numeric chat ids go out as JSON numbers, `@channel` names as strings.
fn chat_id_value(chat_id: &str) -> Value {
    match chat_id.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(chat_id),
    }
}

fn message_object(
    chat_id: &str,
    text: &str,
    parse_mode: Option<&str>,
    reply_to: Option<&str>,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("chat_id".into(), chat_id_value(chat_id));
    o.insert("text".into(), Value::from(text));
    if let Some(pm) = parse_mode {
        o.insert("parse_mode".into(), Value::from(pm));
    }
    if let Some(id) = reply_to.and_then(|r| r.parse::<i64>().ok()) {
        o.insert(
            "reply_parameters".into(),
            json!({ "message_id": id, "allow_sending_without_reply": true }),
        );
    }
    o
}

/// Adds `message_thread_id` unless it is absent, not numeric, or the General topic (1),
/// which Telegram rejects.
fn insert_thread(o: &mut Map<String, Value>, thread_id: Option<&str>) {
    if let Some(t) = thread_id.and_then(|t| t.parse::<i64>().ok()) {
        if t != 1 {
            o.insert("message_thread_id".into(), Value::from(t));
        }
    }
}

/// `sendMessage` (POST JSON) for one already-split chunk, with its thread.
/// `parse_mode` is `Some("HTML")` on the first try and `None` on the plain
/// resend after `MarkupRejected`. A reply target that is gone is ignored.
pub fn send_message_request(
    api_root: &str,
    token: &str,
    out: &Outbound,
    parse_mode: Option<&str>,
) -> (String, Vec<u8>) {
    let mut o = message_object(&out.chat_id, &out.text, parse_mode, out.reply_to.as_deref());
    insert_thread(&mut o, out.thread_id.as_deref());
    (
        method_url(api_root, token, "sendMessage"),
        Value::Object(o).to_string().into_bytes(),
    )
}

/// `editMessageText` (POST JSON): `out`'s text replaces that of message
/// `message_id` (a draft); Telegram keeps its thread and quote.
pub fn edit_message_text_request(
    api_root: &str,
    token: &str,
    out: &Outbound,
    message_id: i64,
    parse_mode: Option<&str>,
) -> (String, Vec<u8>) {
    let mut o = message_object(&out.chat_id, &out.text, parse_mode, None);
    o.insert("message_id".into(), Value::from(message_id));
    (
        method_url(api_root, token, "editMessageText"),
        Value::Object(o).to_string().into_bytes(),
    )
}

/// `sendChatAction` typing indicator (POST JSON); it lasts ~5 s, resend every ~4 s.
pub fn send_chat_action_request(
    api_root: &str,
    token: &str,
    chat_id: &str,
    thread_id: Option<&str>,
) -> (String, Vec<u8>) {
    let mut o = Map::new();
    o.insert("chat_id".into(), chat_id_value(chat_id));
    o.insert("action".into(), Value::from("typing"));
    insert_thread(&mut o, thread_id);
    (
        method_url(api_root, token, "sendChatAction"),
        Value::Object(o).to_string().into_bytes(),
    )
}

/// Hides bot tokens (`/bot<id>:<secret>`) anywhere in `s`, for logs and errors.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/bot") {
        let after = &rest[i + 4..];
        let seg_len = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&rest[..i + 4]);
        if after[..seg_len].contains(':') {
            out.push_str("<redacted>");
        } else {
            out.push_str(&after[..seg_len]);
        }
        rest = &after[seg_len..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for `parse_mode: "HTML"`.
pub fn escape_html(s: &str) -> String {
    super::escape::escape_entities(s, true)
}

/// What the caller should do with a Bot API response.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiOutcome {
    /// `ok: true`; carries `result`.
    Ok(Value),
    /// 429: wait exactly this many seconds (`parameters.retry_after`).
    RetryAfter(u64),
    /// 409: another `getUpdates` consumer or a webhook is active.
    Conflict,
    /// 400 "can't parse entities": resend as plain text.
    MarkupRejected,
    /// 400 "message is too long": split smaller.
    TooLong,
    /// 400 with `parameters.migrate_to_chat_id`: the group became this supergroup id.
    Migrated(i64),
    /// 5xx, bad 200 body, network (status 0): retry with backoff.
    Transient(String),
    /// 401/403/404 and other 4xx: bad token, bot blocked/kicked, bad request.
    Fatal(String),
}

/// Classifies an HTTP status and body; `status` 0 stands for a network failure.
pub fn classify_response(status: u16, body: &[u8]) -> ApiOutcome {
    if body.len() > MAX_BODY_BYTES {
        return ApiOutcome::Transient(format!("response body too large ({} bytes)", body.len()));
    }
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v.get(k));
    if status == 200 && field("ok").and_then(Value::as_bool) == Some(true) {
        return ApiOutcome::Ok(field("result").cloned().unwrap_or(Value::Null));
    }
    let param = |k: &str| {
        field("parameters")
            .and_then(|p| p.get(k))
            .and_then(Value::as_i64)
    };
    let desc = field("description")
        .and_then(Value::as_str)
        .map(|d| super::envelope::truncate_chars(d, MAX_DESC_CHARS))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = field("error_code")
        .and_then(Value::as_i64)
        .unwrap_or(i64::from(status));
    let lower = desc.to_ascii_lowercase();
    match code {
        0 => ApiOutcome::Transient(format!("network error: {desc}")),
        200 => ApiOutcome::Transient(format!("malformed 200 response: {desc}")),
        429 => ApiOutcome::RetryAfter(param("retry_after").unwrap_or(5).clamp(1, 3600) as u64),
        409 => ApiOutcome::Conflict,
        400 => {
            if let Some(id) = param("migrate_to_chat_id") {
                ApiOutcome::Migrated(id)
            } else if lower.contains("can't parse entities")
                || lower.contains("can't find end of")
                || lower.contains("unsupported start tag")
            {
                ApiOutcome::MarkupRejected
            } else if lower.contains("message is not modified") {
                // An edit to the text the message already shows.
                ApiOutcome::Ok(Value::Null)
            } else if lower.contains("too long") {
                ApiOutcome::TooLong
            } else {
                ApiOutcome::Fatal(desc)
            }
        }
        401..=499 => ApiOutcome::Fatal(desc),
        _ => ApiOutcome::Transient(desc),
    }
}

#[cfg(test)]
mod tests;
