//! Discord (Gateway v10 WebSocket + REST v10), sans-IO, plus its I/O shell.
//!
//! - `codec.rs`: the Gateway session as a state machine fed frames and time:
//!   Hello → Identify/Resume, heartbeats with jitter and zombie detection,
//!   dispatch sequence tracking, op 7/op 9, close codes.
//! - `inbound.rs`: `MESSAGE_CREATE` → [`Envelope`](super::Envelope), and the
//!   `guilds` config flattened into access rules.
//! - `rest.rs`: REST request building, rate-limit headers and 429 bodies, the
//!   per-bucket limiter.
//! - `format.rs`: Markdown for Discord (tables as code blocks) and the
//!   2,000-character / 17-line split.
//! - `shell.rs`: the thin I/O shell (gateway thread, send thread).

pub mod codec;
pub mod format;
pub mod inbound;
pub mod rest;
pub mod shell;

#[cfg(test)]
mod tests;

pub use codec::{Action, CloseVerdict, Session};
#[cfg(test)]
pub use inbound::guild_groups;
pub use inbound::{guild_rules, parse_message, Skip};
pub use rest::{parse_rate_headers, Limiter, Outcome, RateInfo};

pub const CHANNEL: &str = "discord";

/// What Discord can do: 2,000 characters of Markdown per message. Threads
/// are channels of their own (a reply goes to the message's channel).
/// Answers stream into a draft edited with `PATCH` (the final answer's first
/// part replaces it). The typing indicator lasts ~10 s: repeated every 8 s.
pub const CAPABILITIES: crate::channel::adapter::Capabilities =
    crate::channel::adapter::Capabilities {
        max_text: TEXT_LIMIT,
        measure: crate::channel::split::Measure::Chars,
        formatting: crate::channel::adapter::Formatting::Markdown,
        threads: false,
        edits: true,
        typing_every_ms: 8_000,
    };
pub const DEFAULT_API_ROOT: &str = "https://discord.com/api";
/// Discord's limit on message `content`, in characters.
pub const TEXT_LIMIT: usize = 2000;
/// OpenClaw's default soft cap on lines per message.
pub const MAX_LINES: usize = 17;

/// Gateway intents (bit flags).
pub const INTENT_GUILDS: u64 = 1 << 0;
pub const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
pub const INTENT_DIRECT_MESSAGES: u64 = 1 << 12;
/// Privileged: must be switched on in the Developer Portal too.
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

/// The intents asked for: servers, their messages and DMs; the message
/// content of guild messages only when configured (without it, messages
/// that mention the bot and DMs still carry their text).
pub fn intents(message_content: bool) -> u64 {
    let base = INTENT_GUILDS | INTENT_GUILD_MESSAGES | INTENT_DIRECT_MESSAGES;
    if message_content {
        base | INTENT_MESSAGE_CONTENT
    } else {
        base
    }
}

/// Removes the bot token from text about to be logged or shown.
pub fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "<token>")
    }
}
