//! When a scheduled job fires: cron expressions in an IANA time zone, fixed
//! intervals on an anchored grid, and one-shot times.
//! Pure functions of the time passed in (unix milliseconds); nothing here reads
//! the clock. Cron matching is croner's (Vixie semantics, `L`, `W`, `#`),
//! time zones come from the system tzdata through jiff.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// The shortest interval an `every` trigger may have.
pub const MIN_EVERY_MS: u64 = 10_000;

/// When a job fires. Serialized with a `kind` tag:
/// `{"kind":"cron","expr":"0 7 * * 1-5","tz":"Europe/Berlin"}`,
/// `{"kind":"every","millis":1800000,"anchorMs":0}`, `{"kind":"at","atMs":...}`.
/// Read through `Trigger::from_json` (a `Value` first): a derived internally
/// tagged deserializer buffers through serde's `Content` and costs several
/// KB of binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Trigger {
    /// A 5-field cron expression evaluated in the wall clock of `tz`.
    Cron { expr: String, tz: String },
    /// Every `millis`, on the grid `anchor_ms + k * millis`.
    Every { millis: u64, anchor_ms: u64 },
    /// Once, at `at_ms`.
    At { at_ms: u64 },
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Trigger, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Trigger::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl Trigger {
    /// A trigger from its JSON object, the shapes `Serialize` writes; unknown
    /// fields are ignored, a missing or mistyped field is an error.
    fn from_json(v: &serde_json::Value) -> Result<Trigger, String> {
        use serde_json::Value;
        let o = v.as_object().ok_or("a trigger must be a JSON object")?;
        let text = |key: &str| -> Result<String, String> {
            match o.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("trigger field `{key}` must be a string")),
                None => Err(format!("missing field `{key}`")),
            }
        };
        let number = |key: &str| -> Result<u64, String> {
            match o.get(key) {
                Some(n) => n.as_u64().ok_or_else(|| {
                    format!("trigger field `{key}` must be a whole number of at least 0")
                }),
                None => Err(format!("missing field `{key}`")),
            }
        };
        match o.get("kind") {
            Some(Value::String(k)) => match k.as_str() {
                "cron" => Ok(Trigger::Cron {
                    expr: text("expr")?,
                    tz: text("tz")?,
                }),
                "every" => Ok(Trigger::Every {
                    millis: number("millis")?,
                    anchor_ms: number("anchorMs")?,
                }),
                "at" => Ok(Trigger::At {
                    at_ms: number("atMs")?,
                }),
                other => Err(format!(
                    "unknown variant `{other}`, expected one of `cron`, `every`, `at`"
                )),
            },
            Some(_) => Err("trigger field `kind` must be a string".into()),
            None => Err("missing field `kind`".into()),
        }
    }

    /// Checks the trigger; the error says what is wrong and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Trigger::Cron { expr, tz } => validate_cron(expr, tz),
            Trigger::Every { millis, .. } => {
                if *millis < MIN_EVERY_MS {
                    Err(format!(
                        "interval of {millis} ms is too short: the minimum is {} s",
                        MIN_EVERY_MS / 1000
                    ))
                } else {
                    Ok(())
                }
            }
            Trigger::At { .. } => Ok(()),
        }
    }

    /// The first fire time strictly after `after_ms`, or `None` if there is
    /// none (a passed `At`, an invalid cron expression or time zone).
    ///
    /// DST, as croner 4 does it: a fixed-time cron job (single minute and
    /// hour) whose wall clock time falls in a spring-forward gap runs at the
    /// first instant after the gap (02:30 on a 02:00->03:00 day runs at
    /// 03:00); in a fall-back overlap it runs once, at the earlier instant.
    /// Interval patterns (`*/15 * * * *`) skip the missing wall clock times
    /// and run on both halves of a repeated hour, as real time passes.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            Trigger::Cron { expr, tz } => {
                let cron = match parse_cron(expr) {
                    Ok(c) => c,
                    Err(e) => {
                        log::warn!("{e}");
                        return None;
                    }
                };
                let zone = match lookup_tz(tz) {
                    Ok(z) => z,
                    Err(e) => {
                        log::warn!("{e}");
                        return None;
                    }
                };
                cron_next_after(&cron, &zone, after_ms)
            }
            Trigger::Every { millis, anchor_ms } => {
                if *millis == 0 {
                    return None;
                }
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                let k = (after_ms - anchor_ms) / millis + 1;
                k.checked_mul(*millis)?.checked_add(*anchor_ms)
            }
            Trigger::At { at_ms } => {
                if *at_ms > after_ms {
                    Some(*at_ms)
                } else {
                    None
                }
            }
        }
    }

    /// The interval of an `Every` trigger, `None` for the others.
    pub fn interval_ms(&self) -> Option<u64> {
        match self {
            Trigger::Every { millis, .. } => Some(*millis),
            _ => None,
        }
    }
}

