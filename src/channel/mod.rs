//! Messaging channels: the channel-neutral model (envelopes, reply targets,
//! access policy, DM pairing, reply splitting), the one adapter interface the
//! reactor drives (`adapter`), the table of adapters in this build
//! (`registry`), and one folder per platform (`telegram/`, `slack/`, `discord/`).
//!
//! Everything here but the adapters' I/O shells (`<platform>/shell.rs`) is
//! sans-IO: no sockets, threads or clocks. Callers pass `now_ms` and
//! randomness in, do the HTTP themselves, and persist the serializable state
//! (pairing store, dedup window, the adapter's cursor).

pub mod access;
pub mod adapter;
pub mod commands;
pub mod discord;
pub mod envelope;
pub mod escape;
pub mod pairing;
pub mod progress;
pub mod registry;
pub mod slack;
pub mod split;
pub mod telegram;

pub use access::{decide, AccessConfig, DmPolicy, DropReason, GroupPolicy, GroupRule, Verdict};
pub use envelope::{
    Attachment, AttachmentKind, ChatKind, DedupWindow, Envelope, Outbound, ReplyTarget,
};
pub use pairing::{PairOutcome, Pairing, PendingRequest};
pub use split::{split, split_utf16, split_with, Measure};
