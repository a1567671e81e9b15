//! DM pairing: unknown DM senders get a one-time code that an operator approves.
//!
//! One [`Pairing`] per channel account. Sans-IO: time (`now_ms`) and randomness are
//! passed in; the whole state is serde-serializable so the caller persists it after
//! every change. Approvals grant DM access only (see `access::decide`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Code alphabet: uppercase letters and digits without the ambiguous 0 O 1 I L.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 8;
/// A code is valid for one hour.
pub const CODE_TTL_MS: u64 = 60 * 60 * 1000;
/// At most this many requests wait for approval at once.
pub const MAX_PENDING: usize = 3;
/// Cap on approved senders kept (operator-driven, but memory stays bounded).
pub const MAX_APPROVED: usize = 10_000;
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub code: String,
    pub sender_id: String,
    pub sender_name: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedSender {
    pub sender_name: String,
    pub approved_ms: u64,
}

/// What to do with a DM from a sender that `access::decide` answered `Pair` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairOutcome {
    /// New request: send this code to the sender once.
    Issue { code: String },
    /// A request for this sender is still pending: send nothing.
    AlreadyPending,
    /// Three other requests are pending: send nothing.
    TooManyPending,
    /// Already approved (the caller raced an approval): process the message.
    AlreadyApproved,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    #[serde(default)]
    pending: Vec<PendingRequest>,
    #[serde(default)]
    approved: BTreeMap<String, ApprovedSender>,
}

impl Pairing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles a DM from a sender that is neither allowlisted nor approved.
    pub fn request(
        &mut self,
        sender_id: &str,
        sender_name: &str,
        now_ms: u64,
        rng: &mut dyn FnMut() -> u64,
    ) -> PairOutcome {
        if self.approved.contains_key(sender_id) {
            return PairOutcome::AlreadyApproved;
        }
        self.prune(now_ms);
        if self.pending.iter().any(|p| p.sender_id == sender_id) {
            return PairOutcome::AlreadyPending;
        }
        if self.pending.len() >= MAX_PENDING {
            return PairOutcome::TooManyPending;
        }
        let code = self.fresh_code(rng);
        self.pending.push(PendingRequest {
            code: code.clone(),
            sender_id: sender_id.to_string(),
            sender_name: super::envelope::truncate_chars(sender_name, MAX_NAME_CHARS),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(CODE_TTL_MS),
        });
        PairOutcome::Issue { code }
    }

    /// Approves a pending code (case, spaces and dashes ignored); returns the sender id.
    pub fn approve(&mut self, code: &str, now_ms: u64) -> Result<String, String> {
        let code = normalize_code(code);
        let idx = match self.pending.iter().position(|p| p.code == code) {
            Some(i) => i,
            None => return Err(format!("unknown pairing code {code}")),
        };
        let req = self.pending.remove(idx);
        if now_ms >= req.expires_ms {
            return Err(format!(
                "pairing code {code} expired; the sender must message the bot again for a new code"
            ));
        }
        if self.approved.len() >= MAX_APPROVED {
            return Err(format!(
                "too many approved senders ({MAX_APPROVED}); revoke some first"
            ));
        }
        self.approved.insert(
            req.sender_id.clone(),
            ApprovedSender {
                sender_name: req.sender_name,
                approved_ms: now_ms,
            },
        );
        Ok(req.sender_id)
    }

    /// Records a sender as approved without a code (approvals carried over
    /// from another installation). Returns false if already approved.
    pub fn grant(
        &mut self,
        sender_id: &str,
        sender_name: &str,
        now_ms: u64,
    ) -> Result<bool, String> {
        if self.approved.contains_key(sender_id) {
            return Ok(false);
        }
        if self.approved.len() >= MAX_APPROVED {
            return Err(format!(
                "too many approved senders ({MAX_APPROVED}); revoke some first"
            ));
        }
        self.approved.insert(
            sender_id.to_string(),
            ApprovedSender {
                sender_name: super::envelope::truncate_chars(sender_name, MAX_NAME_CHARS),
                approved_ms: now_ms,
            },
        );
        Ok(true)
    }

    /// Drops a pending request; returns its sender id.
    pub fn reject(&mut self, code: &str) -> Result<String, String> {
        let code = normalize_code(code);
        match self.pending.iter().position(|p| p.code == code) {
            Some(i) => Ok(self.pending.remove(i).sender_id),
            None => Err(format!("unknown pairing code {code}")),
        }
    }

    /// Pending requests that have not expired, oldest first.
    pub fn list(&self, now_ms: u64) -> Vec<PendingRequest> {
        self.pending
            .iter()
            .filter(|p| now_ms < p.expires_ms)
            .cloned()
            .collect()
    }

    pub fn is_approved(&self, sender_id: &str) -> bool {
        self.approved.contains_key(sender_id)
    }

    pub fn approved(&self) -> &BTreeMap<String, ApprovedSender> {
        &self.approved
    }

    /// Removes an approval; returns whether there was one.
    pub fn revoke(&mut self, sender_id: &str) -> bool {
        self.approved.remove(sender_id).is_some()
    }

    /// Forgets expired requests (also bounds a hand-edited file to `MAX_PENDING`).
    pub fn prune(&mut self, now_ms: u64) {
        self.pending.retain(|p| now_ms < p.expires_ms);
        self.pending.truncate(MAX_PENDING);
    }

    fn fresh_code(&self, rng: &mut dyn FnMut() -> u64) -> String {
        let mut code = String::new();
        // A collision among <= 3 pending codes is ~1e-11; a bounded retry is enough.
        for _ in 0..8 {
            code = (0..CODE_LEN)
                .map(|_| {
                    let i = (rng() % CODE_ALPHABET.len() as u64) as usize;
                    char::from(CODE_ALPHABET[i])
                })
                .collect();
            if !self.pending.iter().any(|p| p.code == code) {
                break;
            }
        }
        code
    }
}

fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(|c| c.to_uppercase())
        .take(CODE_LEN * 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Deterministic xorshift generator.
    use crate::util::xorshift_stream as rng;

    const T0: u64 = 1_700_000_000_000;

    fn issue(p: &mut Pairing, sender: &str, now: u64, r: &mut dyn FnMut() -> u64) -> String {
        match p.request(sender, "Name", now, r) {
            PairOutcome::Issue { code } => code,
            other => panic!("expected Issue, got {other:?}"),
        }
    }

    #[test]
    fn issue_once_then_pending_then_reissue_after_expiry() {
        let mut r = rng(7);
        let mut p = Pairing::new();
        let code = issue(&mut p, "u1", T0, &mut r);
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(
            p.request("u1", "Name", T0 + 1000, &mut r),
            PairOutcome::AlreadyPending
        );
        let last_ms = T0 + CODE_TTL_MS - 1;
        assert_eq!(
            p.request("u1", "Name", last_ms, &mut r),
            PairOutcome::AlreadyPending
        );
        assert_eq!(p.list(last_ms).len(), 1);
        assert!(p.list(T0 + CODE_TTL_MS).is_empty());
        let code2 = issue(&mut p, "u1", T0 + CODE_TTL_MS, &mut r);
        assert_ne!(code, code2);
        assert!(p.approve(&code, T0 + CODE_TTL_MS).is_err()); // old code is gone
    }

    #[test]
    fn codes_are_deterministic_and_unique() {
        let (mut a, mut b) = (Pairing::new(), Pairing::new());
        let (mut ra, mut rb) = (rng(42), rng(42));
        assert_eq!(
            issue(&mut a, "s", T0, &mut ra),
            issue(&mut b, "s", T0, &mut rb)
        );
        // The first 16 draws are all 0: the second code collides and is redrawn.
        let mut p = Pairing::new();
        let mut n = 0u64;
        let mut slow = move || {
            n += 1;
            (n - 1) / 16
        };
        let c1 = issue(&mut p, "s1", T0, &mut slow);
        let c2 = issue(&mut p, "s2", T0, &mut slow);
        assert_eq!((c1.as_str(), c2.as_str()), ("AAAAAAAA", "BBBBBBBB"));
    }

    #[test]
    fn expired_code_cannot_be_approved() {
        let mut r = rng(3);
        let mut p = Pairing::new();
        let code = issue(&mut p, "u1", T0, &mut r);
        let err = p.approve(&code, T0 + CODE_TTL_MS).expect_err("expired");
        assert!(err.contains("expired"), "{err}");
        assert!(!p.is_approved("u1"));
        let err = p.approve("ZZZZZZZZ", T0).expect_err("unknown");
        assert!(err.contains("unknown"), "{err}");
    }

    #[test]
    fn at_most_three_pending() {
        let mut r = rng(11);
        let mut p = Pairing::new();
        for s in ["a", "b", "c"] {
            issue(&mut p, s, T0, &mut r);
        }
        assert_eq!(
            p.request("d", "D", T0 + 5, &mut r),
            PairOutcome::TooManyPending
        );
        let first = p.list(T0)[0].code.clone();
        assert_eq!(p.reject(&first), Ok("a".to_string()));
        issue(&mut p, "d", T0 + 6, &mut r);
        // After the hour, every slot frees up again.
        issue(&mut p, "e", T0 + 7 + CODE_TTL_MS, &mut r);
    }

    #[test]
    fn approve_persists_through_serde() {
        let mut r = rng(99);
        let mut p = Pairing::new();
        let code = issue(&mut p, "u42", T0, &mut r);
        let json = serde_json::to_string(&p).expect("ser");
        let mut back: Pairing = serde_json::from_str(&json).expect("de");
        let typed = format!(" {}-{} ", &code[..4], code[4..].to_lowercase());
        assert_eq!(back.approve(&typed, T0 + 10), Ok("u42".to_string()));
        let json = serde_json::to_string(&back).expect("ser");
        let again: Pairing = serde_json::from_str(&json).expect("de");
        assert!(again.is_approved("u42"));
        assert!(again.list(T0 + 10).is_empty());
        let mut again = again;
        assert_eq!(
            again.request("u42", "x", T0 + 20, &mut r),
            PairOutcome::AlreadyApproved
        );
        assert!(again.revoke("u42"));
        assert!(!again.is_approved("u42"));
        let empty: Pairing = serde_json::from_str("{}").expect("de");
        assert_eq!(empty, Pairing::new());
    }

    #[test]
    fn approval_grants_dm_only() {
        use crate::channel::access::{decide, AccessConfig, DropReason, GroupPolicy, Verdict};
        use crate::channel::envelope::{ChatKind, Envelope};
        let mut r = rng(5);
        let mut p = Pairing::new();
        let code = issue(&mut p, "77", T0, &mut r);
        assert!(p.approve(&code, T0 + 1).is_ok());
        let cfg = AccessConfig {
            group_policy: GroupPolicy::Open,
            groups: [(
                "*".to_string(),
                crate::channel::access::GroupRule {
                    allow_from: Some(vec!["1".into()]),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            ..AccessConfig::default()
        };
        let mut e = Envelope {
            channel: "telegram".into(),
            account: "a".into(),
            chat_id: "77".into(),
            chat_kind: ChatKind::Direct,
            sender_id: "77".into(),
            sender_username: None,
            sender_name: "x".into(),
            mentioned: true,
            reply_to_bot: false,
            text: "hi".into(),
            attachments: vec![],
            platform_id: "1".into(),
            time_ms: 0,
            thread_id: None,
            parent_group: None,
        };
        let approved = |s: &str| p.is_approved(s);
        assert_eq!(decide(&cfg, &e, &approved), Verdict::Accept);
        e.chat_kind = ChatKind::Group;
        e.chat_id = "-5".into();
        assert_eq!(
            decide(&cfg, &e, &approved),
            Verdict::Drop(DropReason::SenderNotAllowedInGroup)
        );
    }
}
