//! JSON5 (the format of OpenClaw's `openclaw.json`) to strict JSON, keeping
//! a map from every output byte back to the user's text.
//!
//! The converter is one forward pass with no recursion: comments and
//! trailing commas become spaces, unquoted keys get quotes, single-quoted
//! strings become double-quoted ones, JSON5-only escapes (`\'`, `\v`, `\0`,
//! `\xHH`, a backslash before a line break) become JSON escapes or nothing,
//! hex numbers become decimal, and `+1`, `.5`, `5.` become `1`, `0.5`, `5`.
//! `Infinity` and `NaN` are refused: no config value can use them.
//! serde_json then parses the output into the typed schema, and
//! [`Converted::input_offset`] turns the position of any of its errors into
//! the line and column of the file as the user wrote it.

/// Strict JSON and the way back to the source positions.
#[derive(Debug, Clone)]
pub struct Converted {
    pub json: String,
    /// `(output offset, input offset)` wherever the distance between the two
    /// changes; sorted by output offset.
    anchors: Vec<(usize, usize)>,
    input_len: usize,
}

impl Converted {
    /// The input byte offset that produced output byte `out`.
    pub fn input_offset(&self, out: usize) -> usize {
        let i = self.anchors.partition_point(|(o, _)| *o <= out);
        let mapped = match i.checked_sub(1).and_then(|k| self.anchors.get(k)) {
            Some((o, inp)) => inp.saturating_add(out - o),
            None => out,
        };
        mapped.min(self.input_len)
    }
}

/// A JSON5 construct that has no JSON meaning for a config.
#[derive(Debug, Clone, PartialEq)]
pub struct Json5Error {
    /// Byte offset in the input.
    pub offset: usize,
    pub message: String,
}

struct Converter<'a> {
    text: &'a str,
    bytes: &'a [u8],
    out: String,
    anchors: Vec<(usize, usize)>,
    /// input offset minus output offset, as of the last anchor.
    delta: isize,
    /// Output offset of a comma not yet followed by a value.
    pending_comma: Option<usize>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$' || (!c.is_ascii() && c.is_alphabetic())
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || (!c.is_ascii() && c.is_alphanumeric())
}

/// Whitespace JSON5 allows that JSON does not.
fn is_extra_space(c: char) -> bool {
    matches!(
        c,
        '\u{0B}' | '\u{0C}' | '\u{A0}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}'
    ) || (!c.is_ascii() && c.is_whitespace())
}

/// Converts JSON5 text to strict JSON. Anything that is neither JSON5 nor
/// JSON is passed through for serde_json to report at its position.
pub fn to_json(text: &str) -> Result<Converted, Json5Error> {
    let mut c = Converter {
        text,
        bytes: text.as_bytes(),
        out: String::with_capacity(text.len() + text.len() / 8),
        anchors: Vec::new(),
        delta: 0,
        pending_comma: None,
    };
    c.run()?;
    Ok(Converted {
        json: c.out,
        anchors: c.anchors,
        input_len: text.len(),
    })
}

