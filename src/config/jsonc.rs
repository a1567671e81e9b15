//! JSON with comments and trailing commas, as people write `pinch.json`.
//!
//! `strip` blanks out `//` and `/* */` comments and trailing commas with
//! spaces, so every remaining byte keeps its line and column and serde_json's
//! error positions point into the user's own file. `path_at` and `offset_of`
//! map between byte offsets and field paths (`gateway.auth.token`,
//! `models.providers.local.models[0].id`) so that any error, syntactic or
//! semantic, can name both the place and the field.

/// Returns `text` with comments and trailing commas replaced by spaces
/// (newlines inside block comments are kept). An unterminated block comment
/// is left in place so the JSON parser reports it at its start.
pub fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = b.to_vec();
    let mut i = 0;
    // Offset of the last comma seen outside strings and comments, cleared by
    // any significant byte: if a `}` or `]` follows it, it was trailing.
    let mut pending_comma: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                pending_comma = None;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if i + 1 < b.len() && b[i + 1] == b'/' => {
                while i < b.len() && b[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if i + 1 < b.len() && b[i + 1] == b'*' => {
                let start = i;
                let mut j = i + 2;
                let mut closed = false;
                while j + 1 < b.len() {
                    if b[j] == b'*' && b[j + 1] == b'/' {
                        closed = true;
                        break;
                    }
                    j += 1;
                }
                if !closed {
                    return String::from_utf8_lossy(&out).into_owned();
                }
                for k in start..j + 2 {
                    if out[k] != b'\n' {
                        out[k] = b' ';
                    }
                }
                i = j + 2;
            }
            b',' => {
                pending_comma = Some(i);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(c) = pending_comma.take() {
                    out[c] = b' ';
                }
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                pending_comma = None;
                i += 1;
            }
        }
    }
    // Comment bytes were replaced by ASCII spaces byte for byte; a multi-byte
    // character inside a comment becomes several spaces, still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Converts a 1-based line and column (as serde_json reports them) to a byte offset.
pub fn offset_at(text: &str, line: usize, column: usize) -> usize {
    let mut cur = 1;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if cur == line {
            break;
        }
        if c == '\n' {
            cur += 1;
            start = i + 1;
        }
    }
    (start + column.saturating_sub(1)).min(text.len())
}

/// Converts a byte offset into a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

#[derive(Clone)]
enum Frame {
    Object { key: Option<String> },
    Array { index: usize },
}

