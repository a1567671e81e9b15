//! Discord messages in: a `MESSAGE_CREATE` dispatch becomes an
//! [`Envelope`], and the `guilds` config becomes access rules.
//!
//! A message is direct exactly when it carries no `guild_id`. The bot is
//! mentioned when `mentions[]` holds its user id or the text holds `<@id>` /
//! `<@!id>`; a reply to one of its messages counts as a mention. Its own
//! messages are never answered, other bots' only with `allowBots`.

use crate::channel::access::GroupRule;
use crate::channel::envelope::{
    truncate_chars, Attachment, AttachmentKind, ChatKind, Envelope, MAX_TEXT_CHARS,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest display name kept.
const MAX_NAME_CHARS: usize = 64;
/// Discord's epoch (2015-01-01T00:00:00Z) in unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Why a dispatch produced no envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The bot's own message.
    Own,
    /// Written by another bot (or a webhook) and `allowBots` is off.
    Bot,
    /// A system message (join, pin, call, …), not something said.
    System,
    /// Required fields missing or of the wrong type.
    Malformed(&'static str),
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Snowflake ids are decimal strings of at most 20 digits.
fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The creation time a snowflake carries, unix milliseconds.
pub fn snowflake_time_ms(id: &str) -> u64 {
    id.parse::<u64>()
        .map(|n| (n >> 22).saturating_add(DISCORD_EPOCH_MS))
        .unwrap_or(0)
}

/// Text with the bot's own mention tokens removed.
fn without_mention(text: &str, bot_id: &str) -> String {
    let plain = format!("<@{bot_id}>");
    let legacy = format!("<@!{bot_id}>");
    let cleaned = text.replace(&plain, "").replace(&legacy, "");
    cleaned.trim().to_string()
}

fn attachment_kind(content_type: Option<&str>) -> AttachmentKind {
    match content_type.and_then(|c| c.split('/').next()) {
        Some("image") => AttachmentKind::Image,
        Some("audio") => AttachmentKind::Audio,
        Some("video") => AttachmentKind::Video,
        Some(_) => AttachmentKind::Document,
        None => AttachmentKind::Other,
    }
}

/// `MESSAGE_CREATE`'s `d` → an envelope for `account`, or why not.
pub fn parse_message(
    d: &Value,
    bot_id: &str,
    account: &str,
    allow_bots: bool,
) -> Result<Envelope, Skip> {
    let id = str_at(d, "id")
        .filter(|s| is_snowflake(s))
        .ok_or(Skip::Malformed("id"))?;
    let channel_id = str_at(d, "channel_id")
        .filter(|s| is_snowflake(s))
        .ok_or(Skip::Malformed("channel_id"))?;
    let author = d.get("author").ok_or(Skip::Malformed("author"))?;
    let sender_id = str_at(author, "id")
        .filter(|s| is_snowflake(s))
        .ok_or(Skip::Malformed("author.id"))?;
    if sender_id == bot_id {
        return Err(Skip::Own);
    }
    let is_bot = author.get("bot").and_then(Value::as_bool).unwrap_or(false)
        || d.get("webhook_id").is_some_and(|w| !w.is_null());
    if is_bot && !allow_bots {
        return Err(Skip::Bot);
    }
    // 0 DEFAULT, 19 REPLY; the rest are system messages.
    match d.get("type").and_then(Value::as_u64).unwrap_or(0) {
        0 | 19 => {}
        _ => return Err(Skip::System),
    }
    let guild_id = match d.get("guild_id") {
        None | Some(Value::Null) => None,
        Some(g) => Some(
            g.as_str()
                .filter(|s| is_snowflake(s))
                .ok_or(Skip::Malformed("guild_id"))?,
        ),
    };
    let content = str_at(d, "content").unwrap_or("");
    let in_mentions = d
        .get("mentions")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|u| str_at(u, "id") == Some(bot_id)));
    let in_text =
        content.contains(&format!("<@{bot_id}>")) || content.contains(&format!("<@!{bot_id}>"));
    let reply_to_bot = d
        .pointer("/referenced_message/author/id")
        .and_then(Value::as_str)
        == Some(bot_id);
    let username = str_at(author, "username").unwrap_or("");
    let name = d
        .pointer("/member/nick")
        .and_then(Value::as_str)
        .or_else(|| str_at(author, "global_name"))
        .unwrap_or(username);
    let mut env = Envelope {
        channel: super::CHANNEL.to_string(),
        account: account.to_string(),
        chat_id: channel_id.to_string(),
        chat_kind: if guild_id.is_some() {
            ChatKind::Group
        } else {
            ChatKind::Direct
        },
        sender_id: sender_id.to_string(),
        sender_username: (!username.is_empty()).then(|| truncate_chars(username, MAX_NAME_CHARS)),
        sender_name: truncate_chars(name, MAX_NAME_CHARS),
        mentioned: in_mentions || in_text,
        reply_to_bot,
        text: truncate_chars(&without_mention(content, bot_id), MAX_TEXT_CHARS),
        attachments: Vec::new(),
        platform_id: id.to_string(),
        time_ms: snowflake_time_ms(id),
        thread_id: None,
        parent_group: guild_id.map(str::to_string),
    };
    for a in d
        .get("attachments")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(url) = str_at(a, "url") else {
            continue;
        };
        env.push_attachment(Attachment {
            reference: url.to_string(),
            kind: attachment_kind(str_at(a, "content_type")),
            size: a.get("size").and_then(Value::as_u64),
        });
    }
    Ok(env)
}

/// `channels.discord.guilds` as access rules keyed by guild or channel id
/// (snowflakes never collide): a guild's rule applies to its channels
/// (through the envelope's `parent_group`); a guild with a `channels` map
/// answers only there (its own rule is then disabled, unless the map has
/// `"*"`), each channel inheriting what it does not set from its guild.
#[cfg(test)]
pub fn guild_groups(guilds: &Value) -> Result<BTreeMap<String, GroupRule>, String> {
    let typed: BTreeMap<String, crate::config::DiscordGuild> =
        serde_json::from_value(guilds.clone())
            .map_err(|e| format!("guilds must be an object of server ids: {e}"))?;
    Ok(guild_rules(&typed))
}

/// [`guild_groups`] over the typed config (`channels.discord.guilds`).
pub fn guild_rules(
    guilds: &BTreeMap<String, crate::config::DiscordGuild>,
) -> BTreeMap<String, GroupRule> {
    let mut out = BTreeMap::new();
    for (gid, g) in guilds {
        let guild_rule = GroupRule {
            require_mention: g.require_mention,
            allow_from: g.users.clone(),
            enabled: g.enabled,
        };
        let channel_rule = |c: &crate::config::DiscordGuildChannel| GroupRule {
            require_mention: c.require_mention.or(guild_rule.require_mention),
            allow_from: c.users.clone().or_else(|| guild_rule.allow_from.clone()),
            enabled: c.enabled.or(c.allow).or(guild_rule.enabled),
        };
        if g.channels.is_empty() {
            out.insert(gid.clone(), guild_rule.clone());
            continue;
        }
        for (cid, c) in &g.channels {
            if cid != "*" {
                out.insert(cid.clone(), channel_rule(c));
            }
        }
        let rest = match g.channels.get("*") {
            Some(star) => channel_rule(star),
            None => GroupRule {
                enabled: Some(false),
                ..guild_rule.clone()
            },
        };
        out.insert(gid.clone(), rest);
    }
    out
}
