//! Codec: the model's Markdown as Telegram HTML (`parse_mode: "HTML"`), pure.

use super::escape_html;

/// The small Markdown subset models use, as Telegram HTML: fenced code,
/// inline code and **bold**; everything else is escaped text.
pub fn markdown_to_html(md: &str) -> String {
    let mut out = String::with_capacity(md.len() + 32);
    let mut in_fence = false;
    for line in md.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            out.push_str(if in_fence { "</pre>" } else { "<pre>" });
            in_fence = !in_fence;
            if line.ends_with('\n') && !in_fence {
                out.push('\n');
            }
            continue;
        }
        if in_fence {
            out.push_str(&escape_html(line));
            continue;
        }
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('`') {
                if let Some(end) = r.find('`') {
                    out.push_str("<code>");
                    out.push_str(&escape_html(&r[..end]));
                    out.push_str("</code>");
                    rest = &r[end + 1..];
                    continue;
                }
            }
            if let Some(r) = rest.strip_prefix("**") {
                if let Some(end) = r.find("**") {
                    out.push_str("<b>");
                    out.push_str(&escape_html(&r[..end]));
                    out.push_str("</b>");
                    rest = &r[end + 2..];
                    continue;
                }
            }
            let first = rest.chars().next().map(char::len_utf8).unwrap_or(1);
            let next = rest[first..]
                .find(['`', '*'])
                .map(|i| i + first)
                .unwrap_or(rest.len());
            out.push_str(&escape_html(&rest[..next]));
            rest = &rest[next..];
        }
    }
    if in_fence {
        out.push_str("</pre>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::markdown_to_html;

    #[test]
    fn markdown_subset_to_html() {
        assert_eq!(
            markdown_to_html("a < b **bold** `x<y`"),
            "a &lt; b <b>bold</b> <code>x&lt;y</code>"
        );
        assert_eq!(
            markdown_to_html("```\nfn a() {}\n```\nafter"),
            "<pre>fn a() {}\n</pre>\nafter"
        );
        assert_eq!(
            markdown_to_html("unclosed ** and ` stay"),
            "unclosed ** and ` stay"
        );
        assert_eq!(markdown_to_html("é*ü"), "é*ü");
    }
}
