//! Channel-neutral message types shared by every adapter.
//!
//! An adapter turns a platform payload into an [`Envelope`] (inbound) and sends an
//! [`Outbound`] back. [`DedupWindow`] remembers recently seen platform message ids so
//! redeliveries are dropped; it is serializable so the caller can persist it.

use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// Longest inbound text kept, in Unicode scalar values; the rest is cut off.
pub const MAX_TEXT_CHARS: usize = 16 * 1024;
/// Most attachments kept on one envelope.
pub const MAX_ATTACHMENTS: usize = 8;
/// Longest reference (platform file id) or name kept on an attachment, in bytes.
pub const MAX_REF_BYTES: usize = 512;
/// Largest dedup window accepted, whatever the caller or a persisted file asks for.
pub const MAX_DEDUP_CAPACITY: usize = 100_000;
/// Dedup keys longer than this are folded into a short prefix plus a hash.
const MAX_KEY_BYTES: usize = 128;

/// Whether a conversation is one-to-one with the bot or shared with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    Image,
    Audio,
    Voice,
    Video,
    Document,
    Sticker,
    Other,
}

/// A media item: only a platform reference is kept, never the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Platform handle used to download the file later (Telegram `file_id`).
    pub reference: String,
    pub kind: AttachmentKind,
    /// Size in bytes when the platform tells it.
    pub size: Option<u64>,
}

/// One inbound message, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub channel: String,
    pub account: String,
    pub chat_id: String,
    pub chat_kind: ChatKind,
    pub sender_id: String,
    pub sender_username: Option<String>,
    pub sender_name: String,
    /// The bot was mentioned natively (entity, `/cmd@bot`).
    pub mentioned: bool,
    /// The message replies to one of the bot's own messages (an implicit mention).
    pub reply_to_bot: bool,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Platform message id, unique within the chat.
    pub platform_id: String,
    /// Platform timestamp, unix milliseconds.
    pub time_ms: u64,
    /// Forum topic / thread, when the platform has one.
    pub thread_id: Option<String>,
    /// The group's parent (a Discord server): its rule in `groups` applies
    /// to the group when the group has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group: Option<String>,
}

impl Envelope {
    /// True when there is nothing to act on: blank text and no attachment.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.attachments.is_empty()
    }

    /// Adds an attachment unless [`MAX_ATTACHMENTS`] are already present.
    pub fn push_attachment(&mut self, att: Attachment) -> bool {
        if self.attachments.len() >= MAX_ATTACHMENTS {
            return false;
        }
        self.attachments.push(Attachment {
            reference: crate::util::truncate(&att.reference, MAX_REF_BYTES).to_string(),
            ..att
        });
        true
    }
}

/// Where a reply goes: channel, account, chat, and the thread (forum topic)
/// and message it answers when the platform has them. Built from the inbound
/// [`Envelope`] for a channel run, or parsed from a `channel:chat_id` /
/// `channel:account:chat_id` string for cron, heartbeat and webhook targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTarget {
    pub channel: String,
    pub account: String,
    pub chat_id: String,
    /// Forum topic / thread the reply belongs in.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Platform message id the reply quotes.
    #[serde(default)]
    pub reply_to: Option<String>,
}

impl ReplyTarget {
    /// The chat (and thread) `env` came from; `quote` also answers the
    /// message itself.
    pub fn from_envelope(env: &Envelope, quote: bool) -> ReplyTarget {
        ReplyTarget {
            channel: env.channel.clone(),
            account: env.account.clone(),
            chat_id: env.chat_id.clone(),
            thread_id: env.thread_id.clone(),
            reply_to: if quote {
                Some(env.platform_id.clone())
            } else {
                None
            },
        }
    }