fn cron_next_after(cron: &Cron, zone: &TimeZone, after_ms: u64) -> Option<u64> {
    let ts = Timestamp::from_millisecond(i64::try_from(after_ms).ok()?).ok()?;
    let mut start = Zoned::new(ts, zone.clone());
    // croner works in whole seconds; loop in case a sub-second `after_ms`
    // yields a match that is not strictly later.
    for _ in 0..3 {
        let next = match cron.find_next_occurrence(&start, false) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("cron \"{}\": no next run: {e}", cron.pattern);
                return None;
            }
        };
        let ms = next.timestamp().as_millisecond();
        let ms = u64::try_from(ms).ok()?;
        if ms > after_ms {
            return Some(ms);
        }
        start = next;
    }
    None
}

/// Parses an interval such as `"30m"`, `"1h"`, `"90s"`, `"2h30m"` or `"1d"`
/// into milliseconds. The minimum is 10 s.
pub fn parse_every(s: &str) -> Result<u64, String> {
    let ms = parse_duration_ms(s)?;
    if ms < MIN_EVERY_MS {
        return Err(format!(
            "invalid interval \"{s}\": the minimum is {}s",
            MIN_EVERY_MS / 1000
        ));
    }
    Ok(ms)
}

/// Parses `<n>d<n>h<n>m<n>s` (each part optional, in that order, at least
/// one present) into milliseconds. `"0m"` gives 0.
pub(crate) fn parse_duration_ms(s: &str) -> Result<u64, String> {
    const HINT: &str =
        "use numbers with units d, h, m or s, largest first, like \"30m\", \"2h30m\" or \"1d\"";
    let text: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if text.is_empty() {
        return Err(format!("invalid interval \"{s}\": it is empty; {HINT}"));
    }
    let units = ['d', 'h', 'm', 's'];
    let unit_ms = [86_400_000u64, 3_600_000, 60_000, 1_000];
    let mut total: u64 = 0;
    let mut last_unit: Option<usize> = None;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let lc = c.to_ascii_lowercase();
        let idx = match units.iter().position(|u| *u == lc) {
            Some(i) => i,
            None => {
                return Err(format!(
                    "invalid interval \"{s}\": unknown unit '{c}'; {HINT}"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!(
                "invalid interval \"{s}\": unit '{c}' has no number before it; {HINT}"
            ));
        }
        if let Some(prev) = last_unit {
            if idx <= prev {
                return Err(format!(
                    "invalid interval \"{s}\": unit '{c}' is repeated or out of order; {HINT}"
                ));
            }
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid interval \"{s}\": number \"{digits}\" is too large"))?;
        total = n
            .checked_mul(unit_ms[idx])
            .and_then(|v| v.checked_add(total))
            .ok_or_else(|| format!("invalid interval \"{s}\": it is too large"))?;
        digits.clear();
        last_unit = Some(idx);
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid interval \"{s}\": number \"{digits}\" has no unit; {HINT}"
        ));
    }
    Ok(total)
}

/// Parses an RFC 3339 time with an offset (`2026-12-01T07:00:00+01:00` or
/// `2026-12-01T06:00:00Z`) into unix milliseconds.
pub fn parse_at(s: &str) -> Result<u64, String> {
    let ts: Timestamp = s.trim().parse().map_err(|e| {
        format!(
            "invalid time \"{s}\": {e}; use RFC 3339 with an offset, like \"2026-12-01T07:00:00+01:00\" or \"2026-12-01T06:00:00Z\""
        )
    })?;
    u64::try_from(ts.as_millisecond())
        .map_err(|_| format!("invalid time \"{s}\": it is before 1970-01-01T00:00:00Z"))
}

/// Checks a cron expression (exactly 5 fields) and an IANA time zone name.
pub fn validate_cron(expr: &str, tz: &str) -> Result<(), String> {
    let cron = parse_cron(expr)?;
    let zone = lookup_tz(tz)?;
    // A pattern such as "0 0 30 2 *" parses but never matches.
    if cron_next_after(&cron, &zone, 0).is_none() {
        return Err(format!(
            "invalid cron expression \"{expr}\": it never matches a real date (check day-of-month against month)"
        ));
    }
    Ok(())
}

const CRON_FORMAT: &str = "minute hour day-of-month month day-of-week";

