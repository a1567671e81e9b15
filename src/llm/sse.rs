//! Incremental Server-Sent Events parser. Feed it response bytes in chunks of
//! any size (split anywhere, even inside a UTF-8 sequence); it returns each
//! complete event. Lines end with \n, \r\n or \r. Line and event sizes are
//! capped so a misbehaving server cannot make it grow without bound.

use super::types::DecodeError;

/// Default cap on one line and on one event's data: 1 MiB.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// One dispatched event. `event` is None when no `event:` field was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    /// Bytes of the line being read; decoded only once the line is complete.
    line: Vec<u8>,
    /// The previous byte was \r, so a following \n belongs to the same break.
    after_cr: bool,
    /// The first line has been seen (a leading byte-order mark is dropped).
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_LINE)
    }
}

impl SseParser {
    /// `max_line` caps both a single line and the data of one event, in bytes.
    pub fn new(max_line: usize) -> SseParser {
        SseParser {
            max_line,
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Consume `bytes` and return the events completed by them. After an
    /// error the partial state is dropped; the stream should be abandoned.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, DecodeError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            if b == b'\n' || b == b'\r' {
                self.after_cr = b == b'\r';
                let mut line = std::mem::take(&mut self.line);
                let result = match std::str::from_utf8(&line) {
                    Ok(text) => self.process_line(text, &mut out),
                    Err(_) => Err(DecodeError::Malformed(
                        "invalid UTF-8 in event stream".to_string(),
                    )),
                };
                line.clear();
                self.line = line;
                if let Err(e) = result {
                    self.reset();
                    return Err(e);
                }
            } else {
                if self.line.len() >= self.max_line {
                    self.reset();
                    return Err(DecodeError::TooLarge("sse line"));
                }
                self.line.push(b);
            }
        }
        Ok(out)
    }

    /// End of stream: treat an unterminated last line and an event missing
    /// its closing blank line as complete (servers do omit them).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            let text = String::from_utf8_lossy(&line).into_owned();
            // The line is already within max_line; a data overflow only
            // drops this last line.
            let _ = self.process_line(&text, &mut out);
        }
        self.dispatch(&mut out);
        self.reset();
        out
    }

    fn reset(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.event = None;
        self.data.clear();
        self.has_data = false;
    }

    fn process_line(&mut self, line: &str, out: &mut Vec<SseEvent>) -> Result<(), DecodeError> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment, often used as keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => {
                self.event = if value.is_empty() {
                    None
                } else {
                    Some(value.to_string())
                };
            }
            "data" => {
                let extra = if self.has_data { 1 } else { 0 };
                if self.data.len() + extra + value.len() > self.max_line {
                    return Err(DecodeError::TooLarge("sse event data"));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // "id", "retry" and unknown fields are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    fn all_at_once(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new(DEFAULT_MAX_LINE);
        let mut out = p.feed(input).unwrap();
        out.extend(p.finish());
        out
    }

    fn byte_by_byte(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new(DEFAULT_MAX_LINE);
        let mut out = Vec::new();
        for b in input {
            out.extend(p.feed(std::slice::from_ref(b)).unwrap());
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let input = b": keep-alive\n\
event: message_start\n\
id: 7\n\
retry: 1000\n\
data: {\"a\":1}\n\
\n\
data: line one\n\
data:line two\n\
data\n\
\n\
event: only-type\n\
\n\
data: last\n\n";
        let got = all_at_once(input);
        assert_eq!(
            got,
            vec![
                ev(Some("message_start"), "{\"a\":1}"),
                ev(None, "line one\nline two\n"),
                ev(None, "last"),
            ]
        );
    }

    #[test]
    fn all_line_endings_are_equivalent() {
        let lf = b"event: e\ndata: x\n\ndata: y\n\n";
        let crlf = b"event: e\r\ndata: x\r\n\r\ndata: y\r\n\r\n";
        let cr = b"event: e\rdata: x\r\rdata: y\r\r";
        let want = vec![ev(Some("e"), "x"), ev(None, "y")];
        assert_eq!(all_at_once(lf), want);
        assert_eq!(all_at_once(crlf), want);
        assert_eq!(all_at_once(cr), want);
        assert_eq!(byte_by_byte(crlf), want);
        assert_eq!(byte_by_byte(cr), want);
    }

    #[test]
    fn crlf_split_between_feeds_is_one_break() {
        let mut p = SseParser::new(64);
        let mut out = p.feed(b"data: a\r").unwrap();
        out.extend(p.feed(b"\n").unwrap());
        // If the \n were taken as a second (blank) line the event would be
        // dispatched here already.
        assert!(out.is_empty());
        out.extend(p.feed(b"\r\n").unwrap());
        assert_eq!(out, vec![ev(None, "a")]);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let input = "data: héllo → 世界 🦀\n\n".as_bytes();
        assert_eq!(byte_by_byte(input), vec![ev(None, "héllo → 世界 🦀")]);
        // split at every possible point into two feeds
        for cut in 0..input.len() {
            let (a, b) = input.split_at(cut);
            let mut p = SseParser::new(1024);
            let mut out = p.feed(a).unwrap();
            out.extend(p.feed(b).unwrap());
            assert_eq!(out, vec![ev(None, "héllo → 世界 🦀")], "cut at {}", cut);
        }
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut p = SseParser::new(1024);
        let r = p.feed(b"data: \xff\xfe\n\n");
        assert!(matches!(r, Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn line_and_event_caps() {
        let mut p = SseParser::new(16);
        let r = p.feed(b"data: 0123456789abcdef");
        assert_eq!(r, Err(DecodeError::TooLarge("sse line")));
        // the parser recovers its memory and can be reused
        assert_eq!(p.feed(b"data: ok\n\n").unwrap(), vec![ev(None, "ok")]);
        // many short data lines in one event are capped as a whole
        let mut p = SseParser::new(16);
        let r = p.feed(b"data: 12345\ndata: 12345\ndata: 12345\n");
        assert_eq!(r, Err(DecodeError::TooLarge("sse event data")));
    }

    #[test]
    fn finish_flushes_unterminated_event_and_bom_is_dropped() {
        let mut p = SseParser::new(1024);
        let out = p.feed(b"\xef\xbb\xbfdata: first\n\ndata: [DONE]").unwrap();
        assert_eq!(out, vec![ev(None, "first")]);
        assert_eq!(p.finish(), vec![ev(None, "[DONE]")]);
        assert!(p.finish().is_empty());
    }
}
