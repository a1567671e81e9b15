//! Memory beyond MEMORY.md: daily notes `memory/YYYY-MM-DD.md` the agent
//! appends to (`memory` tool, action `note`), keyword search over MEMORY.md
//! and the notes (action `search`: BM25 in plain Rust, no embedding model),
//! and the prompt of the weekly consolidation run that condenses recent
//! notes into MEMORY.md under its size cap.
//!
//! Everything is bounded: the newest `MAX_FILES` notes are searched, each
//! read up to `MAX_FILE_BYTES`, split into at most `MAX_CHUNKS` passages;
//! at most `MAX_RESULTS` snippets of `SNIPPET_CHARS` come back, each with
//! its file and date.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Notes searched, newest first.
const MAX_FILES: usize = 400;
/// Bytes read from each file.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Passages scored in one search.
const MAX_CHUNKS: usize = 20_000;
/// Snippets returned.
pub const MAX_RESULTS: usize = 5;
const SNIPPET_CHARS: usize = 240;
/// Largest daily note file; notes beyond it are refused.
const MAX_NOTE_FILE: usize = 64 * 1024;
/// Longest single note.
const MAX_NOTE: usize = 2000;
/// Bytes of recent notes placed in the consolidation prompt.
const CONSOLIDATION_NOTES: usize = 6 * 1024;

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// `MEMORY.md` or `memory/2026-12-01.md`.
    pub file: String,
    /// The note's date, from its file name.
    pub date: Option<String>,
    pub snippet: String,
    pub score: f64,
}

/// `2026-12-01` for a time in ms, in the gateway's time zone.
pub fn local_date(now_ms: u64) -> (String, String) {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(now_ms).unwrap_or(0))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned(jiff::tz::TimeZone::system());
    // Plain formatting: jiff's strftime machinery is not otherwise in the binary.
    (
        format!("{:04}-{:02}-{:02}", z.year(), z.month(), z.day()),
        format!("{:02}:{:02}", z.hour(), z.minute()),
    )
}

/// Appends `- HH:MM text` to today's note file; returns its relative path.
pub fn note(workspace: &Path, text: &str, now_ms: u64) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("missing \"text\"".into());
    }
    if text.len() > MAX_NOTE {
        return Err(format!("a note is at most {MAX_NOTE} bytes; split it"));
    }
    let (date, time) = local_date(now_ms);
    let dir = workspace.join("memory");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let rel = format!("memory/{date}.md");
    let path = dir.join(format!("{date}.md"));
    let mut current = read_capped(&path);
    if current.len() + text.len() > MAX_NOTE_FILE {
        return Err(format!(
            "{rel} is full ({MAX_NOTE_FILE} bytes); put what lasts into MEMORY.md"
        ));
    }
    if current.is_empty() {
        current = format!("# {date}\n");
    } else if !current.ends_with('\n') {
        current.push('\n');
    }
    // One line per note: line breaks inside it become spaces.
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    current.push_str(&format!("- {time} {flat}\n"));
    std::fs::write(&path, current).map_err(|e| e.to_string())?;
    Ok(rel)
}

fn read_capped(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_FILE_BYTES).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The date of a note file name (`2026-12-01.md` or `2026-12-01-trip.md`).
fn note_date(name: &str) -> Option<String> {
    let d = name.get(..10)?;
    let ok = d.chars().enumerate().all(|(i, c)| {
        if i == 4 || i == 7 {
            c == '-'
        } else {
            c.is_ascii_digit()
        }
    });
    (ok && name.ends_with(".md")).then(|| d.to_string())
}

/// Note files, newest first (by the date in the name), at most `MAX_FILES`.
fn note_files(workspace: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(workspace.join("memory"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    note_date(&name).map(|_| (name, e.path()))
                })
                .take(10_000)
                .collect()
        })
        .unwrap_or_default();
    files.sort_by(|a, b| b.0.cmp(&a.0));
    files.truncate(MAX_FILES);
    files
}

/// Lower-case words of letters and digits (any script).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 64)
        .map(str::to_lowercase)
}

/// A passage: one line of a note file, or one paragraph of MEMORY.md.
struct Chunk {
    file: usize,
    text: String,
    terms: HashMap<String, u32>,
    len: u32,
}

