//! Messaging channels: the channel-neutral model (envelopes, access policy, DM pairing,
//! reply splitting) and the platform adapters (Telegram).
//!
//! Everything here is sans-IO: no sockets, threads or clocks. Callers pass `now_ms`
//! and randomness in, do the HTTP themselves, and persist the serializable state
//! (pairing store, dedup window, Telegram offset).

pub mod access;
pub mod commands;
pub mod envelope;
pub mod pairing;
pub mod split;
pub mod telegram;

pub use access::{decide, AccessConfig, DmPolicy, DropReason, GroupPolicy, GroupRule, Verdict};
pub use envelope::{Attachment, AttachmentKind, ChatKind, DedupWindow, Envelope, Outbound};
pub use pairing::{PairOutcome, Pairing, PendingRequest};
pub use split::{split, split_utf16, split_with, Measure};

/// Where a proactive message goes: `channel:chat_id` or
/// `channel:account:chat_id` (account defaults to "default").
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub channel: String,
    pub account: String,
    pub chat_id: String,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            format!("{s:?} is not a delivery target; use channel:chat_id, e.g. telegram:123456789")
        };
        match parts.as_slice() {
            [c, chat] if !c.is_empty() && !chat.is_empty() => Ok(Target {
                channel: c.to_string(),
                account: "default".into(),
                chat_id: chat.to_string(),
            }),
            [c, a, chat] if !c.is_empty() && !a.is_empty() && !chat.is_empty() => Ok(Target {
                channel: c.to_string(),
                account: a.to_string(),
                chat_id: chat.to_string(),
            }),
            _ => Err(bad()),
        }
    }
}

/// The longest message a channel takes (its `textChunkLimit`, else the
/// platform's own limit).
pub fn text_limit(cfg: &crate::config::Config, channel: &str) -> usize {
    let platform = match channel {
        "telegram" => 4096,
        "discord" => 2000,
        "slack" => 4000,
        "whatsapp" => 4096,
        "feishu" => 4000,
        _ => 4000,
    };
    cfg.channels
        .get(channel)
        .and_then(|c| c.text_chunk_limit)
        .map(|l| l.clamp(100, platform))
        .unwrap_or(platform)
}

#[cfg(test)]
mod target_tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("telegram:42").expect("ok").chat_id, "42");
        assert_eq!(
            Target::parse("telegram:bot2:-100").expect("ok").account,
            "bot2"
        );
        assert!(Target::parse("telegram").is_err());
        assert!(Target::parse("telegram:").is_err());
    }
}
