//! Markdown as models write it → Slack mrkdwn. Pure.
//!
//! `**bold**`/`__bold__` → `*bold*`, `*italic*` → `_italic_`, `~~strike~~` →
//! `~strike~`, `[label](https://…)` → `<https://…|label>`, headings → bold
//! lines, `-`/`*` list items → `•`, fenced blocks without their language tag.
//! Everything else is text: `&`, `<` and `>` become entities, so nothing a
//! model writes can turn into a mention (`<!channel>`) or a link Slack did
//! not see in the Markdown. A leading `>` stays a quote.

/// Escapes the three characters Slack gives meaning to.
pub fn escape(s: &str) -> String {
    crate::channel::escape::escape_entities(s, false)
}

/// Converts one message (or chunk) from Markdown to mrkdwn.
pub fn to_mrkdwn(md: &str) -> String {
    let mut out = String::with_capacity(md.len() + 16);
    let mut in_fence = false;
    for line in md.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start();
        if trimmed.starts_with("```") {
            out.push_str("```");
            if !in_fence {
                // Text after the closing fence on the same line is rare; the
                // language tag after an opening one is dropped.
                in_fence = true;
            } else {
                in_fence = false;
            }
            out.push_str(newline);
            continue;
        }
        if in_fence {
            out.push_str(&escape(body));
            out.push_str(newline);
            continue;
        }
        let indent = &body[..body.len() - trimmed.len()];
        let hashes = trimmed.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            let title = trimmed[hashes..].trim().replace("**", "").replace("__", "");
            out.push('*');
            out.push_str(&escape(&title));
            out.push('*');
        } else if let Some(item) = ["- ", "* ", "+ "]
            .iter()
            .find_map(|m| trimmed.strip_prefix(m))
        {
            out.push_str(indent);
            out.push_str("• ");
            inline(item, &mut out);
        } else if let Some(quoted) = trimmed.strip_prefix('>') {
            out.push('>');
            inline(quoted, &mut out);
        } else {
            inline(body, &mut out);
        }
        out.push_str(newline);
    }
    if in_fence {
        out.push_str("\n```");
    }
    out
}

/// Text between `open` at the start of `s` and the next `close`, if closed
/// on this line and not empty.
fn span<'a>(s: &'a str, open: &str, close: &str) -> Option<(&'a str, &'a str)> {
    let r = s.strip_prefix(open)?;
    let end = r.find(close)?;
    if end == 0 {
        return None;
    }
    Some((&r[..end], &r[end + close.len()..]))
}

fn inline(line: &str, out: &mut String) {
    let mut rest = line;
    while !rest.is_empty() {
        if let Some((code, r)) = span(rest, "`", "`") {
            out.push('`');
            out.push_str(&escape(code));
            out.push('`');
            rest = r;
            continue;
        }
        let styled = span(rest, "**", "**")
            .or_else(|| span(rest, "__", "__"))
            .map(|t| ('*', t))
            .or_else(|| span(rest, "~~", "~~").map(|t| ('~', t)))
            .or_else(|| {
                span(rest, "*", "*")
                    .filter(|(t, _)| !t.starts_with(' ') && !t.ends_with(' '))
                    .map(|t| ('_', t))
            });
        if let Some((mark, (text, r))) = styled {
            out.push(mark);
            out.push_str(&escape(text));
            out.push(mark);
            rest = r;
            continue;
        }
        if let Some((label, r)) = span(rest, "[", "](") {
            if let Some(end) = r.find(')') {
                let url = &r[..end];
                let safe = (url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("mailto:"))
                    && !url.contains(['<', '>', '|', ' ']);
                if safe {
                    out.push('<');
                    out.push_str(&url.replace('&', "&amp;"));
                    out.push('|');
                    out.push_str(&escape(label));
                    out.push('>');
                    rest = &r[end + 1..];
                    continue;
                }
            }
        }
        let first = rest.chars().next().map(char::len_utf8).unwrap_or(1);
        let next = rest
            .get(first..)
            .and_then(|t| t.find(['`', '*', '_', '~', '[']))
            .map(|i| i + first)
            .unwrap_or(rest.len());
        out.push_str(&escape(&rest[..next]));
        rest = &rest[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(
            to_mrkdwn("a **b** *c* ~~d~~ `e<f`"),
            "a *b* _c_ ~d~ `e&lt;f`"
        );
        assert_eq!(
            to_mrkdwn("__bold__ snake_case_name"),
            "*bold* snake_case_name"
        );
        assert_eq!(
            to_mrkdwn("see [the docs](https://x.test/?a=1&b=2)"),
            "see <https://x.test/?a=1&amp;b=2|the docs>"
        );
        assert_eq!(
            to_mrkdwn("## Plan **now**\n- one\n* two"),
            "*Plan now*\n• one\n• two"
        );
        assert_eq!(to_mrkdwn("> quoted <b>"), "> quoted &lt;b&gt;");
        assert_eq!(
            to_mrkdwn("```rust\nif a < b && c {}\n```\ndone"),
            "```\nif a &lt; b &amp;&amp; c {}\n```\ndone"
        );
        assert_eq!(to_mrkdwn("```\nopen"), "```\nopen\n```");
    }

    #[test]
    fn nothing_a_model_writes_becomes_a_mention_or_hidden_link() {
        assert_eq!(
            to_mrkdwn("<!channel> <@U1>"),
            "&lt;!channel&gt; &lt;@U1&gt;"
        );
        assert_eq!(
            to_mrkdwn("[x](javascript:alert(1)) [y](https://a|b)"),
            "[x](javascript:alert(1)) [y](https://a|b)"
        );
        assert_eq!(to_mrkdwn("2 * 3 * 4 and a*"), "2 * 3 * 4 and a*");
        assert_eq!(to_mrkdwn("é**ü**ß [é"), "é*ü*ß [é");
        assert_eq!(to_mrkdwn(""), "");
    }
}
