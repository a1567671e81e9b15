//! Wall-clock time as unix milliseconds, RFC 3339 formatting and HTTP
//! dates, on jiff's calendar. Pure code only reads time through the
//! `now_ms` values it is handed; only I/O shells call `now_ms()`.

use jiff::civil::DateTime;
use jiff::tz::Offset;
use jiff::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix milliseconds as a UTC calendar date and time (jiff). Instants
/// past jiff's last one (late on 9999-12-30) read as the calendar's last
/// moment.
pub fn utc_datetime(ms: u64) -> DateTime {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map_or(DateTime::MAX, |at| Offset::UTC.to_datetime(at))
}

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let t = utc_datetime(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an HTTP date (`Wed, 25 Nov 2026 10:15:33 GMT`) to unix seconds.
/// The weekday is not checked; a date or time that does not exist is `None`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: i8 = it.next()?.parse().ok()?;
    let month_name = it.next()?;
    let year: i16 = it.next()?.parse().ok()?;
    let hms: Vec<i8> = it
        .next()?
        .split(':')
        .filter_map(|x| x.parse().ok())
        .collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|x| *x == month_name)?;
    let [hour, minute, second] = hms[..] else {
        return None;
    };
    let at = DateTime::new(
        year,
        i8::try_from(month + 1).ok()?,
        day,
        hour,
        minute,
        second,
        0,
    )
    .ok()?;
    let at = Offset::UTC.to_timestamp(at).ok()?;
    u64::try_from(at.as_second()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40.000Z");
        assert_eq!(
            parse_http_date("Wed, 18 Nov 2026 11:06:40 GMT"),
            Some(1_795_000_000)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        assert_eq!(parse_http_date("Sat, 31 Feb 2026 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Wed, 18 Nov 2026 24:00:00 GMT"), None);
        assert_eq!(parse_http_date("Wed, 18 Nov 99999 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Wed, 18 Nov 2026 11:06 GMT"), None);
        // The weekday is not checked.
        assert_eq!(
            parse_http_date("Mon, 18 Nov 2026 11:06:40 GMT"),
            Some(1_795_000_000)
        );
    }

    #[test]
    fn instants_past_the_calendar_read_as_its_last() {
        assert!(
            rfc3339(u64::MAX).starts_with("9999-12-"),
            "{}",
            rfc3339(u64::MAX)
        );
        assert_eq!(utc_datetime(u64::MAX), utc_datetime(i64::MAX as u64));
    }
}
