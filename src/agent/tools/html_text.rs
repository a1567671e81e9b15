//! HTML reduced to readable text for `web_fetch`.

/// Reduces HTML to readable text: drops scripts, styles and tags, keeps
/// line structure at block elements, decodes common entities.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 3);
    let mut i = 0;
    let b = html.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &lower[i..];
            for skip in ["script", "style", "noscript", "svg", "head"] {
                if rest.starts_with(&format!("<{skip}")) {
                    let close = format!("</{skip}");
                    if let Some(end) = rest.find(&close) {
                        i += end;
                    }
                    break;
                }
            }
            let end = lower[i..].find('>').map(|e| i + e + 1).unwrap_or(b.len());
            let tag = &lower[i..end];
            if [
                "<br", "<p", "</p", "<div", "</div", "<li", "<h1", "<h2", "<h3", "<h4", "<tr",
                "</h", "<title", "</title",
            ]
            .iter()
            .any(|t| tag.starts_with(t))
            {
                out.push('\n');
            }
            i = end;
            continue;
        }
        let next = lower[i..].find('<').map(|e| i + e).unwrap_or(b.len());
        out.push_str(&html[i..next]);
        i = next;
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let mut lines: Vec<String> = Vec::new();
    for l in decoded.lines() {
        let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
        if !l.is_empty() {
            lines.push(l);
        }
    }
    lines.join("\n")
}