    /// `channel:chat_id` or `channel:account:chat_id` (account defaults to
    /// "default"; no part blank); no thread, no quote. The one parser of
    /// delivery targets: config, jobs, heartbeats and `message.send` use it.
    pub fn parse(s: &str) -> Result<ReplyTarget, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let blank = |part: &str| part.trim().is_empty();
        let (channel, account, chat) = match parts.as_slice() {
            [c, chat] if !blank(c) && !blank(chat) => (*c, "default", *chat),
            [c, a, chat] if !blank(c) && !blank(a) && !blank(chat) => (*c, *a, *chat),
            _ => {
                return Err(format!(
                    "{s:?} is not a delivery target; use channel:chat_id, e.g. telegram:123456789"
                ))
            }
        };
        Ok(ReplyTarget {
            channel: channel.to_string(),
            account: account.to_string(),
            chat_id: chat.to_string(),
            thread_id: None,
            reply_to: None,
        })
    }

    /// `channel:chat_id`: the chat, as sessions and `lastChat` name it.
    pub fn chat(&self) -> String {
        format!("{}:{}", self.channel, self.chat_id)
    }

    /// One message of the reply: `text` to this target.
    pub fn outbound(&self, text: String) -> Outbound {
        Outbound {
            channel: self.channel.clone(),
            account: self.account.clone(),
            chat_id: self.chat_id.clone(),
            text,
            reply_to: self.reply_to.clone(),
            thread_id: self.thread_id.clone(),
            max_attempts: None,
            edit: None,
        }
    }
}

/// One reply to send (one row of the outbound queue; rows written before
/// `reply_to`/`thread_id` existed read them as absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub channel: String,
    pub account: String,
    pub chat_id: String,
    pub text: String,
    /// Platform message id to reply to.
    #[serde(default)]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Delivery attempts before this message is dead-lettered, when lower
    /// than `queue.maxAttempts` (heartbeat alerts: they must not hold
    /// their chat's later messages for long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The draft this message replaces (an edit of it), by the name the
    /// adapter knows it under; a draft it does not know means a new message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
}

impl Outbound {
    /// A reply in the same chat (and thread) as `env`, quoting it when `quote` is set.
    pub fn reply(env: &Envelope, text: String, quote: bool) -> Outbound {
        ReplyTarget::from_envelope(env, quote).outbound(text)
    }
}

/// The one character-count cut (`crate::util`), under the name the
/// platform codecs import it by.
pub use crate::util::truncate_chars;

