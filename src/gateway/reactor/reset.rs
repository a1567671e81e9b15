//! Reset policies (`session.reset`, OpenClaw's names): a session whose last
//! message is older than the last daily boundary (`atHour` in the gateway's
//! time zone) or than `idleMinutes` starts over on its next message. The
//! old transcript is archived (as with `/new`); memory files are kept.
//! `reset_due` is pure and takes the clock; the reactor checks lazily, when
//! a message arrives for an idle session.

use super::Reactor;
use crate::config::session::ResetPolicy;
use jiff::tz::TimeZone;

/// OpenClaw's default hour of the daily reset.
const DEFAULT_AT_HOUR: u8 = 4;

/// Whether a session last updated at `updated_ms` is due for a reset at `now_ms`.
pub fn reset_due(policy: &ResetPolicy, updated_ms: u64, now_ms: u64, tz: &TimeZone) -> bool {
    let daily = match policy.mode.as_deref() {
        Some("daily") => true,
        Some(_) => false,
        None => policy.at_hour.is_some() || policy.idle_minutes.is_none(),
    };
    if let Some(minutes) = policy.idle_minutes {
        if now_ms.saturating_sub(updated_ms) >= minutes.saturating_mul(60_000) {
            return true;
        }
    }
    daily
        && last_boundary(policy.at_hour.unwrap_or(DEFAULT_AT_HOUR), now_ms, tz)
            .is_some_and(|b| updated_ms < b)
}

/// The latest time at or before `now_ms` when the local clock read `hour`:00
/// (by the UTC offset at `now_ms`; plain arithmetic, no calendar code).
fn last_boundary(hour: u8, now_ms: u64, tz: &TimeZone) -> Option<u64> {
    let now = jiff::Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
    let offset = i64::from(tz.to_offset(now).seconds()) * 1000;
    let local = i64::try_from(now_ms).ok()?.checked_add(offset)?;
    let day = 86_400_000i64;
    let mut b = local - local.rem_euclid(day) + i64::from(hour.min(23)) * 3_600_000;
    if b > local {
        b -= day;
    }
    u64::try_from(b.checked_sub(offset)?).ok()
}

impl Reactor {
    /// Archives `session` when its reset policy says so. Called only for a
    /// session with no run in flight.
    pub(super) fn apply_reset_policy(&mut self, session: &str) {
        let Some(policy) = self.cfg.session.reset.clone() else {
            return;
        };
        let Ok(Some(meta)) = self.store.session(session) else {
            return;
        };
        let now = crate::agent::prompt::clock_ms();
        if reset_due(&policy, meta.updated_ms, now, &TimeZone::system()) {
            if let Err(e) = self.archive_session(session) {
                log::warn!("session {session}: reset policy: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC)
    }

    const H: u64 = 3_600_000;
    /// 2026-12-02 00:00 UTC.
    const DEC2: u64 = 1_796_169_600_000;

    #[test]
    fn daily_resets_after_the_hour_passed_since_the_last_message() {
        let p = ResetPolicy {
            mode: Some("daily".into()),
            at_hour: Some(4),
            idle_minutes: None,
        };
        let utc = TimeZone::UTC;
        // Last message 23:00, now 03:59: not yet; now 04:00: due.
        assert!(!reset_due(&p, DEC2 - H, DEC2 + 4 * H - 60_000, &utc));
        assert!(reset_due(&p, DEC2 - H, DEC2 + 4 * H, &utc));
        // A message after today's boundary is not reset until tomorrow's.
        assert!(!reset_due(&p, DEC2 + 5 * H, DEC2 + 27 * H, &utc));
        assert!(reset_due(&p, DEC2 + 5 * H, DEC2 + 28 * H, &utc));
        // In Berlin (UTC+1 in December) 04:00 is 03:00 UTC.
        let tz = berlin();
        if tz != TimeZone::UTC {
            assert!(reset_due(&p, DEC2 - H, DEC2 + 3 * H, &tz));
        }
        // Without a mode or an hour: daily at 04:00, as in OpenClaw.
        let d = ResetPolicy::default();
        assert!(reset_due(&d, DEC2 - H, DEC2 + 4 * H, &utc));
    }

    #[test]
    fn idle_resets_after_the_quiet_minutes() {
        let p = ResetPolicy {
            mode: Some("idle".into()),
            at_hour: None,
            idle_minutes: Some(90),
        };
        let utc = TimeZone::UTC;
        assert!(!reset_due(&p, DEC2, DEC2 + 89 * 60_000, &utc));
        assert!(reset_due(&p, DEC2, DEC2 + 90 * 60_000, &utc));
        // Idle mode ignores the daily boundary.
        assert!(!reset_due(&p, DEC2 + 3 * H, DEC2 + 4 * H, &utc));
        // Daily with idleMinutes: whichever comes first.
        let both = ResetPolicy {
            mode: Some("daily".into()),
            at_hour: Some(4),
            idle_minutes: Some(30),
        };
        assert!(reset_due(
            &both,
            DEC2 + 5 * H,
            DEC2 + 5 * H + 30 * 60_000,
            &utc
        ));
        // A clock before the message (a wall-clock step) never resets.
        assert!(!reset_due(&p, DEC2, DEC2 - H, &utc));
    }
}