fn chunks_of(text: &str, file: usize, out: &mut Vec<Chunk>) {
    let mut para = String::new();
    let flush = |para: &mut String, out: &mut Vec<Chunk>| {
        let t = para.trim();
        if !t.is_empty() && !t.starts_with('#') && out.len() < MAX_CHUNKS {
            let mut terms = HashMap::new();
            let mut len = 0u32;
            for w in words(t) {
                *terms.entry(w).or_insert(0) += 1;
                len = len.saturating_add(1);
            }
            if len > 0 {
                out.push(Chunk {
                    file,
                    text: t.to_string(),
                    terms,
                    len,
                });
            }
        }
        para.clear();
    };
    for line in text.lines() {
        // List items and headings start passages of their own.
        let item = line.trim_start().starts_with(['-', '*', '#']);
        if line.trim().is_empty() || item {
            flush(&mut para, out);
        }
        para.push_str(line);
        para.push('\n');
    }
    flush(&mut para, out);
}

/// BM25 (k1 = 1.2, b = 0.75) over MEMORY.md and the notes.
pub fn search(workspace: &Path, query: &str, max_results: usize) -> Vec<Hit> {
    let q: Vec<String> = {
        let mut q: Vec<String> = words(query).collect();
        q.sort();
        q.dedup();
        q.truncate(32);
        q
    };
    if q.is_empty() {
        return Vec::new();
    }
    let mut files: Vec<(String, Option<String>)> = vec![("MEMORY.md".into(), None)];
    let mut chunks = Vec::new();
    chunks_of(&read_capped(&workspace.join("MEMORY.md")), 0, &mut chunks);
    for (name, path) in note_files(workspace) {
        files.push((format!("memory/{name}"), note_date(&name)));
        chunks_of(&read_capped(&path), files.len() - 1, &mut chunks);
    }
    let n = chunks.len() as f64;
    if chunks.is_empty() {
        return Vec::new();
    }
    let avg = chunks.iter().map(|c| f64::from(c.len)).sum::<f64>() / n;
    let idf: Vec<f64> = q
        .iter()
        .map(|t| {
            let df = chunks.iter().filter(|c| c.terms.contains_key(t)).count() as f64;
            ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
        })
        .collect();
    let (k1, b) = (1.2, 0.75);
    let mut scored: Vec<(f64, usize)> = chunks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let norm = k1 * (1.0 - b + b * f64::from(c.len) / avg.max(1.0));
            let s: f64 = q
                .iter()
                .zip(&idf)
                .map(|(t, idf)| {
                    let tf = f64::from(c.terms.get(t).copied().unwrap_or(0));
                    idf * tf * (k1 + 1.0) / (tf + norm)
                })
                .sum();
            (s > 0.0).then_some((s, i))
        })
        .collect();
    // Best first; among equals, the newer note (files are newest first).
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    scored
        .into_iter()
        .take(max_results.clamp(1, MAX_RESULTS))
        .filter_map(|(score, i)| {
            let c = chunks.get(i)?;
            let (file, date) = files.get(c.file)?.clone();
            Some(Hit {
                file,
                date,
                snippet: snippet(&c.text),
                score,
            })
        })
        .collect()
}

fn snippet(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SNIPPET_CHARS {
        return flat;
    }
    let mut s = crate::util::truncate_chars(&flat, SNIPPET_CHARS);
    s.push('…');
    s
}

