//! Messaging channels: the channel-neutral model (envelopes, access policy, DM pairing,
//! reply splitting) and the platform adapters (Telegram).
//!
//! Everything here is sans-IO: no sockets, threads or clocks. Callers pass `now_ms`
//! and randomness in, do the HTTP themselves, and persist the serializable state
//! (pairing store, dedup window, Telegram offset).

pub mod access;
pub mod envelope;
pub mod pairing;
pub mod split;
pub mod telegram;

pub use access::{decide, AccessConfig, DmPolicy, DropReason, GroupPolicy, GroupRule, Verdict};
pub use envelope::{Attachment, AttachmentKind, ChatKind, DedupWindow, Envelope, Outbound};
pub use pairing::{PairOutcome, Pairing, PendingRequest};
pub use split::{split, split_utf16, split_with, Measure};
