//! Splits a long reply into chunks that fit a platform's message limit.
//!
//! Break preference: paragraph (blank line, code-fence edge) > line > sentence > word >
//! hard cut. A ``` fenced block is never cut unless it alone exceeds the limit; then it
//! is closed at the cut and reopened (same info string) in the next chunk. Lengths are
//! counted in Unicode scalar values or, for Telegram, UTF-16 code units ([`Measure`]).

/// How message length is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Unicode scalar values (`char`s).
    Chars,
    /// UTF-16 code units, as Telegram counts its 4096 limit.
    Utf16,
}

impl Measure {
    pub fn of_char(self, c: char) -> usize {
        match self {
            Measure::Chars => 1,
            Measure::Utf16 => c.len_utf16(),
        }
    }

    pub fn of(self, s: &str) -> usize {
        match self {
            Measure::Chars => s.chars().count(),
            Measure::Utf16 => s.encode_utf16().count(),
        }
    }
}

/// Splits counting Unicode scalar values.
pub fn split(text: &str, limit_chars: usize) -> Vec<String> {
    split_with(text, limit_chars, Measure::Chars)
}

/// Splits counting UTF-16 code units (Telegram).
pub fn split_utf16(text: &str, limit_units: usize) -> Vec<String> {
    split_with(text, limit_units, Measure::Utf16)
}

/// A fenced code block, by byte offsets into the text.
#[derive(Debug, Clone)]
struct Fence {
    /// Start of the opening line.
    start: usize,
    /// First byte after the opening line.
    content_start: usize,
    /// The newline before the closing line (cuts must stay before it).
    content_end: usize,
    /// Just past the closing backticks.
    end: usize,
    /// Opening marker without indentation: backticks plus info string.
    open: String,
    ticks: usize,
}

/// Finds fenced blocks; the second value is the tick count of a block left unclosed.
fn find_fences(text: &str) -> (Vec<Fence>, Option<usize>) {
    let mut fences = Vec::new();
    // (start, content_start, ticks, open marker)
    let mut open: Option<(usize, usize, usize, String)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let rest = body.trim_start_matches(' ');
        if body.len() - rest.len() > 3 {
            continue;
        }
        let ticks = rest.bytes().take_while(|b| *b == b'`').count();
        if ticks < 3 {
            continue;
        }
        let after = &rest[ticks..];
        match open.take() {
            None => {
                if !after.contains('`') {
                    let marker = format!("{}{}", &rest[..ticks], after.trim());
                    open = Some((line_start, pos, ticks, marker));
                }
            }
            Some((start, content_start, need, marker)) => {
                if ticks >= need && after.trim().is_empty() {
                    fences.push(Fence {
                        start,
                        content_start,
                        content_end: line_start.saturating_sub(1).max(content_start),
                        end: line_start + body.len(),
                        open: marker,
                        ticks: need,
                    });
                } else {
                    open = Some((start, content_start, need, marker));
                }
            }
        }
    }
    (fences, open.map(|o| o.2))
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    /// The chunk is `text[pos..end]`.
    end: usize,
    /// Where the next chunk starts.
    next: usize,
    /// The cut falls inside this fence: close it here, reopen next chunk.
    inside: Option<usize>,
}

const PARA: usize = 0;
const LINE: usize = 1;
const SENTENCE: usize = 2;
const WORD: usize = 3;
const HARD: usize = 4;

