//! The JSON API's shapes of stored records: camelCase wire structs built from
//! the store's, the pairing file's and the queue's persistence structs, so the
//! API (`docs/protocol.md`) and the storage format (snake_case, versioned by
//! the store's schema) change apart. Used by the gateway and by the CLI's
//! offline reads.

use serde::Serialize;

use crate::channel::envelope::Outbound;
use crate::channel::pairing::{ApprovedSender, PendingRequest};
use crate::queue::{DeadMsg, QueuedMsg, QueuedRow};
use crate::store::SessionMeta;

/// One session in `sessions.list` and the `meta` of `chat.history`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo<'a> {
    pub key: &'a str,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub next_seq: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub summary_seq: Option<u64>,
    pub chars_total: u64,
    pub summarized_chars: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub pruned_below: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl<'a> From<&'a SessionMeta> for SessionInfo<'a> {
    fn from(m: &'a SessionMeta) -> Self {
        SessionInfo {
            key: &m.key,
            created_ms: m.created_ms,
            updated_ms: m.updated_ms,
            next_seq: m.next_seq,
            tokens_in: m.tokens_in,
            tokens_out: m.tokens_out,
            summary_seq: m.summary_seq,
            chars_total: m.chars_total,
            summarized_chars: m.summarized_chars,
            pruned_below: m.pruned_below,
        }
    }
}

/// The wire list of sessions.
pub fn sessions(list: &[SessionMeta]) -> Vec<SessionInfo<'_>> {
    list.iter().map(SessionInfo::from).collect()
}

/// A pending pairing request in `pairing.list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRequest<'a> {
    pub code: &'a str,
    pub sender_id: &'a str,
    pub sender_name: &'a str,
    pub created_ms: u64,
    pub expires_ms: u64,
}

impl<'a> From<&'a PendingRequest> for PairingRequest<'a> {
    fn from(p: &'a PendingRequest) -> Self {
        PairingRequest {
            code: &p.code,
            sender_id: &p.sender_id,
            sender_name: &p.sender_name,
            created_ms: p.created_ms,
            expires_ms: p.expires_ms,
        }
    }
}

/// An approved sender in `pairing.list` (keyed by sender id).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingApproval<'a> {
    pub sender_name: &'a str,
    pub approved_ms: u64,
}

impl<'a> From<&'a ApprovedSender> for PairingApproval<'a> {
    fn from(a: &'a ApprovedSender) -> Self {
        PairingApproval {
            sender_name: &a.sender_name,
            approved_ms: a.approved_ms,
        }
    }
}

/// The message of a queued or dead-lettered row in `queue.list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundMessage<'a> {
    pub channel: &'a str,
    pub account: &'a str,
    pub chat_id: &'a str,
    pub text: &'a str,
    pub reply_to: Option<&'a str>,
    pub thread_id: Option<&'a str>,
}

impl<'a> From<&'a Outbound> for OutboundMessage<'a> {
    fn from(o: &'a Outbound) -> Self {
        OutboundMessage {
            channel: &o.channel,
            account: &o.account,
            chat_id: &o.chat_id,
            text: &o.text,
            reply_to: o.reply_to.as_deref(),
            thread_id: o.thread_id.as_deref(),
        }
    }
}

/// A queued outgoing message in `queue.list`; a dead letter adds its reason
/// and when it died.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry<'a> {
    pub seq: u64,
    pub outbound: OutboundMessage<'a>,
    pub chat_key: &'a str,
    pub attempts: u32,
    pub next_at_ms: u64,
    pub first_ms: u64,
    pub last_error: Option<&'a str>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_ms: Option<u64>,
}

impl<'a> QueueEntry<'a> {
    fn new(seq: u64, row: &'a QueuedRow) -> Self {
        QueueEntry {
            seq,
            outbound: OutboundMessage::from(&row.outbound),
            chat_key: &row.chat_key,
            attempts: row.attempts,
            next_at_ms: row.next_at_ms,
            first_ms: row.first_ms,
            last_error: row.last_error.as_deref(),
            bytes: row.bytes,
            reason: None,
            dead_ms: None,
        }
    }
}

impl<'a> From<&'a QueuedMsg> for QueueEntry<'a> {
    fn from(m: &'a QueuedMsg) -> Self {
        QueueEntry::new(m.seq, &m.row)
    }
}

impl<'a> From<&'a DeadMsg> for QueueEntry<'a> {
    fn from(m: &'a DeadMsg) -> Self {
        QueueEntry {
            reason: Some(&m.dead.reason),
            dead_ms: Some(m.dead.dead_ms),
            ..QueueEntry::new(m.seq, &m.dead.row)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_info_is_camel_case_and_the_stored_format_is_not() {
        let meta = SessionMeta {
            key: "main".into(),
            created_ms: 1,
            updated_ms: 2,
            next_seq: 3,
            tokens_in: 4,
            tokens_out: 5,
            summary_seq: None,
            chars_total: 6,
            summarized_chars: 0,
            pruned_below: 0,
        };
        let wire = serde_json::to_value(SessionInfo::from(&meta)).unwrap();
        assert_eq!(wire["nextSeq"], 3);
        assert_eq!(wire["updatedMs"], 2);
        assert_eq!(wire["tokensIn"], 4);
        assert!(wire.get("next_seq").is_none());
        let stored = serde_json::to_value(&meta).unwrap();
        assert_eq!(stored["next_seq"], 3, "the storage format is unchanged");
    }

    #[test]
    fn pairing_request_is_camel_case() {
        let p = PendingRequest {
            code: "ABCD".into(),
            sender_id: "42".into(),
            sender_name: "Ann".into(),
            created_ms: 1,
            expires_ms: 2,
        };
        let wire = serde_json::to_value(PairingRequest::from(&p)).unwrap();
        assert_eq!(wire["senderId"], "42");
        assert_eq!(wire["senderName"], "Ann");
        assert_eq!(wire["expiresMs"], 2);
    }
}
