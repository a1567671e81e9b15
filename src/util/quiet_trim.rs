//! When the gateway hands memory back at rest: free heap and the code pages
//! a burst or a periodic wake-up touched. Pure: fed the instants, it says
//! when a release is due; the reactor carries it out.
//!
//! A release is due once traffic has paused for [`QUIET`], and again every
//! [`REPEAT`] while it stays paused: channel adapters wake by themselves (a
//! long poll returning, a heartbeat, a ping) and each wake-up maps code
//! back in, a whole large page-cache folio per first touch. Never during
//! traffic: trimming takes the allocator lock and would add latency.

use std::time::{Duration, Instant};

/// Pause in traffic before the first release.
pub const QUIET: Duration = Duration::from_secs(5);
/// Time between releases while the pause lasts.
pub const REPEAT: Duration = Duration::from_secs(30);

/// The release schedule; see the module comment.
#[derive(Debug)]
pub struct QuietTrim {
    last_activity: Instant,
    last_release: Option<Instant>,
}

impl QuietTrim {
    pub fn new(now: Instant) -> QuietTrim {
        QuietTrim {
            last_activity: now,
            last_release: None,
        }
    }

    /// Traffic: requests, runs, inbound messages, deliveries.
    pub fn on_activity(&mut self, now: Instant) {
        self.last_activity = now;
        self.last_release = None;
    }

    /// Whether traffic has paused for at least [`QUIET`].
    pub fn quiet(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_activity) >= QUIET
    }

    /// Whether to release now (and, if so, records it). `busy`: runs are
    /// in flight.
    pub fn due(&mut self, now: Instant, busy: bool) -> bool {
        if busy || !self.quiet(now) {
            return false;
        }
        let due = match self.last_release {
            None => true,
            Some(at) => now.saturating_duration_since(at) >= REPEAT,
        };
        if due {
            self.last_release = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_after_a_pause_then_periodically_and_never_while_busy() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut trim = QuietTrim::new(t0);
        assert!(!trim.due(t0 + s(4), false), "not before the pause");
        assert!(!trim.due(t0 + s(5), true), "not with runs in flight");
        assert!(trim.due(t0 + s(5), false));
        assert!(!trim.due(t0 + s(6), false), "once per period");
        assert!(!trim.due(t0 + s(34), false));
        assert!(trim.due(t0 + s(35), false), "again after REPEAT");
        trim.on_activity(t0 + s(40));
        assert!(!trim.quiet(t0 + s(44)));
        assert!(!trim.due(t0 + s(44), false));
        assert!(trim.due(t0 + s(45), false), "a new pause re-arms it");
    }
}
