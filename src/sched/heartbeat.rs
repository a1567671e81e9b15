//! Heartbeat timing and reply rules: when the next periodic check-in is due
//! (interval plus optional active hours, overnight windows included), whether
//! a reply means "nothing to report", and whether HEARTBEAT.md has anything
//! to check at all (if not, no model call is made). Pure functions.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use super::trigger::{lookup_tz, parse_duration_ms, MIN_EVERY_MS};

/// The reply token that means "checked, nothing to tell the user".
pub const NOTHING_TO_REPORT: &str = "HEARTBEAT_OK";

/// How much other text a "nothing to report" reply may carry.
const MAX_EXTRA_CHARS: usize = 30;

/// `heartbeat` config: `{"every":"30m","activeHours":{"start":"08:00","end":"22:00","tz":"Europe/Berlin"},"to":"telegram:123"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Interval such as "30m"; "0m" disables the heartbeat.
    #[serde(default = "default_every")]
    pub every: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<ActiveHours>,
    /// Where alerts go (`"telegram:123"`); default: the last used chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// "provider/model" tried first for beats (a cheaper or local model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Skip beats (no model call) while the owner's conversation has been
    /// quiet for longer than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_idle_days: Option<u32>,
    /// Delivery attempts for an alert before it goes to the dead letters
    /// (at most `queue.maxAttempts`), so an unreachable chat never holds
    /// later beats' alerts behind it for long. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// Delivery attempts of a heartbeat alert without `maxAttempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

fn default_every() -> String {
    "30m".to_string()
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            every: default_every(),
            active_hours: None,
            to: None,
            model: None,
            skip_idle_days: None,
            max_attempts: None,
        }
    }
}

/// Local window in which beats may happen, `[start, end)`. `end` before
/// `start` is an overnight window ("22:00" to "06:00"). `end` may be "24:00".
/// `tz` is an IANA name; without it the system time zone is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHours {
    pub start: String,
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
}

impl HeartbeatConfig {
    /// The interval in ms, `None` when disabled ("0m").
    pub fn every_ms(&self) -> Result<Option<u64>, String> {
        let ms = parse_duration_ms(&self.every).map_err(|e| format!("heartbeat.every: {e}"))?;
        if ms == 0 {
            return Ok(None);
        }
        if ms < MIN_EVERY_MS {
            return Err(format!(
                "heartbeat.every \"{}\" is too short: use at least {}s, or \"0m\" to disable",
                self.every,
                MIN_EVERY_MS / 1000
            ));
        }
        Ok(Some(ms))
    }

    /// Checks the config; the error says what is wrong and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        self.every_ms()?;
        if let Some(ah) = &self.active_hours {
            ah.window()?;
        }
        if let Some(to) = &self.to {
            crate::channel::envelope::ReplyTarget::parse(to)
                .map_err(|e| format!("heartbeat.to: {e}"))?;
        }
        Ok(())
    }
}

/// A parsed active-hours window: minutes of the day and a zone.
struct Window {
    start_min: u32,
    end_min: u32,
    tz: TimeZone,
}

impl ActiveHours {
    fn window(&self) -> Result<Window, String> {
        let start_min = parse_hhmm(&self.start, "start", false)?;
        let end_min = parse_hhmm(&self.end, "end", true)?;
        if start_min == end_min {
            return Err(format!(
                "heartbeat.activeHours: start and end are both \"{}\"; give a real window like \"08:00\" to \"22:00\", or leave activeHours out for all day",
                self.start
            ));
        }
        let tz = match &self.tz {
            Some(name) => lookup_tz(name).map_err(|e| format!("heartbeat.activeHours.tz: {e}"))?,
            None => TimeZone::system(),
        };
        Ok(Window {
            start_min,
            end_min,
            tz,
        })
    }
}