/// The search result as the tool returns it: one hit per line.
pub fn format_hits(hits: &[Hit]) -> String {
    if hits.is_empty() {
        return "no matches in MEMORY.md or memory/".into();
    }
    hits.iter()
        .map(|h| match &h.date {
            Some(d) => format!("{} ({d}): {}", h.file, h.snippet),
            None => format!("{}: {}", h.file, h.snippet),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The consolidation run's prompt: the notes of the last `days` days
/// (newest first, bounded) and the instruction to condense them into
/// MEMORY.md within `cap` bytes. `None` when there are no such notes.
pub fn consolidation_prompt(
    workspace: &Path,
    now_ms: u64,
    days: u64,
    cap: usize,
) -> Option<String> {
    let oldest = local_date(now_ms.saturating_sub(days.saturating_mul(86_400_000))).0;
    let mut notes = String::new();
    for (name, path) in note_files(workspace) {
        if note_date(&name).is_some_and(|d| d < oldest) {
            break;
        }
        let text = read_capped(&path);
        let room = CONSOLIDATION_NOTES.saturating_sub(notes.len());
        if room < 64 {
            break;
        }
        notes.push_str(crate::util::truncate(&text, room));
        notes.push('\n');
    }
    if notes.trim().is_empty() {
        return None;
    }
    let size = std::fs::metadata(workspace.join("MEMORY.md"))
        .map(|m| m.len())
        .unwrap_or(0);
    Some(format!(
        "Memory upkeep. Below are the daily notes of the last {days} days. Keep what will matter later (facts about the user, decisions, commitments) in MEMORY.md with the memory tool: condense, merge with what is there, drop what is stale. MEMORY.md is {size} bytes and must stay under {cap}. Then reply with exactly {}.\n\n{}",
        crate::sched::NOTHING_TO_REPORT,
        notes.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pinch-memsearch-{}-{}",
            std::process::id(),
            crate::util::random_u64()
        ));
        std::fs::create_dir_all(dir.join("memory")).unwrap();
        std::fs::write(
            dir.join("MEMORY.md"),
            "# Memory\n\n## People\n- Ann is the user's sister; she lives in Lyon.\n- The dentist is Dr. Weber.\n",
        )
        .unwrap();
        let notes = [
            ("2026-11-28.md", "# 2026-11-28\n- 09:10 Booked the train to Lyon for Christmas.\n- 18:00 Backup of the NAS failed: disk full.\n"),
            ("2026-11-30.md", "# 2026-11-30\n- 08:00 Cleaned the NAS, backup ran fine again.\n- 12:30 Lunch idea: ramen place on Main Street.\n"),
            ("2026-12-01.md", "# 2026-12-01\n- 07:45 The user wants a morning digest about the weather.\n"),
            ("notes.txt", "NAS NAS NAS: not a note file"),
            ("2026-13-xx.md", "NAS bad name"),
        ];
        for (name, text) in notes {
            std::fs::write(dir.join("memory").join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn search_ranks_passages_and_names_file_and_date() {
        let ws = fixture();
        let hits = search(&ws, "NAS backup", 5);
        assert_eq!(hits.len(), 2, "{hits:#?}");
        assert!(hits.iter().all(|h| h.snippet.contains("NAS")));
        assert!(hits.iter().all(|h| h.file.starts_with("memory/2026-")));
        assert_eq!(
            hits[0].date.as_deref(),
            Some(hits[0].file.get(7..17).unwrap())
        );
        let lyon = search(&ws, "where does Ann live? lyon", 5);
        assert_eq!(lyon[0].file, "MEMORY.md");
        assert_eq!(lyon[0].date, None);
        assert!(lyon[0].snippet.contains("sister"));
        assert!(lyon.iter().any(|h| h.snippet.contains("train")));
        assert!(search(&ws, "", 5).is_empty());
        assert!(search(&ws, "?!", 5).is_empty());
        assert!(search(&ws, "zebra", 5).is_empty());
        assert_eq!(search(&ws, "the", 50).len(), MAX_RESULTS.min(5));
        let text = format_hits(&search(&ws, "ramen", 5));
        assert_eq!(
            text,
            "memory/2026-11-30.md (2026-11-30): - 12:30 Lunch idea: ramen place on Main Street."
        );
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn notes_append_to_todays_file_and_are_found() {
        let ws = fixture();
        let now = 1_796_000_000_000; // 2026-11-29 UTC
        let rel = note(&ws, "Parcel\nexpected Thursday", now).unwrap();
        let (date, _) = local_date(now);
        assert_eq!(rel, format!("memory/{date}.md"));
        let text = std::fs::read_to_string(ws.join(&rel)).unwrap();
        assert!(text.starts_with(&format!("# {date}\n- ")), "{text}");
        assert!(text.contains("Parcel expected Thursday\n"));
        assert!(note(&ws, "  ", now).is_err());
        assert!(note(&ws, &"x".repeat(MAX_NOTE + 1), now).is_err());
        let hits = search(&ws, "parcel", 5);
        assert_eq!(hits[0].file, rel);
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn consolidation_takes_recent_notes_only() {
        let ws = fixture();
        let dec2 = 1_796_212_800_000; // 2026-12-02 12:00 UTC
        let p = consolidation_prompt(&ws, dec2, 3, 16_384).expect("notes");
        assert!(p.contains("morning digest") && p.contains("ramen"), "{p}");
        assert!(!p.contains("train to Lyon"), "older than 3 days");
        assert!(p.contains("under 16384") && p.ends_with("Main Street."));
        assert!(consolidation_prompt(&ws, dec2 + 30 * 86_400_000, 3, 16_384).is_none());
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn note_dates_are_checked() {
        assert_eq!(note_date("2026-12-01.md").as_deref(), Some("2026-12-01"));
        assert_eq!(
            note_date("2026-12-01-trip.md").as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(note_date("2026-1x-01.md"), None);
        assert_eq!(note_date("2026-12-01.txt"), None);
        assert_eq!(note_date("é"), None);
    }
}