pub(crate) fn parse_cron(expr: &str) -> Result<Cron, String> {
    let n = expr.split_whitespace().count();
    if n != 5 {
        return Err(format!(
            "invalid cron expression \"{expr}\": expected 5 fields ({CRON_FORMAT}), got {n}"
        ));
    }
    // croner reads an empty list item ("1,,2", a lone ",") as nothing; a
    // field of nothing never matches, and finding that out searches for
    // years of minutes (seconds of CPU per check).
    let names = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    for (field, name) in expr.split_whitespace().zip(names) {
        if field.split(',').any(str::is_empty) {
            return Err(format!(
                "invalid cron expression \"{expr}\": the {name} field \"{field}\" has an empty list item (fields: {CRON_FORMAT}; example \"0 7 * * 1-5\")"
            ));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!(
                "invalid cron expression \"{expr}\": {e} (fields: {CRON_FORMAT}; example \"0 7 * * 1-5\")"
            )
        })
}

pub(crate) fn lookup_tz(tz: &str) -> Result<TimeZone, String> {
    if tz.trim().is_empty() {
        return Err(
            "missing time zone: give an IANA name like \"Europe/Berlin\" or \"UTC\"".to_string(),
        );
    }
    TimeZone::get(tz).map_err(|_| {
        format!(
            "unknown time zone \"{tz}\": use an IANA name like \"Europe/Berlin\", \"America/New_York\" or \"UTC\" (looked up in the system tzdata, /usr/share/zoneinfo)"
        )
    })
}