fn parse_hhmm(s: &str, which: &str, allow_24: bool) -> Result<u32, String> {
    let bad = || {
        format!(
            "heartbeat.activeHours.{which} \"{s}\" is not a time of day; use HH:MM, like \"08:00\" or \"22:30\"{}",
            if allow_24 { " (or \"24:00\")" } else { "" }
        )
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h == 24 && m == 0 && allow_24 {
        return Ok(24 * 60);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Window {
    fn contains(&self, local: &Zoned) -> bool {
        let t = local.time();
        let secs = t.hour() as u32 * 3600 + t.minute() as u32 * 60 + t.second() as u32;
        let start = self.start_min * 60;
        let end = self.end_min * 60;
        if start < end {
            secs >= start && secs < end
        } else {
            secs >= start || secs < end
        }
    }

    /// The first window start at or after `at`.
    fn next_start(&self, at: &Zoned) -> Option<Zoned> {
        let time = Time::new(
            (self.start_min / 60) as i8,
            (self.start_min % 60) as i8,
            0,
            0,
        )
        .ok()?;
        let mut date = at.date();
        for _ in 0..3 {
            // A start inside a DST gap moves forward by the gap's length.
            let candidate = date.to_datetime(time).to_zoned(self.tz.clone()).ok()?;
            if candidate.timestamp() >= at.timestamp() {
                return Some(candidate);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// When the next heartbeat should run: `every` after the last beat (or
/// after `now_ms` if there was none), but not before `now_ms`, moved to the
/// start of the next active window if it falls outside active hours.
/// `None` if the heartbeat is disabled or the config is invalid.
pub fn next_beat(cfg: &HeartbeatConfig, last_beat_ms: Option<u64>, now_ms: u64) -> Option<u64> {
    let every = match cfg.every_ms() {
        Ok(Some(ms)) => ms,
        Ok(None) => return None,
        Err(e) => {
            log::warn!("{e}");
            return None;
        }
    };
    let candidate = match last_beat_ms {
        Some(last) => last.saturating_add(every).max(now_ms),
        None => now_ms.saturating_add(every),
    };
    let ah = match &cfg.active_hours {
        Some(ah) => ah,
        None => return Some(candidate),
    };
    let window = match ah.window() {
        Ok(w) => w,
        Err(e) => {
            log::warn!("{e}");
            return None;
        }
    };
    let ts = Timestamp::from_millisecond(i64::try_from(candidate).ok()?).ok()?;
    let local = Zoned::new(ts, window.tz.clone());
    if window.contains(&local) {
        return Some(candidate);
    }
    let start = window.next_start(&local)?;
    u64::try_from(start.timestamp().as_millisecond()).ok()
}

/// True if the reply means "nothing to report": trimmed, it is the marker,
/// or starts or ends with it with at most 30 other characters. Markdown
/// emphasis or quotes around the marker are ignored.
pub fn is_nothing_to_report(reply: &str) -> bool {
    let decoration: &[char] = &['*', '`', '"', '\'', '.', '!', '_', '~'];
    let t = reply.trim();
    let rest = if let Some(r) = strip_marker_start(t, decoration) {
        r
    } else if let Some(r) = strip_marker_end(t, decoration) {
        r
    } else {
        return false;
    };
    rest.trim().chars().count() <= MAX_EXTRA_CHARS
}

fn strip_marker_start<'a>(t: &'a str, decoration: &[char]) -> Option<&'a str> {
    let inner = t.trim_start_matches(|c: char| decoration.contains(&c) || c.is_whitespace());
    let rest = inner.strip_prefix(NOTHING_TO_REPORT)?;
    // "HEARTBEAT_OKAY" is not the marker.
    if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    Some(rest.trim_start_matches(|c: char| decoration.contains(&c)))
}

fn strip_marker_end<'a>(t: &'a str, decoration: &[char]) -> Option<&'a str> {
    let inner = t.trim_end_matches(|c: char| decoration.contains(&c) || c.is_whitespace());
    let rest = inner.strip_suffix(NOTHING_TO_REPORT)?;
    if rest.chars().last().is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    Some(rest.trim_end_matches(|c: char| decoration.contains(&c)))
}

/// True if HEARTBEAT.md has nothing to check: only whitespace, headings,
/// HTML comments, horizontal rules and empty list items. Then the heartbeat
/// is skipped without a model call.
pub fn checklist_is_empty(heartbeat_md: &str) -> bool {
    let mut text = String::with_capacity(heartbeat_md.len());
    let mut rest = heartbeat_md;
    while let Some(open) = rest.find("<!--") {
        text.push_str(&rest[..open]);
        match rest[open + 4..].find("-->") {
            Some(close) => rest = &rest[open + 4 + close + 3..],
            None => {
                rest = "";
                break;
            }
        }
    }
    text.push_str(rest);
    text.lines().all(|line| {
        let l = line.trim();
        l.is_empty()
            || l.starts_with('#')
            || l.chars()
                .all(|c| c == '-' || c == '=' || c == '*' || c == '_' || c == ' ')
            || matches!(l, "- [ ]" | "* [ ]" | "- [x]" | "* [x]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::trigger::parse_at;

    const MIN: u64 = 60_000;

    fn ms(s: &str) -> u64 {
        parse_at(s).expect("test time")
    }

    fn cfg(every: &str, window: Option<(&str, &str)>) -> HeartbeatConfig {
        HeartbeatConfig {
            every: every.to_string(),
            active_hours: window.map(|(s, e)| ActiveHours {
                start: s.to_string(),
                end: e.to_string(),
                tz: Some("Europe/Berlin".to_string()),
            }),
            ..HeartbeatConfig::default()
        }
    }

    #[test]
    fn interval_without_active_hours() {
        let c = cfg("30m", None);
        let now = 10 * 60 * MIN;
        assert_eq!(next_beat(&c, None, now), Some(now + 30 * MIN));
        assert_eq!(
            next_beat(&c, Some(now - 10 * MIN), now),
            Some(now + 20 * MIN)
        );
        // overdue (e.g. after downtime): once, now
        assert_eq!(next_beat(&c, Some(now - 5 * 60 * MIN), now), Some(now));
        assert_eq!(next_beat(&cfg("0m", None), Some(0), now), None);
        assert_eq!(next_beat(&cfg("soon", None), Some(0), now), None);
        assert_eq!(HeartbeatConfig::default().every_ms(), Ok(Some(30 * MIN)));
    }

    #[test]
    fn config_errors_are_explained() {
        assert!(cfg("0m", None).validate().is_ok());
        let e = cfg("5s", None).validate().unwrap_err();
        assert!(e.contains("\"0m\" to disable"), "{e}");
        let e = cfg("30x", None).validate().unwrap_err();
        assert!(e.starts_with("heartbeat.every:"), "{e}");
        let e = cfg("30m", Some(("8am", "22:00"))).validate().unwrap_err();
        assert!(e.contains("activeHours.start \"8am\""), "{e}");
        let e = cfg("30m", Some(("08:00", "25:00"))).validate().unwrap_err();
        assert!(e.contains("activeHours.end"), "{e}");
        let e = cfg("30m", Some(("08:00", "08:00"))).validate().unwrap_err();
        assert!(e.contains("both"), "{e}");
        assert!(cfg("30m", Some(("8:00", "24:00"))).validate().is_ok());
        let mut c = cfg("30m", Some(("08:00", "22:00")));
        c.active_hours.as_mut().unwrap().tz = Some("Nowhere/Land".to_string());
        assert!(c.validate().unwrap_err().contains("unknown time zone"));
    }

    #[test]
    fn daytime_window_defers_to_next_morning() {
        let c = cfg("30m", Some(("08:00", "22:00")));
        let last = ms("2026-06-05T12:00:00+02:00");
        assert_eq!(
            next_beat(&c, Some(last), last),
            Some(ms("2026-06-05T12:30:00+02:00"))
        );
        let late = ms("2026-06-05T21:45:00+02:00");
        assert_eq!(
            next_beat(&c, Some(late), late),
            Some(ms("2026-06-06T08:00:00+02:00"))
        );
        let early = ms("2026-06-05T05:00:00+02:00");
        assert_eq!(
            next_beat(&c, Some(early), early),
            Some(ms("2026-06-05T08:00:00+02:00"))
        );
        // end is exclusive
        let c = cfg("1h", Some(("08:00", "22:00")));
        let at21 = ms("2026-06-05T21:00:00+02:00");
        assert_eq!(
            next_beat(&c, Some(at21), at21),
            Some(ms("2026-06-06T08:00:00+02:00"))
        );
    }

    #[test]
    fn overnight_window_is_supported() {
        let c = cfg("30m", Some(("22:00", "06:00")));
        let noon = ms("2026-06-05T12:00:00+02:00");
        assert_eq!(
            next_beat(&c, Some(noon), noon),
            Some(ms("2026-06-05T22:00:00+02:00"))
        );
        let late = ms("2026-06-05T23:00:00+02:00");
        assert_eq!(next_beat(&c, Some(late), late), Some(late + 30 * MIN));
        let night = ms("2026-06-06T02:00:00+02:00");
        assert_eq!(next_beat(&c, Some(night), night), Some(night + 30 * MIN));
        let dawn = ms("2026-06-06T05:30:00+02:00");
        assert_eq!(
            next_beat(&c, Some(dawn), dawn),
            Some(ms("2026-06-06T22:00:00+02:00"))
        );
    }

    #[test]
    fn active_hours_follow_the_zone_across_dst() {
        // New York 08:00-20:00 on the day clocks go back (EDT -> EST)
        let mut c = cfg("1h", Some(("08:00", "20:00")));
        c.active_hours.as_mut().unwrap().tz = Some("America/New_York".to_string());
        let evening = ms("2026-10-31T19:30:00-04:00");
        assert_eq!(
            next_beat(&c, Some(evening), evening),
            Some(ms("2026-11-01T08:00:00-05:00"))
        );
    }

    #[test]
    fn nothing_to_report_marker() {
        assert!(is_nothing_to_report("HEARTBEAT_OK"));
        assert!(is_nothing_to_report("  HEARTBEAT_OK\n"));
        assert!(is_nothing_to_report("**HEARTBEAT_OK**"));
        assert!(is_nothing_to_report("HEARTBEAT_OK - all quiet."));
        assert!(is_nothing_to_report("Nothing new today. HEARTBEAT_OK"));
        assert!(!is_nothing_to_report(
            "HEARTBEAT_OK but your flight to Lisbon was cancelled, rebook now"
        ));
        assert!(!is_nothing_to_report(
            "Your 10:00 meeting moved to 11:30 and Anna replied. HEARTBEAT_OK"
        ));
        assert!(!is_nothing_to_report("You have 3 new emails."));
        assert!(!is_nothing_to_report("HEARTBEAT_OKAY"));
        assert!(!is_nothing_to_report(
            "I said HEARTBEAT_OK yesterday, but now: the server is down"
        ));
        assert!(!is_nothing_to_report(""));
    }

    #[test]
    fn empty_checklist_detection() {
        assert!(checklist_is_empty(""));
        assert!(checklist_is_empty("   \n\n"));
        assert!(checklist_is_empty("# Heartbeat\n\n## Checks\n"));
        assert!(checklist_is_empty(
            "# Heartbeat\n<!-- add things to check,\n one per line -->\n---\n- [ ]\n"
        ));
        assert!(checklist_is_empty(
            "<!-- unterminated comment\n- check mail"
        ));
        assert!(!checklist_is_empty("# Heartbeat\n- check the mail inbox\n"));
        assert!(!checklist_is_empty("<!-- c --> look at the calendar"));
        assert!(!checklist_is_empty(
            "#hashtag-free text\nremind me to stretch"
        ));
    }

    #[test]
    fn config_serde_is_camel_case() {
        let c: HeartbeatConfig = serde_json::from_str(
            r#"{"every":"1h","activeHours":{"start":"08:00","end":"22:00","tz":"Europe/Berlin"}}"#,
        )
        .unwrap();
        assert_eq!(c, cfg("1h", Some(("08:00", "22:00"))));
        let d: HeartbeatConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, HeartbeatConfig::default());
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"every":"30m"}"#);
    }
}
