//! When the gateway hands memory back at rest: free heap, and the code pages
//! start-up or a burst touched. Pure: fed the instants, it says when a
//! release is due; the reactor carries it out.
//!
//! A heap release is due once traffic has paused for [`QUIET`], and again
//! every [`REPEAT`] while it stays paused (adapters wake by themselves and
//! allocate). Code pages are released once per pause only: the idle
//! gateway's own wake-ups map the same code back within seconds, so
//! dropping it again would only lower the figure for a moment and cost the
//! faults to map it back (measured: the same RSS 40 s into a pause either
//! way). Never during traffic: trimming takes the allocator lock and would
//! add latency.

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
    /// Whether this pause's code-page release was handed out.
    code_released: bool,
}

impl QuietTrim {
    pub fn new(now: Instant) -> QuietTrim {
        QuietTrim {
            last_activity: now,
            last_release: None,
            code_released: false,
        }
    }

    /// Traffic: requests, runs, inbound messages, deliveries.
    pub fn on_activity(&mut self, now: Instant) {
        self.last_activity = now;
        self.last_release = None;
        self.code_released = false;
    }

    /// Whether traffic has paused for at least [`QUIET`].
    pub fn quiet(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_activity) >= QUIET
    }

    /// Whether to release free heap now (and, if so, records it). `busy`:
    /// runs are in flight.
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

    /// After a due heap release: whether to drop code pages too, true for
    /// the first release of each pause only (and recorded).
    pub fn code_pages_due(&mut self) -> bool {
        !std::mem::replace(&mut self.code_released, true)
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
        assert!(trim.code_pages_due(), "code pages with the first release");
        assert!(!trim.due(t0 + s(6), false), "once per period");
        assert!(!trim.due(t0 + s(34), false));
        assert!(trim.due(t0 + s(35), false), "again after REPEAT");
        assert!(!trim.code_pages_due(), "code pages once per pause");
        trim.on_activity(t0 + s(40));
        assert!(!trim.quiet(t0 + s(44)));
        assert!(!trim.due(t0 + s(44), false));
        assert!(trim.due(t0 + s(45), false), "a new pause re-arms it");
        assert!(trim.code_pages_due(), "and its code-page release");
    }
}