fn render(stack: &[Frame]) -> String {
    let mut s = String::new();
    for f in stack {
        match f {
            Frame::Object { key: Some(k) } => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Frame::Object { key: None } => {}
            Frame::Array { index } => {
                s.push('[');
                s.push_str(&index.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// Walks stripped JSON text and calls `visit(offset, path)` at the start of
/// every key and every value. Stops early when `visit` returns false.
/// Nesting deeper than this ends a walk: no config is nested that deep, and
/// each visit renders the path, so the cost stays linear in the text.
const MAX_WALK_DEPTH: usize = 64;

fn walk(text: &str, mut visit: impl FnMut(usize, &str, bool) -> bool) {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'{' => {
                if !visit(i, &render(&stack), false) {
                    return;
                }
                stack.push(Frame::Object { key: None });
                if stack.len() > MAX_WALK_DEPTH {
                    return;
                }
                expecting_key = true;
                i += 1;
            }
            b'[' => {
                if !visit(i, &render(&stack), false) {
                    return;
                }
                stack.push(Frame::Array { index: 0 });
                if stack.len() > MAX_WALK_DEPTH {
                    return;
                }
                expecting_key = false;
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                expecting_key = false;
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array { index }) => *index += 1,
                    Some(Frame::Object { key }) => {
                        *key = None;
                        expecting_key = true;
                    }
                    None => {}
                }
                i += 1;
            }
            b':' => {
                expecting_key = false;
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut s = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    s.push(b[i] as char);
                    i += 1;
                }
                i += 1;
                if expecting_key {
                    if let Some(Frame::Object { key }) = stack.last_mut() {
                        *key = Some(s);
                    }
                    if !visit(start, &render(&stack), true) {
                        return;
                    }
                } else if !visit(start, &render(&stack), false) {
                    return;
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                if !visit(i, &render(&stack), false) {
                    return;
                }
                while i < b.len()
                    && !matches!(b[i], b',' | b'}' | b']')
                    && !b[i].is_ascii_whitespace()
                {
                    i += 1;
                }
            }
        }
    }
}

/// The field path of the key or value that starts at or before `offset`.
pub fn path_at(text: &str, offset: usize) -> String {
    let mut best = String::new();
    walk(text, |at, path, _| {
        if at > offset {
            return false;
        }
        best = path.to_string();
        true
    });
    best
}

/// The byte offset of `path`'s key (or of the value, for array elements),
/// falling back to the deepest existing parent. `None` when nothing matches.
pub fn offset_of(text: &str, path: &str) -> Option<usize> {
    let mut found = None;
    let mut best_parent: Option<(usize, usize)> = None;
    walk(text, |at, p, _| {
        if p == path {
            found = Some(at);
            return false;
        }
        if !p.is_empty()
            && (path.starts_with(&format!("{p}.")) || path.starts_with(&format!("{p}[")))
        {
            let depth = p.len();
            if best_parent.map(|(d, _)| depth > d).unwrap_or(true) {
                best_parent = Some((depth, at));
            }
        }
        true
    });
    found.or(best_parent.map(|(_, at)| at))
}

/// Index after the string that starts at `i` (a `"`), or `None` if it never ends.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index after the JSON value that starts at `i` (iterative, any depth).
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace()
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Blanks the object member whose key path is exactly `path` (key, value
/// and its comma) in strict JSON text, keeping every other byte where it
/// was. Returns the new text and the offset of the member's key.
pub fn remove_member(text: &str, path: &str) -> Option<(String, usize)> {
    let mut key_at = None;
    walk(text, |at, p, is_key| {
        if is_key && p == path {
            key_at = Some(at);
            return false;
        }
        true
    });
    let start = key_at?;
    let b = text.as_bytes();
    let mut i = skip_string(b, start)?;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let mut end = skip_value(b, i)?;
    let mut j = end;
    while b.get(j).is_some_and(u8::is_ascii_whitespace) {
        j += 1;
    }
    if b.get(j) == Some(&b',') {
        end = j + 1;
    }
    let mut out = b.to_vec();
    for byte in out.iter_mut().take(end).skip(start) {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
    // A member that was last leaves its predecessor's comma trailing.
    let out = String::from_utf8(out).ok()?;
    Some((strip(&out), start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_and_trailing_commas_keeping_positions() {
        let src = "{\n  // a comment\n  \"a\": 1, /* b */\n  \"c\": [1, 2,],\n}\n";
        let out = strip(src);
        assert_eq!(out.len(), src.len());
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid json after strip");
        assert_eq!(v["a"], 1);
        assert_eq!(v["c"][1], 2);
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn comment_markers_inside_strings_are_kept() {
        let src = r#"{"url": "http://x//y", "s": "a /* b */ c", "e": "q\"//"}"#;
        let v: serde_json::Value = serde_json::from_str(&strip(src)).expect("json");
        assert_eq!(v["url"], "http://x//y");
        assert_eq!(v["s"], "a /* b */ c");
        assert_eq!(v["e"], "q\"//");
    }

    #[test]
    fn comma_before_comment_then_brace_is_trailing() {
        let src = "{\"a\": 1, // last\n}";
        let v: serde_json::Value = serde_json::from_str(&strip(src)).expect("json");
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn unterminated_block_comment_is_left_for_the_parser() {
        let src = "{\"a\": 1 /* never closed }";
        assert!(serde_json::from_str::<serde_json::Value>(&strip(src)).is_err());
    }

    #[test]
    fn path_at_names_nested_keys_and_array_indices() {
        let src = "{\"gateway\": {\"port\": 1, \"auth\": {\"token\": \"x\"}},\n \"models\": {\"providers\": {\"p\": {\"models\": [{\"id\": \"a\"}, {\"id\": \"b\"}]}}}}";
        let at = src.find("\"token\"").expect("token") + 3;
        assert_eq!(path_at(src, at), "gateway.auth.token");
        let at = src.rfind("\"b\"").expect("b");
        assert_eq!(path_at(src, at), "models.providers.p.models[1].id");
    }

    #[test]
    fn offset_of_finds_keys_and_falls_back_to_parent() {
        let src = "{\"gateway\": {\"port\": 1}}";
        let off = offset_of(src, "gateway.port").expect("found");
        assert_eq!(&src[off..off + 6], "\"port\"");
        let off = offset_of(src, "gateway.bind").expect("parent");
        assert_eq!(&src[off..off + 9], "\"gateway\"");
        assert_eq!(line_col(src, off), (1, 2));
    }

    #[test]
    fn remove_member_keeps_positions_and_valid_json() {
        let src =
            "{\"a\": 1, \"tts\": {\"x\": [1, {\"y\": \"}\"}]}, \"b\": {\"c\": 2, \"d\": \"e\"}}";
        let (out, at) = remove_member(src, "tts").expect("found");
        assert_eq!(at, src.find("\"tts\"").expect("tts"));
        assert_eq!(out.len(), src.len());
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v, serde_json::json!({"a": 1, "b": {"c": 2, "d": "e"}}));
        let (out, _) = remove_member(&out, "b.d").expect("last member");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v, serde_json::json!({"a": 1, "b": {"c": 2}}));
        assert!(remove_member(src, "nope").is_none());
    }

    #[test]
    fn offset_and_line_col_round_trip() {
        let src = "ab\ncdé\nf";
        let off = offset_at(src, 2, 2);
        assert_eq!(&src[off..off + 1], "d");
        assert_eq!(line_col(src, off), (2, 2));
    }
}
