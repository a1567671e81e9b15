//! Long-poll scheduling: capped exponential backoff that never gives up, plus a
//! health summary for `/status`. Sans-IO: the caller passes `now_ms` and a jitter source,
//! and waits until [`PollState::retry_at_ms`] before the next `getUpdates`.

use super::{redact, ApiOutcome};
use crate::channel::adapter::{AdapterHealth, DailyCount};
use crate::channel::envelope::truncate_chars;
use serde::Serialize;

/// Poller health, serializable for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Health {
    Up,
    #[serde(rename_all = "camelCase")]
    Backoff {
        since_ms: u64,
        last_error: String,
    },
    /// Another consumer holds the token (409); we keep retrying slowly.
    #[serde(rename_all = "camelCase")]
    Conflict {
        since_ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct PollState {
    base_ms: u64,
    max_ms: u64,
    failures: u32,
    retry_at_ms: u64,
    health: Health,
    poll_started_ms: Option<u64>,
    last_success_ms: Option<u64>,
    /// Successes right after a failure, once the poll had worked before.
    reconnects: DailyCount,
}

impl Default for PollState {
    fn default() -> Self {
        Self::new()
    }
}

impl PollState {
    pub const DEFAULT_BASE_MS: u64 = 1_000;
    pub const DEFAULT_MAX_MS: u64 = 60_000;

    pub fn new() -> Self {
        Self::with_backoff(Self::DEFAULT_BASE_MS, Self::DEFAULT_MAX_MS)
    }

    /// Delays start near `base_ms` and double per failure up to `max_ms`.
    pub fn with_backoff(base_ms: u64, max_ms: u64) -> Self {
        let base_ms = base_ms.max(1);
        PollState {
            base_ms,
            max_ms: max_ms.max(base_ms),
            failures: 0,
            retry_at_ms: 0,
            health: Health::Up,
            poll_started_ms: None,
            last_success_ms: None,
            reconnects: DailyCount::default(),
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn retry_at_ms(&self) -> u64 {
        self.retry_at_ms
    }

    pub fn last_success_ms(&self) -> Option<u64> {
        self.last_success_ms
    }

    /// True when the next poll may be sent.
    pub fn ready(&self, now_ms: u64) -> bool {
        now_ms >= self.retry_at_ms
    }

    /// Call when a `getUpdates` request is sent.
    pub fn on_poll_start(&mut self, now_ms: u64) {
        self.poll_started_ms = Some(now_ms);
    }

    /// Recoveries (down → up after an earlier success) on the UTC day of `now_ms`.
    pub fn reconnects_today(&self, now_ms: u64) -> u32 {
        self.reconnects.on(now_ms)
    }

    /// The adapter's health for `/status`: `lastEventMs` is the last
    /// answered poll.
    pub fn report(&self, now_ms: u64) -> AdapterHealth {
        let (state, error) = match &self.health {
            Health::Up => ("up", None),
            Health::Backoff { last_error, .. } => ("down", Some(last_error.clone())),
            Health::Conflict { .. } => (
                "conflict",
                Some(
                    "409 Conflict: another program polls this bot token (or a webhook is set)"
                        .into(),
                ),
            ),
        };
        AdapterHealth {
            state,
            detail: format!("{:?}", self.health),
            last_event_ms: self.last_success_ms,
            reconnects_today: self.reconnects_today(now_ms),
            failures: self.failures,
            error,
            ..AdapterHealth::default()
        }
    }

    pub fn on_success(&mut self, now_ms: u64) {
        if self.health != Health::Up && self.last_success_ms.is_some() {
            self.reconnects.add(now_ms);
        }
        self.failures = 0;
        self.retry_at_ms = now_ms;
        self.health = Health::Up;
        self.poll_started_ms = None;
        self.last_success_ms = Some(now_ms);
    }

    /// Records a failure; returns when to poll again. Delay: the capped exponential
    /// step `d`, jittered uniformly in `[d/2, d]`.
    pub fn on_error(&mut self, now_ms: u64, error: &str, jitter: &mut dyn FnMut() -> u64) -> u64 {
        let since_ms = match &self.health {
            Health::Backoff { since_ms, .. } | Health::Conflict { since_ms } => *since_ms,
            Health::Up => now_ms,
        };
        self.health = Health::Backoff {
            since_ms,
            last_error: truncate_chars(&redact(error), 200),
        };
        self.schedule(now_ms, jitter)
    }

    /// 409 Conflict: same backoff, distinct health so `/status` can explain it.
    pub fn on_conflict(&mut self, now_ms: u64, jitter: &mut dyn FnMut() -> u64) -> u64 {
        let since_ms = match &self.health {
            Health::Conflict { since_ms } => *since_ms,
            _ => now_ms,
        };
        self.health = Health::Conflict { since_ms };
        self.schedule(now_ms, jitter)
    }

    /// 429: wait exactly what the server asked, without growing the backoff.
    pub fn on_retry_after(&mut self, now_ms: u64, secs: u64) -> u64 {
        let since_ms = match &self.health {
            Health::Backoff { since_ms, .. } => *since_ms,
            _ => now_ms,
        };
        self.health = Health::Backoff {
            since_ms,
            last_error: format!("rate limited: retry after {secs} s"),
        };
        self.poll_started_ms = None;
        self.retry_at_ms = now_ms.saturating_add(secs.saturating_mul(1000));
        self.retry_at_ms
    }

    /// Applies a classified `getUpdates` outcome; returns when to poll again.
    pub fn on_outcome(
        &mut self,
        outcome: &ApiOutcome,
        now_ms: u64,
        jitter: &mut dyn FnMut() -> u64,
    ) -> u64 {
        match outcome {
            ApiOutcome::Ok(_) => {
                self.on_success(now_ms);
                now_ms
            }
            ApiOutcome::RetryAfter(s) => self.on_retry_after(now_ms, *s),
            ApiOutcome::Conflict => self.on_conflict(now_ms, jitter),
            ApiOutcome::Transient(e) | ApiOutcome::Fatal(e) => self.on_error(now_ms, e, jitter),
            other => self.on_error(now_ms, &format!("{other:?}"), jitter),
        }
    }

    fn schedule(&mut self, now_ms: u64, jitter: &mut dyn FnMut() -> u64) -> u64 {
        self.failures = self.failures.saturating_add(1);
        self.poll_started_ms = None;
        let shift = (self.failures - 1).min(30);
        let step = self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        let half = step / 2;
        let delay = step - half + jitter() % (half + 1);
        self.retry_at_ms = now_ms.saturating_add(delay);
        self.retry_at_ms
    }
}