impl Converter<'_> {
    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|s| s.chars().next())
    }

    /// Records that the next output byte comes from input offset `input`.
    fn sync(&mut self, input: usize) {
        let d = input as isize - self.out.len() as isize;
        if d != self.delta {
            self.anchors.push((self.out.len(), input));
            self.delta = d;
        }
    }

    fn emit(&mut self, input: usize, s: &str) {
        self.sync(input);
        self.out.push_str(s);
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.sync(from);
        self.out.push_str(self.text.get(from..to).unwrap_or(""));
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, Json5Error> {
        Err(Json5Error {
            offset,
            message: message.into(),
        })
    }

    fn run(&mut self) -> Result<(), Json5Error> {
        let mut i = 0;
        if self.text.starts_with('\u{FEFF}') {
            self.emit(0, " ");
            i = 3;
        }
        while i < self.bytes.len() {
            let b = self.bytes[i];
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    self.copy(i, i + 1);
                    i += 1;
                }
                b'/' if self.bytes.get(i + 1) == Some(&b'/')
                    || self.bytes.get(i + 1) == Some(&b'*') =>
                {
                    i = self.comment(i)?;
                }
                b'"' | b'\'' => {
                    self.pending_comma = None;
                    i = self.string(i)?;
                }
                b',' => {
                    self.pending_comma = Some(self.out.len());
                    self.copy(i, i + 1);
                    i += 1;
                }
                b'}' | b']' => {
                    if let Some(at) = self.pending_comma.take() {
                        self.out.replace_range(at..at + 1, " ");
                    }
                    self.copy(i, i + 1);
                    i += 1;
                }
                b'{' | b'[' | b':' => {
                    self.pending_comma = None;
                    self.copy(i, i + 1);
                    i += 1;
                }
                b'0'..=b'9' | b'+' | b'-' | b'.' => {
                    self.pending_comma = None;
                    i = self.number(i)?;
                }
                _ => {
                    let Some(ch) = self.char_at(i) else {
                        // Not at a character boundary cannot happen for &str
                        // input advanced by whole characters; stop safely.
                        return self.err(i, "invalid text");
                    };
                    let len = ch.len_utf8();
                    if is_extra_space(ch) {
                        self.emit(i, " ");
                        i += len;
                    } else if is_ident_start(ch) || ch == '\\' {
                        self.pending_comma = None;
                        i = self.word(i)?;
                    } else {
                        self.pending_comma = None;
                        self.copy(i, i + len);
                        i += len;
                    }
                }
            }
        }
        Ok(())
    }

    /// `//` to the end of the line or `/* ... */`, as spaces (line breaks kept).
    fn comment(&mut self, start: usize) -> Result<usize, Json5Error> {
        let block = self.bytes.get(start + 1) == Some(&b'*');
        let end = if block {
            let rest = self.text.get(start + 2..).unwrap_or("");
            match rest.find("*/") {
                Some(k) => start + 2 + k + 2,
                None => return self.err(start, "this /* comment is never closed with */"),
            }
        } else {
            let rest = self.text.get(start..).unwrap_or("");
            start + rest.find('\n').unwrap_or(rest.len())
        };
        self.sync(start);
        for &b in &self.bytes[start..end] {
            self.out.push(if b == b'\n' { '\n' } else { ' ' });
        }
        Ok(end)
    }

    /// The offset of the next byte that is not whitespace or comment.
    fn next_significant(&self, mut i: usize) -> Option<u8> {
        while i < self.bytes.len() {
            match self.bytes[i] {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'/' if self.bytes.get(i + 1) == Some(&b'/') => {
                    let rest = self.text.get(i..).unwrap_or("");
                    i += rest.find('\n').unwrap_or(rest.len());
                }
                b'/' if self.bytes.get(i + 1) == Some(&b'*') => {
                    let rest = self.text.get(i + 2..).unwrap_or("");
                    i = match rest.find("*/") {
                        Some(k) => i + 2 + k + 2,
                        None => return None,
                    };
                }
                b => match self.char_at(i) {
                    Some(c) if is_extra_space(c) => i += c.len_utf8(),
                    _ => return Some(b),
                },
            }
        }
        None
    }

    /// An unquoted word: a key (followed by `:`), `true`/`false`/`null`, or
    /// an error that says what to write instead.
    fn word(&mut self, start: usize) -> Result<usize, Json5Error> {
        let mut i = start;
        while let Some(c) = self.char_at(i) {
            if c == '\\' {
                return self.err(
                    i,
                    "escapes in unquoted keys are not supported: put the key in quotes",
                );
            }
            if !is_ident_part(c) {
                break;
            }
            i += c.len_utf8();
        }
        let word = self.text.get(start..i).unwrap_or("");
        if self.next_significant(i) == Some(b':') {
            self.emit(start, "\"");
            self.copy(start, i);
            self.emit(i, "\"");
            return Ok(i);
        }
        match word {
            "true" | "false" | "null" => {
                self.copy(start, i);
                Ok(i)
            }
            "Infinity" | "NaN" => self.err(
                start,
                format!("{word} is not a usable config value: write a number"),
            ),
            _ => self.err(
                start,
                format!("unexpected word `{word}`: text values need quotes, e.g. \"{word}\""),
            ),
        }
    }

    fn string(&mut self, start: usize) -> Result<usize, Json5Error> {
        let quote = self.bytes[start];
        self.emit(start, "\"");
        let mut i = start + 1;
        while i < self.bytes.len() {
            let b = self.bytes[i];
            if b == quote {
                self.emit(i, "\"");
                return Ok(i + 1);
            }
            match b {
                b'\\' => i = self.escape(i)?,
                b'"' => {
                    // Only reachable inside a single-quoted string.
                    self.emit(i, "\\\"");
                    i += 1;
                }
                0x00..=0x09 | 0x0B..=0x0C | 0x0E..=0x1F => {
                    // JSON5 allows raw tabs and other controls in strings; JSON
                    // needs them escaped. (Raw line breaks stay: an error.)
                    self.emit(i, &format!("\\u{:04x}", b));
                    i += 1;
                }
                _ => {
                    let len = self.char_at(i).map(char::len_utf8).unwrap_or(1);
                    self.copy(i, i + len);
                    i += len;
                }
            }
        }
        // Unterminated: serde_json reports the end of the input.
        Ok(i)
    }

    /// One backslash escape inside a string; returns the offset after it.
    fn escape(&mut self, at: usize) -> Result<usize, Json5Error> {
        let Some(c) = self.char_at(at + 1) else {
            self.copy(at, at + 1);
            return Ok(at + 1);
        };
        let next = at + 1 + c.len_utf8();
        match c {
            // A line continuation: the backslash and the line break vanish.
            '\n' | '\u{2028}' | '\u{2029}' => Ok(next),
            '\r' => Ok(if self.bytes.get(next) == Some(&b'\n') {
                next + 1
            } else {
                next
            }),
            '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u' => {
                self.copy(at, next);
                Ok(next)
            }
            '\'' => {
                self.emit(at, "'");
                Ok(next)
            }
            'v' => {
                self.emit(at, "\\u000b");
                Ok(next)
            }
            '0' => {
                if self.bytes.get(next).is_some_and(u8::is_ascii_digit) {
                    return self.err(at, "octal escapes are not allowed in strings");
                }
                self.emit(at, "\\u0000");
                Ok(next)
            }
            'x' => {
                let hex = self.text.get(next..next + 2).unwrap_or("");
                if hex.len() != 2 || !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return self.err(at, "\\x needs two hex digits, e.g. \\x41");
                }
                self.emit(at, &format!("\\u00{hex}"));
                Ok(next + 2)
            }
            '1'..='9' => self.err(at, "octal escapes are not allowed in strings"),
            other => {
                // Any other escaped character stands for itself.
                let text = if other.is_control() {
                    format!("\\u{:04x}", other as u32)
                } else {
                    other.to_string()
                };
                self.emit(at, &text);
                Ok(next)
            }
        }
    }

    fn digits(&self, mut i: usize, hex: bool) -> usize {
        while self
            .bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit()))
        {
            i += 1;
        }
        i
    }

    fn number(&mut self, start: usize) -> Result<usize, Json5Error> {
        let mut i = start;
        match self.bytes[i] {
            b'+' => {
                self.sync(i + 1);
                i += 1;
            }
            b'-' => {
                self.copy(i, i + 1);
                i += 1;
            }
            _ => {}
        }
        if let Some(c) = self.char_at(i) {
            if is_ident_start(c) {
                let mut j = i;
                while self.char_at(j).is_some_and(is_ident_part) {
                    j += self.char_at(j).map(char::len_utf8).unwrap_or(1);
                }
                let word = self.text.get(i..j).unwrap_or("");
                return match word {
                    "Infinity" | "NaN" => self.err(
                        start,
                        format!("{word} is not a usable config value: write a number"),
                    ),
                    _ => self.err(start, format!("a sign before `{word}` is not a number")),
                };
            }
        }
        if self.bytes.get(i) == Some(&b'0') && matches!(self.bytes.get(i + 1), Some(b'x' | b'X')) {
            let end = self.digits(i + 2, true);
            let hex = self.text.get(i + 2..end).unwrap_or("");
            if hex.is_empty() {
                return self.err(i, "0x needs hex digits after it, e.g. 0x1F");
            }
            let Ok(value) = u64::from_str_radix(hex, 16) else {
                return self.err(i, "this hex number is too large");
            };
            self.emit(i, &value.to_string());
            return Ok(end);
        }
        let int_start = i;
        let int_end = self.digits(i, false);
        if int_end == int_start && self.bytes.get(i) == Some(&b'.') {
            self.emit(i, "0");
        }
        self.copy(int_start, int_end);
        i = int_end;
        if self.bytes.get(i) == Some(&b'.') {
            let frac_end = self.digits(i + 1, false);
            if frac_end > i + 1 || int_end == int_start {
                // "1.5", or a lone "." left for the parser to reject.
                self.copy(i, frac_end.max(i + 1));
            }
            // else "5." is 5: the dot is dropped.
            i = frac_end.max(i + 1);
        }
        if matches!(self.bytes.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let end = self.digits(j, false);
            self.copy(i, end);
            i = end;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> serde_json::Value {
        let c = to_json(text).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_str(&c.json).unwrap_or_else(|e| panic!("{e}: {}", c.json))
    }

    #[test]
    fn json5_spec_example() {
        let v = json(
            "// comment\n{\n  unquoted: 'and you can quote me on that',\n  singleQuotes: 'I can use \"double quotes\" here',\n  lineBreaks: \"Look, Mom! \\\nNo \\\\n's!\",\n  hexadecimal: 0xdecaf,\n  leadingDecimalPoint: .8675309, andTrailing: 8675309.,\n  positiveSign: +1,\n  trailingComma: 'in objects', andIn: ['arrays',],\n  \"backwardsCompatible\": \"with JSON\",\n  /* block */ $dollar_key: -0x10, _under: 5.e2,\n}\n",
        );
        assert_eq!(v["unquoted"], "and you can quote me on that");
        assert_eq!(v["singleQuotes"], "I can use \"double quotes\" here");
        assert_eq!(v["lineBreaks"], "Look, Mom! No \\n's!");
        assert_eq!(v["hexadecimal"], 912559);
        assert_eq!(v["leadingDecimalPoint"], 0.8675309);
        assert_eq!(v["andTrailing"], 8675309);
        assert_eq!(v["positiveSign"], 1);
        assert_eq!(v["andIn"][0], "arrays");
        assert_eq!(v["backwardsCompatible"], "with JSON");
        assert_eq!(v["$dollar_key"], -16);
        assert_eq!(v["_under"], 500.0);
    }

    #[test]
    fn json5_escapes() {
        let v = json(r#"{a: 'it\'s', b: "\x41\v\0", c: '\q', d: "é ☃", 'e': "tab\tx"}"#);
        assert_eq!(v["a"], "it's");
        assert_eq!(v["b"], "A\u{0B}\u{0}");
        assert_eq!(v["c"], "q");
        assert_eq!(v["d"], "é ☃");
        assert_eq!(v["e"], "tab\tx");
        assert!(to_json(r#"{a: "\01"}"#).is_err());
        assert!(to_json(r#"{a: "\xZ1"}"#).is_err());
    }

    #[test]
    fn plain_json_and_jsonc_unchanged_in_length() {
        let src = "{\n  // c\n  \"a\": [1, 2,], /* x */ \"b\": {\"c\": \"//no\"},\n}\n";
        let c = to_json(src).expect("ok");
        assert_eq!(c.json.len(), src.len());
        assert_eq!(c.input_offset(10), 10);
    }

    #[test]
    fn infinity_and_nan_are_refused_where_written() {
        for (src, at) in [
            ("{a: Infinity}", 4),
            ("{a: -Infinity}", 4),
            ("{\n b: +NaN}", 6),
        ] {
            let e = to_json(src).expect_err(src);
            assert_eq!(e.offset, at, "{src}");
            assert!(e.message.contains("not a usable config value"), "{e:?}");
        }
        // as a key it is just a name
        assert_eq!(json("{Infinity: 1}")["Infinity"], 1);
    }

    #[test]
    fn bare_words_and_open_comments_are_errors_with_positions() {
        let e = to_json("{a: 1,\n b: hello}").expect_err("bare");
        assert_eq!(e.offset, 11);
        assert!(e.message.contains("\"hello\""), "{e:?}");
        let e = to_json("{a: 1 /* open").expect_err("comment");
        assert_eq!(e.offset, 6);
    }

    #[test]
    fn positions_map_back_to_the_source() {
        // Unquoted keys and hex change lengths; errors after them still
        // point at the user's text.
        let src = "{key: 0x10, 'other': .5,\n  bad: [1 2] }";
        let c = to_json(src).expect("converts");
        let err = serde_json::from_str::<serde_json::Value>(&c.json).expect_err("no comma");
        let out = crate::config::jsonc::offset_at(&c.json, err.line(), err.column());
        let input = c.input_offset(out);
        let (line, col) = crate::config::jsonc::line_col(src, input);
        assert_eq!(line, 2);
        assert_eq!(col, 11, "the `2` in {:?}", c.json);
        let key = c.json.find("\"other\"").expect("other");
        assert_eq!(c.input_offset(key), src.find("'other'").expect("src"));
        let bad = c.json.find("\"bad\"").expect("bad");
        assert_eq!(c.input_offset(bad), src.find("bad").expect("src"));
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let c = to_json(&deep).expect("converts");
        assert_eq!(c.json.len(), deep.len());
    }
}
