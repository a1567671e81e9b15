//! The Socket Mode connection's life, as a state machine fed time: when to
//! (re)connect, capped jittered backoff that never gives up, `Retry-After`
//! on `apps.connections.open`, and the liveness rule: a connection quiet for
//! [`PING_AFTER_MS`] gets a WebSocket ping, and one that stays silent
//! [`PONG_TIMEOUT_MS`] longer is dead and replaced (no silent deafness).

use crate::channel::adapter::{AdapterHealth, DailyCount};

/// Silence after which we ping (Slack itself pings every few seconds).
pub const PING_AFTER_MS: u64 = 30_000;
/// Silence after our ping that ends the connection.
pub const PONG_TIMEOUT_MS: u64 = 10_000;

/// What the shell should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Nothing,
    SendPing,
    /// Nothing came back: drop the socket and reconnect.
    Dead,
}

#[derive(Debug, Clone)]
pub struct Link {
    base_ms: u64,
    max_ms: u64,
    failures: u32,
    retry_at_ms: u64,
    connected_since: Option<u64>,
    last_frame_ms: u64,
    ping_sent_ms: Option<u64>,
    last_event_ms: Option<u64>,
    last_error: Option<String>,
    reconnects: DailyCount,
}

impl Link {
    pub fn new(base_ms: u64, max_ms: u64) -> Link {
        let base_ms = base_ms.max(1);
        Link {
            base_ms,
            max_ms: max_ms.max(base_ms),
            failures: 0,
            retry_at_ms: 0,
            connected_since: None,
            last_frame_ms: 0,
            ping_sent_ms: None,
            last_event_ms: None,
            last_error: None,
            reconnects: DailyCount::default(),
        }
    }

