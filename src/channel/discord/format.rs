//! Replies as Discord shows them: Discord renders Markdown itself but has no
//! tables, so table blocks go out as code blocks (columns stay aligned);
//! then each message is cut to 2,000 characters and to `maxLinesPerMessage`
//! lines (default 17; taller messages are collapsed by clients), never
//! leaving a code fence open: a fence cut by the line limit is closed and
//! reopened in the next message.

use crate::channel::split::{split_with, Measure};

/// Fewest lines a message may be cut to (a reopened fence, one line, the close).
const MIN_LINES: usize = 3;

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

fn is_table_row(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 2 && t.starts_with('|')
}

/// A Markdown table separator row: `|---|:--:|`.
fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.contains('-') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Markdown with every table (a header row, a separator row, rows) inside a
/// code block; everything else unchanged.
pub fn tables_to_code(md: &str) -> String {
    let lines: Vec<&str> = md.split('\n').collect();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len() + 4);
    let mut in_fence = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_fence(line) {
            in_fence = !in_fence;
        }
        let table_starts = !in_fence
            && is_table_row(line)
            && lines.get(i + 1).is_some_and(|next| is_separator(next));
        if !table_starts {
            out.push(line);
            i += 1;
            continue;
        }
        out.push("```");
        while i < lines.len() && is_table_row(lines[i]) {
            out.push(lines[i]);
            i += 1;
        }
        out.push("```");
    }
    out.join("\n")
}

/// Cuts one message to at most `max_lines` lines, closing and reopening a
/// code fence cut in the middle.
fn split_lines(text: &str, max_lines: usize) -> Vec<String> {
    let max_lines = max_lines.max(MIN_LINES);
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    // The opening line of the fence we are in, if any.
    let mut fence: Option<String> = None;
    for line in text.split('\n') {
        // Room for a closing fence if we are inside one.
        let room = if fence.is_some() {
            max_lines - 1
        } else {
            max_lines
        };
        if current.len() >= room {
            if fence.is_some() {
                current.push("```".to_string());
            }
            out.push(current.join("\n"));
            current = Vec::new();
            if let Some(open) = &fence {
                current.push(open.clone());
            }
        }
        if is_fence(line) {
            fence = match fence {
                Some(_) => None,
                None => Some(line.trim_start().to_string()),
            };
        }
        current.push(line.to_string());
    }
    let last = current.join("\n");
    if !last.trim().is_empty() || out.is_empty() {
        out.push(last);
    }
    out
}

/// One reply chunk from the queue → the Discord messages that carry it:
/// tables as code blocks, at most `limit` characters and `max_lines` lines
/// each, blank pieces dropped.
pub fn render(text: &str, limit: usize, max_lines: usize) -> Vec<String> {
    let converted = tables_to_code(text);
    let limit = limit.clamp(1, super::TEXT_LIMIT);
    let mut out = Vec::new();
    for chunk in split_with(&converted, limit, Measure::Chars) {
        for piece in split_lines(&chunk, max_lines) {
            // A closing fence added at a line cut can push a full piece
            // over the limit: cut that one again.
            let pieces = if piece.chars().count() > limit {
                split_with(&piece, limit, Measure::Chars)
            } else {
                vec![piece]
            };
            out.extend(pieces.into_iter().filter(|p| !p.trim().is_empty()));
        }
    }
    out
}
