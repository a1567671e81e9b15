//! `getUpdates` response parsing: Telegram `Update` objects to channel [`Envelope`]s.
//!
//! One bad update never fails the batch: it is returned in `skipped` with a reason, and
//! its `update_id` still advances `next_offset`, so the caller persists the offset and
//! never replays it. Edited messages are ignored (answering every typo fix would repeat
//! the model call); channel posts and other update kinds are ignored too.

use super::MAX_BODY_BYTES;
use crate::channel::envelope::{
    truncate_chars, Attachment, AttachmentKind, ChatKind, Envelope, MAX_TEXT_CHARS,
};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// Most entities inspected per message.
const MAX_ENTITIES: usize = 100;
const MAX_NAME_CHARS: usize = 128;

/// The bot itself, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    pub id: i64,
    /// Without the leading `@`.
    pub username: String,
}

impl BotIdentity {
    /// Reads `getMe`'s `result` (`ApiOutcome::Ok` payload).
    pub fn from_get_me(result: &Value) -> Result<BotIdentity, ApiError> {
        let id = result.get("id").and_then(Value::as_i64);
        let name = result.get("username").and_then(Value::as_str);
        match (id, name) {
            (Some(id), Some(name)) => Ok(BotIdentity {
                id,
                username: name.trim_start_matches('@').to_string(),
            }),
            _ => Err(ApiError::BadShape(
                "getMe result lacks id or username".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// A valid update we do not handle (edits, channel posts, bots, service messages).
    Ignored,
    /// An update that does not match the Bot API shape; log it.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub update_id: Option<i64>,
    pub kind: SkipKind,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateBatch {
    pub envelopes: Vec<Envelope>,
    pub skipped: Vec<Skipped>,
    /// Max `update_id` + 1 over every update seen, handled or not; `None` if none.
    pub next_offset: Option<i64>,
}

/// The whole response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    TooLarge(usize),
    BadJson(String),
    NotOk { code: i64, description: String },
    BadShape(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::TooLarge(n) => write!(f, "response too large ({n} bytes)"),
            ApiError::BadJson(e) => write!(f, "invalid JSON: {e}"),
            ApiError::NotOk { code, description } => write!(f, "API error {code}: {description}"),
            ApiError::BadShape(e) => write!(f, "unexpected response shape: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

#[derive(Deserialize)]
struct TgUser {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct TgChat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    title: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct TgEntity {
    #[serde(rename = "type")]
    kind: String,
    offset: usize,
    length: usize,
    user: Option<TgUser>,
}

#[derive(Deserialize)]
struct TgReply {
    message_id: Option<i64>,
    from: Option<TgUser>,
}

#[derive(Deserialize)]
struct TgFile {
    file_id: String,
    file_size: Option<u64>,
}

#[derive(Deserialize)]
struct TgMessage {
    message_id: i64,
    date: i64,
    chat: TgChat,
    from: Option<TgUser>,
    sender_chat: Option<TgChat>,
    message_thread_id: Option<i64>,
    #[serde(default)]
    is_topic_message: bool,
    #[serde(default)]
    is_automatic_forward: bool,
    text: Option<String>,
    caption: Option<String>,
    #[serde(default)]
    entities: Vec<TgEntity>,
    #[serde(default)]
    caption_entities: Vec<TgEntity>,
    reply_to_message: Option<TgReply>,
    #[serde(default)]
    photo: Vec<TgFile>,
    document: Option<TgFile>,
    audio: Option<TgFile>,
    voice: Option<TgFile>,
    video: Option<TgFile>,
    video_note: Option<TgFile>,
    animation: Option<TgFile>,
    sticker: Option<TgFile>,
}

type Skip = (SkipKind, String);

fn ignored(reason: impl Into<String>) -> Skip {
    (SkipKind::Ignored, reason.into())
}

/// Parses a `getUpdates` response body (HTTP 200) into envelopes.
pub fn parse_updates(
    body: &[u8],
    bot: &BotIdentity,
    account: &str,
) -> Result<UpdateBatch, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(body.len()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    if v.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(ApiError::NotOk {
            code: v.get("error_code").and_then(Value::as_i64).unwrap_or(0),
            description: truncate_chars(
                v.get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("ok is not true"),
                300,
            ),
        });
    }
    let updates = v
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::BadShape("result is not an array".into()))?;
    let mut batch = UpdateBatch::default();
    for u in updates {
        let update_id = u.get("update_id").and_then(Value::as_i64);
        if let Some(id) = update_id {
            let next = id.saturating_add(1);
            batch.next_offset = Some(batch.next_offset.map_or(next, |o| o.max(next)));
        }
        match parse_update(u, bot, account) {
            Ok(env) => batch.envelopes.push(env),
            Err((kind, reason)) => batch.skipped.push(Skipped {
                update_id,
                kind,
                reason,
            }),
        }
    }
    Ok(batch)
}

fn parse_update(u: &Value, bot: &BotIdentity, account: &str) -> Result<Envelope, Skip> {
    if u.get("update_id").and_then(Value::as_i64).is_none() {
        return Err((
            SkipKind::Malformed,
            "update without numeric update_id".into(),
        ));
    }
    let raw = match u.get("message") {
        Some(m) => m,
        None => {
            let kind = u
                .as_object()
                .and_then(|o| o.keys().find(|k| k.as_str() != "update_id"))
                .map(|k| truncate_chars(k, 40))
                .unwrap_or_else(|| "empty".into());
            return Err(ignored(format!("{kind} update ignored")));
        }
    };
    let m = TgMessage::deserialize(raw)
        .map_err(|e| (SkipKind::Malformed, format!("bad message: {e}")))?;
    message_to_envelope(m, bot, account)
}

fn message_to_envelope(m: TgMessage, bot: &BotIdentity, account: &str) -> Result<Envelope, Skip> {
    let chat_kind = match m.chat.kind.as_str() {
        "private" => ChatKind::Direct,
        "group" | "supergroup" => ChatKind::Group,
        other => {
            return Err(ignored(format!(
                "{} chat ignored",
                truncate_chars(other, 20)
            )))
        }
    };
    if m.is_automatic_forward {
        return Err(ignored("automatic forward from a linked channel"));
    }
    let (sender_id, sender_username, sender_name) = match (&m.sender_chat, &m.from) {
        // Anonymous group admins and channels posting in groups speak as a chat.
        (Some(sc), _) => (
            sc.id.to_string(),
            sc.username.clone(),
            sc.title.clone().unwrap_or_default(),
        ),
        (None, Some(f)) => {
            if f.is_bot {
                return Err(ignored("message from a bot"));
            }
            let name = match &f.last_name {
                Some(l) => format!("{} {}", f.first_name, l),
                None => f.first_name.clone(),
            };
            (
                f.id.to_string(),
                f.username.clone(),
                name.trim().to_string(),
            )
        }
        (None, None) => return Err((SkipKind::Malformed, "message without sender".into())),
    };
    let (mut text, entities) = match (m.text, m.caption) {
        (Some(t), _) => (t, m.entities),
        (None, Some(c)) => (c, m.caption_entities),
        (None, None) => (String::new(), Vec::new()),
    };
    let mut mentioned = false;
    let mut leading_mention = false;
    let mut command_prefix: Option<(String, usize)> = None;
    let units: Vec<u16> = if entities.is_empty() {
        Vec::new()
    } else {
        text.encode_utf16().collect()
    };
    for e in entities.iter().take(MAX_ENTITIES) {
        match e.kind.as_str() {
            "mention" => {
                let hit = utf16_slice(&units, e.offset, e.length)
                    .and_then(|s| {
                        s.strip_prefix('@')
                            .map(|n| n.eq_ignore_ascii_case(&bot.username))
                    })
                    .unwrap_or(false);
                mentioned |= hit;
                leading_mention |= hit && e.offset == 0;
            }
            "text_mention" => {
                mentioned |= e.user.as_ref().is_some_and(|u| u.id == bot.id);
            }
            "bot_command" => {
                let cmd = utf16_slice(&units, e.offset, e.length).unwrap_or_default();
                if let Some((name, target)) = cmd.split_once('@') {
                    let ours = target.eq_ignore_ascii_case(&bot.username);
                    if e.offset == 0 && !ours {
                        return Err(ignored("command for another bot"));
                    }
                    mentioned |= ours;
                    if ours && e.offset == 0 {
                        command_prefix = Some((name.to_string(), cmd.len()));
                    }
                }
            }
            _ => {}
        }
    }
    // "@pinchbot what time is it?" reaches the model as "what time is it?".
    if leading_mention {
        let name_len = bot.username.len() + 1;
        if text.is_char_boundary(name_len) {
            let rest = text[name_len..]
                .trim_start_matches([' ', ',', ':'])
                .to_string();
            if !rest.is_empty() {
                text = rest;
            }
        }
    }
    // "/status@pinchbot args" reaches the command layer as "/status args".
    if let Some((name, len)) = command_prefix {
        if text.is_char_boundary(len) {
            text = format!("{}{}", name, &text[len..]);
        }
    }
    let reply_to_bot = match &m.reply_to_message {
        Some(r) => {
            // In forum topics every message "replies" to the topic's first message.
            let topic_root = m.is_topic_message && r.message_id == m.message_thread_id;
            !topic_root && r.from.as_ref().is_some_and(|f| f.id == bot.id)
        }
        None => false,
    };
    let mut env = Envelope {
        channel: super::CHANNEL.to_string(),
        account: account.to_string(),
        chat_id: m.chat.id.to_string(),
        chat_kind,
        sender_id,
        sender_username: sender_username.map(|u| truncate_chars(&u, 64)),
        sender_name: truncate_chars(&sender_name, MAX_NAME_CHARS),
        mentioned,
        reply_to_bot,
        text: truncate_chars(&text, MAX_TEXT_CHARS),
        attachments: Vec::new(),
        platform_id: m.message_id.to_string(),
        time_ms: u64::try_from(m.date).unwrap_or(0).saturating_mul(1000),
        thread_id: if m.is_topic_message {
            m.message_thread_id.map(|t| t.to_string())
        } else {
            None
        },
        parent_group: None,
    };
    // Photo sizes come smallest first; keep the largest. Animations also carry a
    // `document` copy for old clients; count them once.
    let document = if m.animation.is_some() {
        None
    } else {
        m.document
    };
    let media = [
        (m.photo.into_iter().last(), AttachmentKind::Image),
        (document, AttachmentKind::Document),
        (m.audio, AttachmentKind::Audio),
        (m.voice, AttachmentKind::Voice),
        (m.video, AttachmentKind::Video),
        (m.video_note, AttachmentKind::Video),
        (m.animation, AttachmentKind::Video),
        (m.sticker, AttachmentKind::Sticker),
    ];
    for (file, kind) in media {
        if let Some(f) = file {
            env.push_attachment(Attachment {
                reference: f.file_id,
                kind,
                size: f.file_size,
            });
        }
    }
    if env.is_empty() {
        return Err(ignored("no text or media (service message)"));
    }
    Ok(env)
}

/// Text of `units[offset..offset+len]`; `None` when out of range or splitting a pair.
fn utf16_slice(units: &[u16], offset: usize, len: usize) -> Option<String> {
    let end = offset.checked_add(len)?;
    let slice = units.get(offset..end)?;
    String::from_utf16(slice).ok()
}
