//! `storage.*` (the disk budget and retention) and `update.*` (the optional
//! release feed) config sections.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Storage {
    /// Budget for everything under `$PINCH_HOME`, in bytes. Retention keeps
    /// the home under it (default 1 GiB: an eighth of an 8 GB card).
    pub max_bytes: u64,
    /// Archived (summarised) transcript turns older than this are removed;
    /// 0 keeps them until the budget needs the room.
    pub transcript_days: u64,
    /// Dead letters older than this are removed; 0 keeps them (they are
    /// bounded by `queue.maxDead` anyway).
    pub dead_letter_days: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            max_bytes: 1 << 30,
            transcript_days: 90,
            dead_letter_days: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Update {
    /// A release feed (JSON `{"version": "x.y.z", "url": "…"}`) that
    /// `pinch version --check` compares against. Unset: no check is made,
    /// pinch never calls home.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_url: Option<String>,
}
