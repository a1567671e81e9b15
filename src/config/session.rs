//! `session.*` (who shares a conversation, when conversations start over)
//! and the owner of each channel. Names and meanings follow OpenClaw's
//! `session.dmScope` and `session.reset`.

use serde::{Deserialize, Serialize};

/// The session every direct message of the owner shares under `dmScope: "main"`.
pub const MAIN_SESSION: &str = "main";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Session {
    /// "main" (default): the owner's direct messages on every channel, the
    /// web chat and `pinch chat` share the session `main`; other people keep
    /// their own. "per-peer" / "per-channel-peer": every chat has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetPolicy>,
}

/// When a conversation starts over by itself; the old transcript is
/// archived, memory files are kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ResetPolicy {
    /// "daily" (at `atHour`) or "idle" (after `idleMinutes` without a message).
    /// Unset: daily when `atHour` is given, else idle when `idleMinutes` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Hour of the day (0-23, the gateway's time zone) of the daily reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hour: Option<u8>,
    /// With "daily" too: whichever comes first resets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_minutes: Option<u64>,
}

impl Session {
    /// Whether the owner's direct messages go to the `main` session.
    pub fn main_scope(&self) -> bool {
        matches!(self.dm_scope.as_deref(), None | Some("main"))
    }

    pub(crate) fn validate(&self) -> Result<(), super::Invalid> {
        if let Some(s) = &self.dm_scope {
            if !["main", "per-peer", "per-channel-peer"].contains(&s.as_str()) {
                return Err(super::Invalid::new(
                    "session.dmScope".into(),
                    format!("unknown scope {s:?}"),
                    "use \"main\" (the owner's chats share one session) or \"per-channel-peer\""
                        .into(),
                ));
            }
        }
        if let Some(r) = &self.reset {
            if let Some(m) = &r.mode {
                if m != "daily" && m != "idle" {
                    return Err(super::Invalid::new(
                        "session.reset.mode".into(),
                        format!("unknown mode {m:?}"),
                        "use \"daily\" (with atHour) or \"idle\" (with idleMinutes)".into(),
                    ));
                }
            }
            if r.at_hour.is_some_and(|h| h > 23) {
                return Err(super::Invalid::new(
                    "session.reset.atHour".into(),
                    "must be an hour from 0 to 23".into(),
                    "e.g. 4 for 04:00 in the gateway's time zone".into(),
                ));
            }
            if r.idle_minutes.is_some_and(|m| m == 0 || m > 525_600) {
                return Err(super::Invalid::new(
                    "session.reset.idleMinutes".into(),
                    "must be between 1 and 525600 (a year)".into(),
                    "e.g. 240 for four hours".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A channel's owner: `channels.<ch>.owner`, else the first `allowFrom`
/// entry that names one person (not `"*"`).
pub fn channel_owner(ch: &super::Channel) -> Option<String> {
    ch.owner
        .clone()
        .or_else(|| ch.allow_from.iter().find(|a| a.as_str() != "*").cloned())
        .map(|o| o.trim().trim_start_matches('@').to_string())
        .filter(|o| !o.is_empty())
}
