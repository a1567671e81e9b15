//! The Slack adapter (Socket Mode: no public URL). `codec` parses frames and
//! events and builds Web API requests, `format` turns Markdown into mrkdwn,
//! `link` is the connection's backoff and liveness state machine: all pure,
//! fed bytes and time. `shell` is the thin I/O around them: one thread on the
//! Socket Mode WebSocket, one thread posting replies.

pub mod codec;
pub mod format;
pub mod link;