/// Splits `text` into chunks of at most `limit` units under `m` (a `limit` of 0 acts as 1).
/// Whitespace at chunk edges outside code blocks is dropped; all other content is kept in
/// order. An unclosed fence is closed at the end. Limits too small to hold a fence's
/// opening and closing lines split that block as plain text.
pub fn split_with(text: &str, limit: usize, m: Measure) -> Vec<String> {
    let limit = limit.max(1);
    let owned;
    let (mut fences, unclosed) = find_fences(text);
    let text = match unclosed {
        Some(ticks) => {
            let sep = if text.ends_with('\n') { "" } else { "\n" };
            owned = format!("{text}{sep}{}", "`".repeat(ticks));
            fences = find_fences(&owned).0;
            owned.as_str()
        }
        None => text,
    };
    fences.retain(|f| m.of(&text[f.start..f.content_start]) + 1 + f.ticks + 2 <= limit);
    let splittable: Vec<bool> = fences
        .iter()
        .map(|f| m.of(&text[f.start..f.end]) > limit)
        .collect();

    let mut out = Vec::new();
    let mut pos = skip_ws(text, 0);
    let mut cont: Option<usize> = None;
    while pos < text.len() {
        let prefix = match cont {
            Some(i) => format!("{}\n", fences[i].open),
            None => String::new(),
        };
        let budget = limit.saturating_sub(m.of(&prefix));
        let cut = match find_cut(text, pos, budget, m, &fences, &splittable, cont) {
            Some(c) => c,
            None => {
                let mut chunk = prefix;
                chunk.push_str(text[pos..].trim_end());
                out.push(chunk);
                break;
            }
        };
        let mut chunk = prefix;
        match cut.inside {
            Some(i) => {
                chunk.push_str(&text[pos..cut.end]);
                chunk.push('\n');
                chunk.push_str(&"`".repeat(fences[i].ticks));
                pos = cut.next;
            }
            None => {
                chunk.push_str(text[pos..cut.end].trim_end());
                pos = skip_ws(text, cut.next);
            }
        }
        cont = cut.inside;
        if !chunk.trim().is_empty() {
            out.push(chunk);
        }
    }
    out
}

/// Best cut for the chunk starting at `pos`, or `None` if the rest fits in `budget`.
fn find_cut(
    text: &str,
    pos: usize,
    budget: usize,
    m: Measure,
    fences: &[Fence],
    splittable: &[bool],
    cont: Option<usize>,
) -> Option<Cut> {
    let mut best: [Option<Cut>; 5] = [None; 5];
    let mut fi = fences.partition_point(|f| f.end < pos);
    let mut used = 0usize;
    let mut prev: Option<char> = None;
    let mut first_len = 0;
    for (off, ch) in text[pos..].char_indices() {
        let b = pos + off;
        if b == pos {
            first_len = ch.len_utf8();
        } else {
            while fi < fences.len() && fences[fi].end < b {
                fi += 1;
            }
            let f = fences.get(fi);
            let inside = f.filter(|f| f.start < b && b < f.end);
            match inside {
                None => {
                    let out = |e: usize| {
                        Some(Cut {
                            end: e,
                            next: e,
                            inside: None,
                        })
                    };
                    let edge = f.is_some_and(|f| b == f.start || b == f.end);
                    if edge || (ch == '\n' && blank_line_follows(text, b)) {
                        best[PARA] = out(b);
                    }
                    if ch == '\n' {
                        best[LINE] = out(b);
                    }
                    if ends_sentence(prev, ch) {
                        best[SENTENCE] = out(b);
                    }
                    if ch.is_whitespace() {
                        best[WORD] = out(b);
                    }
                    best[HARD] = out(b);
                }
                Some(f) => {
                    let i = fi;
                    let may_cut = (splittable[i] || cont == Some(i))
                        && f.content_start < b
                        && b < f.content_end
                        && used + 1 + f.ticks <= budget;
                    if may_cut {
                        let at = |e: usize, n: usize| {
                            Some(Cut {
                                end: e,
                                next: n,
                                inside: Some(i),
                            })
                        };
                        if ch == '\n' {
                            best[LINE] = at(b, b + 1);
                        } else if ch.is_whitespace() {
                            best[WORD] = at(b, b);
                        }
                        best[HARD] = at(b, b);
                    }
                }
            }
        }
        let w = m.of_char(ch);
        if used + w > budget {
            let fallback = Cut {
                end: pos + first_len,
                next: pos + first_len,
                inside: None,
            };
            return Some(best.iter().flatten().next().copied().unwrap_or(fallback));
        }
        used += w;
        prev = Some(ch);
    }
    None
}

/// Cutting before `ch` ends a sentence: `.`/`!`/`?` then whitespace, or after a CJK stop.
fn ends_sentence(prev: Option<char>, ch: char) -> bool {
    match prev {
        Some('.') | Some('!') | Some('?') => ch.is_whitespace(),
        Some('。') | Some('！') | Some('？') => true,
        _ => false,
    }
}

/// `text[at]` is a newline and the next line is blank (a paragraph break).
fn blank_line_follows(text: &str, at: usize) -> bool {
    let rest = text[at + 1..].trim_start_matches([' ', '\t', '\r']);
    rest.is_empty() || rest.starts_with('\n')
}

fn skip_ws(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    from + (rest.len() - rest.trim_start().len())
}

#[cfg(test)]
mod tests;
