//! Entity escaping shared by the channels whose markup is HTML-like (Slack
//! mrkdwn, Telegram HTML): `&`, `<`, `>` and, where attributes exist, `"`.
//! Pure.

/// Replaces `&`, `<` and `>` (and `"` when `quote`) with their entities.
pub fn escape_entities(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quote => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