    /// When the next connection attempt may start.
    pub fn retry_at_ms(&self) -> u64 {
        self.retry_at_ms
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn is_connected(&self) -> bool {
        self.connected_since.is_some()
    }

    pub fn reconnects_today(&self, now_ms: u64) -> u32 {
        self.reconnects.on(now_ms)
    }

    /// `hello` arrived: the connection is up and the backoff resets.
    pub fn on_hello(&mut self, now_ms: u64) {
        self.failures = 0;
        self.last_error = None;
        self.connected_since = Some(now_ms);
        self.on_frame(now_ms);
    }

    /// Any frame (data, ping or pong) proves the connection alive.
    pub fn on_frame(&mut self, now_ms: u64) {
        self.last_frame_ms = now_ms;
        self.ping_sent_ms = None;
    }

    /// An envelope with an event arrived.
    pub fn on_event(&mut self, now_ms: u64) {
        self.last_event_ms = Some(now_ms);
        self.on_frame(now_ms);
    }

    pub fn tick(&mut self, now_ms: u64) -> Tick {
        if self.connected_since.is_none() {
            return Tick::Nothing;
        }
        match self.ping_sent_ms {
            Some(at) if now_ms.saturating_sub(at) >= PONG_TIMEOUT_MS => Tick::Dead,
            Some(_) => Tick::Nothing,
            None if now_ms.saturating_sub(self.last_frame_ms) >= PING_AFTER_MS => {
                self.ping_sent_ms = Some(now_ms);
                Tick::SendPing
            }
            None => Tick::Nothing,
        }
    }

    /// Slack asked us to move (`disconnect`): reconnect at once with a fresh URL.
    pub fn on_disconnect_requested(&mut self, now_ms: u64, reason: &str) -> u64 {
        self.reconnects.add(now_ms);
        self.connected_since = None;
        self.last_error = Some(format!("disconnect: {reason}"));
        self.retry_at_ms = now_ms;
        now_ms
    }

    /// The socket closed or failed, or a connection attempt failed: back off.
    /// Delay: the capped exponential step `d`, jittered uniformly in `[d/2, d]`.
    pub fn on_failure(&mut self, now_ms: u64, error: &str, jitter: &mut dyn FnMut() -> u64) -> u64 {
        if self.connected_since.take().is_some() {
            self.reconnects.add(now_ms);
        }
        self.last_error = Some(crate::channel::envelope::truncate_chars(error, 200));
        self.failures = self.failures.saturating_add(1);
        let shift = (self.failures - 1).min(30);
        let step = self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        let half = step / 2;
        self.retry_at_ms = now_ms.saturating_add(step - half + jitter() % (half + 1));
        self.retry_at_ms
    }

    /// 429 on `apps.connections.open`: wait what Slack asked.
    pub fn on_retry_after(&mut self, now_ms: u64, secs: u64) -> u64 {
        self.connected_since = None;
        self.last_error = Some(format!("rate limited: retry after {secs} s"));
        self.retry_at_ms = now_ms.saturating_add(secs.saturating_mul(1000));
        self.retry_at_ms
    }

    /// The adapter's health in `/status`: `lastEventMs` is the last
    /// envelope with an event.
    pub fn health(&self, now_ms: u64) -> AdapterHealth {
        AdapterHealth {
            state: if self.is_connected() {
                "up"
            } else if self.failures > 0 {
                "down"
            } else {
                "connecting"
            },
            last_event_ms: self.last_event_ms,
            reconnects_today: self.reconnects_today(now_ms),
            failures: self.failures,
            error: self.last_error.clone(),
            ..AdapterHealth::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const DAY_MS: u64 = 86_400_000;

    #[test]
    fn backoff_grows_capped_and_resets_on_hello() {
        let mut l = Link::new(1_000, 8_000);
        let mut max = || u64::MAX; // jitter at its top: delay = the full step
        let mut zero = || 0;
        assert_eq!(l.on_failure(0, "refused", &mut zero), 500);
        assert_eq!(
            l.on_failure(0, "refused", &mut max),
            2_000 - 1_000 + (u64::MAX % 1_001)
        );
        let mut steps = Vec::new();
        for _ in 0..6 {
            steps.push(l.on_failure(100, "x", &mut zero) - 100);
        }
        assert_eq!(steps, vec![2_000, 4_000, 4_000, 4_000, 4_000, 4_000]);
        assert_eq!(l.health(100).state, "down");
        l.on_hello(200);
        assert_eq!(l.failures(), 0);
        assert_eq!(l.health(200).state, "up");
        assert_eq!(
            l.health(200).reconnects_today,
            0,
            "connect attempts are not reconnects"
        );
    }

    #[test]
    fn disconnect_reconnects_at_once_and_counts_per_day() {
        let mut l = Link::new(1_000, 60_000);
        l.on_hello(10);
        assert_eq!(l.on_disconnect_requested(50, "refresh_requested"), 50);
        assert!(!l.is_connected());
        l.on_hello(60);
        let mut zero = || 0;
        assert!(l.on_failure(70, "socket closed", &mut zero) >= 570);
        assert_eq!(l.reconnects_today(70), 2);
        assert_eq!(l.health(70).error.as_deref(), Some("socket closed"));
        assert_eq!(
            l.health(DAY_MS + 1).reconnects_today,
            0,
            "a new day starts at 0"
        );
        l.on_hello(DAY_MS + 2);
        l.on_disconnect_requested(DAY_MS + 3, "warning");
        assert_eq!(l.reconnects_today(DAY_MS + 3), 1);
        assert_eq!(l.on_retry_after(DAY_MS + 4, 7), DAY_MS + 7_004);
    }

    #[test]
    fn silence_brings_a_ping_then_death() {
        let mut l = Link::new(1_000, 60_000);
        assert_eq!(
            l.tick(1_000_000),
            Tick::Nothing,
            "not connected: nothing to watch"
        );
        l.on_hello(0);
        assert_eq!(l.tick(PING_AFTER_MS - 1), Tick::Nothing);
        assert_eq!(l.tick(PING_AFTER_MS), Tick::SendPing);
        assert_eq!(
            l.tick(PING_AFTER_MS + 1),
            Tick::Nothing,
            "one ping at a time"
        );
        l.on_frame(PING_AFTER_MS + 5); // the pong
        assert_eq!(l.tick(PING_AFTER_MS + 6), Tick::Nothing);
        assert_eq!(l.tick(2 * PING_AFTER_MS + 5), Tick::SendPing);
        assert_eq!(l.tick(2 * PING_AFTER_MS + 5 + PONG_TIMEOUT_MS), Tick::Dead);
        l.on_event(1);
        assert_eq!(l.health(2).last_event_ms, Some(1));
    }
}