/// Formats unix milliseconds as RFC 3339 UTC, for messages.
pub(crate) fn fmt_ms(ms: u64) -> String {
    match i64::try_from(ms)
        .ok()
        .and_then(|v| Timestamp::from_millisecond(v).ok())
    {
        Some(ts) => ts.to_string(),
        None => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        parse_at(s).expect("test time")
    }

    fn cron(expr: &str, tz: &str) -> Trigger {
        Trigger::Cron {
            expr: expr.to_string(),
            tz: tz.to_string(),
        }
    }

    /// All fire times in [from, to).
    fn runs_between(t: &Trigger, from: u64, to: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cur = from.saturating_sub(1);
        while let Some(n) = t.next_after(cur) {
            if n >= to {
                break;
            }
            out.push(n);
            cur = n;
        }
        out
    }

    #[test]
    fn cron_field_count_error_names_the_fields() {
        let e = validate_cron("0 7 * *", "UTC").unwrap_err();
        assert_eq!(
            e,
            "invalid cron expression \"0 7 * *\": expected 5 fields (minute hour day-of-month month day-of-week), got 4"
        );
        let e = validate_cron("0 0 7 * * *", "UTC").unwrap_err();
        assert!(e.contains("got 6"), "{e}");
        let e = validate_cron("", "UTC").unwrap_err();
        assert!(e.contains("got 0"), "{e}");
    }

    #[test]
    fn cron_bad_values_and_zones_are_explained() {
        let e = validate_cron("61 7 * * *", "UTC").unwrap_err();
        assert!(
            e.starts_with("invalid cron expression \"61 7 * * *\""),
            "{e}"
        );
        let e = validate_cron("0 7 * * funday", "UTC").unwrap_err();
        assert!(e.contains("invalid cron expression"), "{e}");
        let e = validate_cron("0 7 * * *", "Europe/Berln").unwrap_err();
        assert!(e.contains("unknown time zone \"Europe/Berln\""), "{e}");
        let e = validate_cron("0 7 * * *", "").unwrap_err();
        assert!(e.contains("missing time zone"), "{e}");
        let e = validate_cron(", 9 * * 1-5", "UTC").unwrap_err();
        assert!(
            e.contains("the minute field \",\" has an empty list item"),
            "{e}"
        );
        for expr in ["1,,2 * * * *", "0 0 ,1 * *", "0 0 * * 1,"] {
            assert!(validate_cron(expr, "UTC").is_err(), "{expr}");
        }
        let e = validate_cron("0 0 30 2 *", "UTC").unwrap_err();
        assert!(e.contains("never matches"), "{e}");
        assert!(validate_cron("0 7 * * 1-5", "Europe/Berlin").is_ok());
        assert!(validate_cron("*/15 9-17 * * MON-FRI", "America/New_York").is_ok());
    }

    #[test]
    fn parse_every_accepts_compound_units() {
        assert_eq!(parse_every("30m"), Ok(30 * 60_000));
        assert_eq!(parse_every("1h"), Ok(3_600_000));
        assert_eq!(parse_every("90s"), Ok(90_000));
        assert_eq!(parse_every("2h30m"), Ok(9_000_000));
        assert_eq!(parse_every("1d"), Ok(86_400_000));
        assert_eq!(parse_every(" 1h 15m "), Ok(4_500_000));
        assert_eq!(parse_every("10s"), Ok(10_000));
    }

    #[test]
    fn parse_every_rejects_bad_input() {
        assert!(parse_every("5s").unwrap_err().contains("minimum is 10s"));
        assert!(parse_every("0m").unwrap_err().contains("minimum"));
        assert!(parse_every("30").unwrap_err().contains("has no unit"));
        assert!(parse_every("30x").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse_every("m").unwrap_err().contains("no number"));
        assert!(parse_every("30m2h").unwrap_err().contains("out of order"));
        assert!(parse_every("").unwrap_err().contains("empty"));
        assert!(parse_every("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn parse_at_reads_rfc3339_with_offset() {
        assert_eq!(parse_at("1970-01-01T00:00:10Z"), Ok(10_000));
        assert_eq!(
            parse_at("2026-12-01T07:00:00+01:00"),
            parse_at("2026-12-01T06:00:00Z")
        );
        let e = parse_at("2026-12-01T07:00:00").unwrap_err();
        assert!(e.contains("RFC 3339 with an offset"), "{e}");
        assert!(parse_at("tomorrow").is_err());
        assert!(parse_at("1969-12-31T23:59:59Z")
            .unwrap_err()
            .contains("before 1970"));
    }

    #[test]
    fn dst_spring_forward_berlin_runs_once_at_three() {
        // 2026-03-29: 02:00 CET -> 03:00 CEST, 02:30 never happens.
        let t = cron("30 2 * * *", "Europe/Berlin");
        let runs = runs_between(
            &t,
            ms("2026-03-28T12:00:00+01:00"),
            ms("2026-03-30T12:00:00+02:00"),
        );
        // once that day, shifted to the first instant after the gap
        assert_eq!(
            runs,
            vec![
                ms("2026-03-29T03:00:00+02:00"),
                ms("2026-03-30T02:30:00+02:00")
            ]
        );
    }

    #[test]
    fn dst_spring_forward_berlin_exact_times() {
        let t = cron("30 2 * * *", "Europe/Berlin");
        let from = ms("2026-03-28T12:00:00+01:00");
        let first = t.next_after(from).unwrap();
        assert_eq!(first, ms("2026-03-29T03:00:00+02:00"));
        assert_eq!(first, ms("2026-03-29T01:00:00Z"));
        let second = t.next_after(first).unwrap();
        assert_eq!(second, ms("2026-03-30T02:30:00+02:00"));
    }

    #[test]
    fn dst_fall_back_berlin_runs_once() {
        // 2026-10-25: 03:00 CEST -> 02:00 CET, 02:00-03:00 happens twice.
        let t = cron("30 2 * * *", "Europe/Berlin");
        let runs = runs_between(
            &t,
            ms("2026-10-24T12:00:00+02:00"),
            ms("2026-10-26T00:00:00+01:00"),
        );
        // once, at the earlier (CEST) instant
        assert_eq!(runs, vec![ms("2026-10-25T02:30:00+02:00")]);
        // starting inside the second (CET) half does not run it again
        let later_half = ms("2026-10-25T02:10:00+01:00");
        assert_eq!(
            t.next_after(later_half),
            Some(ms("2026-10-26T02:30:00+01:00"))
        );
    }

    #[test]
    fn dst_interval_patterns_follow_real_time() {
        // an hourly pattern runs in both halves of the repeated hour ...
        let t = cron("0 * * * *", "Europe/Berlin");
        let runs = runs_between(
            &t,
            ms("2026-10-25T00:30:00+02:00"),
            ms("2026-10-25T04:30:00+01:00"),
        );
        assert_eq!(runs.len(), 5, "01, 02 CEST, 02 CET, 03, 04");
        // ... and skips the missing hour in spring
        let runs = runs_between(
            &t,
            ms("2026-03-29T00:30:00+01:00"),
            ms("2026-03-29T04:30:00+02:00"),
        );
        assert_eq!(
            runs,
            vec![
                ms("2026-03-29T01:00:00+01:00"),
                ms("2026-03-29T03:00:00+02:00"),
                ms("2026-03-29T04:00:00+02:00"),
            ]
        );
    }

    #[test]
    fn dst_new_york_both_transitions() {
        // 2026-03-08: 02:00 EST -> 03:00 EDT
        let t = cron("30 2 * * *", "America/New_York");
        let runs = runs_between(
            &t,
            ms("2026-03-07T12:00:00-05:00"),
            ms("2026-03-09T12:00:00-04:00"),
        );
        assert_eq!(
            runs,
            vec![
                ms("2026-03-08T03:00:00-04:00"),
                ms("2026-03-09T02:30:00-04:00")
            ]
        );
        // 2026-11-01: 02:00 EDT -> 01:00 EST, 01:00-02:00 repeats
        let t = cron("30 1 * * *", "America/New_York");
        let runs = runs_between(
            &t,
            ms("2026-10-31T12:00:00-04:00"),
            ms("2026-11-02T00:00:00-05:00"),
        );
        assert_eq!(runs, vec![ms("2026-11-01T01:30:00-04:00")]);
    }

    #[test]
    fn month_ends_skip_short_months_and_last_day_works() {
        let t = cron("0 9 31 * *", "UTC");
        let runs = runs_between(&t, ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"));
        let months: Vec<String> = runs.iter().map(|m| fmt_ms(*m)[..10].to_string()).collect();
        assert_eq!(
            months,
            vec![
                "2026-01-31",
                "2026-03-31",
                "2026-05-31",
                "2026-07-31",
                "2026-08-31",
                "2026-10-31",
                "2026-12-31"
            ]
        );
        let t = cron("0 9 L * *", "UTC");
        let runs = runs_between(&t, ms("2026-01-01T00:00:00Z"), ms("2026-05-01T00:00:00Z"));
        let days: Vec<String> = runs.iter().map(|m| fmt_ms(*m)[..10].to_string()).collect();
        assert_eq!(
            days,
            vec!["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
        );
        // leap year
        let t = cron("0 9 L 2 *", "UTC");
        assert_eq!(
            t.next_after(ms("2027-06-01T00:00:00Z")),
            Some(ms("2028-02-29T09:00:00Z"))
        );
    }

    #[test]
    fn weekday_range_skips_weekend() {
        // 2026-06-05 is a Friday
        let t = cron("0 7 * * 1-5", "Europe/Berlin");
        let fri = ms("2026-06-05T07:00:00+02:00");
        assert_eq!(t.next_after(fri - 1), Some(fri));
        assert_eq!(t.next_after(fri), Some(ms("2026-06-08T07:00:00+02:00")));
        let runs = runs_between(
            &t,
            ms("2026-06-01T00:00:00+02:00"),
            ms("2026-06-15T00:00:00+02:00"),
        );
        assert_eq!(runs.len(), 10);
    }

    #[test]
    fn cron_next_is_strictly_after_even_mid_second() {
        let t = cron("0 9 * * *", "UTC");
        let nine = ms("2026-06-05T09:00:00Z");
        assert_eq!(t.next_after(nine - 500), Some(nine));
        assert_eq!(t.next_after(nine), Some(ms("2026-06-06T09:00:00Z")));
        assert_eq!(t.next_after(nine + 500), Some(ms("2026-06-06T09:00:00Z")));
    }

    #[test]
    fn every_is_anchored_to_its_grid() {
        let t = Trigger::Every {
            millis: 60_000,
            anchor_ms: 1_000_000,
        };
        assert_eq!(t.next_after(0), Some(1_000_000));
        assert_eq!(t.next_after(1_000_000), Some(1_060_000));
        assert_eq!(t.next_after(1_059_999), Some(1_060_000));
        assert_eq!(t.next_after(1_060_001), Some(1_120_000));
        assert_eq!(
            t.next_after(1_000_000 + 60_000 * 1000 + 7),
            Some(1_000_000 + 60_000 * 1001)
        );
        assert!(Trigger::Every {
            millis: 5_000,
            anchor_ms: 0
        }
        .validate()
        .is_err());
    }

    #[test]
    fn at_fires_once() {
        let t = Trigger::At { at_ms: 5_000 };
        assert_eq!(t.next_after(0), Some(5_000));
        assert_eq!(t.next_after(4_999), Some(5_000));
        assert_eq!(t.next_after(5_000), None);
        assert_eq!(t.next_after(9_000), None);
    }

    #[test]
    fn trigger_serde_is_tagged_by_kind() {
        let t = cron("0 7 * * 1-5", "Europe/Berlin");
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"cron","expr":"0 7 * * 1-5","tz":"Europe/Berlin"}"#
        );
        let e: Trigger =
            serde_json::from_str(r#"{"kind":"every","millis":60000,"anchorMs":5}"#).unwrap();
        assert_eq!(
            e,
            Trigger::Every {
                millis: 60_000,
                anchor_ms: 5
            }
        );
        let a: Trigger = serde_json::from_str(r#"{"kind":"at","atMs":7}"#).unwrap();
        assert_eq!(a, Trigger::At { at_ms: 7 });
    }
}