/// Remembers the last `capacity` keys; the oldest is evicted first.
///
/// Serialized as `{"capacity": N, "keys": [oldest, ..., newest]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DedupRepr", into = "DedupRepr")]
pub struct DedupWindow {
    capacity: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

#[derive(Serialize, Deserialize)]
struct DedupRepr {
    capacity: usize,
    #[serde(default)]
    keys: Vec<String>,
}

impl From<DedupRepr> for DedupWindow {
    fn from(r: DedupRepr) -> Self {
        let mut w = DedupWindow::new(r.capacity);
        // A file holding more keys than the capacity keeps only the newest ones.
        let skip = r.keys.len().saturating_sub(w.capacity);
        for k in r.keys.into_iter().skip(skip) {
            w.seen_or_insert(&k);
        }
        w
    }
}

impl From<DedupWindow> for DedupRepr {
    fn from(w: DedupWindow) -> Self {
        DedupRepr {
            capacity: w.capacity,
            keys: w.order.into_iter().collect(),
        }
    }
}

impl DedupWindow {
    /// `capacity` is clamped to `1..=MAX_DEDUP_CAPACITY`.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_DEDUP_CAPACITY);
        DedupWindow {
            capacity,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Returns true if `key` is in the window; otherwise records it and returns false.
    pub fn seen_or_insert(&mut self, key: &str) -> bool {
        let key = fold_key(key);
        if self.set.contains(&key) {
            return true;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        false
    }

    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(&fold_key(key))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Keeps memory per key bounded: long keys become a prefix plus a 64-bit FNV-1a hash.
fn fold_key(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES {
        return key.to_string();
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}#{:016x}", crate::util::truncate(key, 64), h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            channel: "telegram".into(),
            account: "default".into(),
            chat_id: "42".into(),
            chat_kind: ChatKind::Direct,
            sender_id: "42".into(),
            sender_username: None,
            sender_name: "Ann".into(),
            mentioned: false,
            reply_to_bot: false,
            text: "hi".into(),
            attachments: vec![],
            platform_id: "7".into(),
            time_ms: 0,
            thread_id: None,
            parent_group: None,
        }
    }

    #[test]
    fn dedup_fifo_eviction_and_round_trip() {
        let mut w = DedupWindow::new(3);
        assert!(!w.seen_or_insert("a"));
        assert!(w.seen_or_insert("a"));
        assert!(!w.seen_or_insert("b"));
        assert!(!w.seen_or_insert("c"));
        assert!(!w.seen_or_insert("d")); // evicts "a"
        assert_eq!(w.len(), 3);
        assert!(!w.contains("a"));
        let json = serde_json::to_string(&w).expect("serialize");
        assert_eq!(json, r#"{"capacity":3,"keys":["b","c","d"]}"#);
        let mut back: DedupWindow = serde_json::from_str(&json).expect("deserialize");
        assert!(back.seen_or_insert("c"));
        assert!(!back.seen_or_insert("a"));
        assert!(!back.contains("b")); // oldest evicted again
    }

    #[test]
    fn dedup_persisted_file_is_clamped() {
        let w: DedupWindow =
            serde_json::from_str(r#"{"capacity":2,"keys":["a","b","c"]}"#).expect("parse");
        assert_eq!(w.len(), 2);
        assert!(w.contains("b") && w.contains("c") && !w.contains("a"));
        assert_eq!(DedupWindow::new(0).capacity(), 1);
        let long = "x".repeat(10_000);
        let mut w = DedupWindow::new(4);
        assert!(!w.seen_or_insert(&long));
        assert!(w.seen_or_insert(&long));
        assert!(w.order.iter().all(|k| k.len() < 100));
    }

    #[test]
    fn envelope_helpers() {
        let mut e = env();
        for i in 0..10 {
            let added = e.push_attachment(Attachment {
                reference: format!("f{i}"),
                kind: AttachmentKind::Image,
                size: None,
            });
            assert_eq!(added, i < MAX_ATTACHMENTS);
        }
        e.text = "  ".into();
        assert!(!e.is_empty());
        e.attachments.clear();
        assert!(e.is_empty());
        let out = Outbound::reply(&e, "ok".into(), true);
        assert_eq!(out.reply_to.as_deref(), Some("7"));
        assert_eq!(truncate_chars("héllo", 2), "hé");
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["chat_kind"], "direct");
    }

    #[test]
    fn targets() {
        assert_eq!(ReplyTarget::parse("telegram:42").expect("ok").chat_id, "42");
        assert_eq!(
            ReplyTarget::parse("telegram:bot2:-100")
                .expect("ok")
                .account,
            "bot2"
        );
        assert!(ReplyTarget::parse("telegram").is_err());
        assert!(ReplyTarget::parse("telegram:").is_err());
    }

    #[test]
    fn a_reply_target_keeps_the_thread_and_old_queue_rows_still_read() {
        let mut e = env();
        e.thread_id = Some("77".into());
        let t = ReplyTarget::from_envelope(&e, false);
        let out = t.outbound("ok".into());
        assert_eq!(out.thread_id.as_deref(), Some("77"));
        assert_eq!(out.reply_to, None);
        assert_eq!(
            ReplyTarget::from_envelope(&e, true).reply_to,
            Some(e.platform_id.clone())
        );
        let old: Outbound = serde_json::from_str(
            r#"{"channel":"telegram","account":"default","chat_id":"1","text":"t"}"#,
        )
        .expect("a row without thread or reply-to");
        assert_eq!((old.thread_id, old.reply_to), (None, None));
    }
}
