//! The Slack adapter (Socket Mode: no public URL). `codec` parses frames and
//! events and builds Web API requests, `format` turns Markdown into mrkdwn,
//! `link` is the connection's backoff and liveness state machine: all pure,
//! fed bytes and time. `shell` is the thin I/O around them: one thread on the
//! Socket Mode WebSocket, one thread posting (and editing) replies.

pub mod codec;
pub mod format;
pub mod link;
pub mod shell;

use super::adapter::{Capabilities, Formatting};

pub use codec::CHANNEL;

/// What the Slack adapter can do, for the registry. Slack counts its limit
/// in characters; answers stream into a draft edited with `chat.update`;
/// bots have no typing indicator, so typing jobs are dropped.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_text: codec::TEXT_CHUNK_LIMIT,
    measure: super::split::Measure::Chars,
    formatting: Formatting::SlackMrkdwn,
    threads: true,
    edits: true,
    typing_every_ms: 0,
};
