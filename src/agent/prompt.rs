//! The system prompt and the envelope of the newest user turn.
//!
//! The system prompt holds only what is stable for a session: workspace
//! files (each capped, truncation announced) and the index of eligible
//! skills (name and description only). It carries no clock, channel or
//! sender detail, so with the tool schemas and the earlier turns it forms a
//! prefix that is byte-identical from one request to the next and a
//! provider's prompt cache (llama.cpp's KV cache, Anthropic's prompt cache)
//! serves it instead of evaluating it again. What changes per request (the
//! current time, the channel and the sender) is put in front of the newest
//! user text instead, OpenClaw-style: `[Tue 2026-11-24 00:44 UTC] hello`;
//! that text is what the transcript stores, so later requests replay it
//! unchanged.
//!
//! Group chats get a prompt without USER.md and MEMORY.md: those hold the
//! owner's private facts and stay out of conversations with other people.
//!
//! The compact prompt (`agents.defaults.compactPrompt`, automatic for a
//! primary model with `contextWindow` <= `SMALL_WINDOW`) keeps the first
//! request of a conversation near 1,000 tokens: tighter caps on workspace
//! files, skill descriptions cut to their first clause, and skill scripts
//! reached through the `skill` tool rather than one schema each
//! (`tools::Registry::specs_for`).

use super::Ctx;

/// A conservative characters-per-token ratio for budgeting.
pub const CHARS_PER_TOKEN: usize = 3;
/// Context windows up to this many tokens get the compact prompt.
pub const SMALL_WINDOW: u32 = 8192;
/// Per-file cap on workspace files in the compact prompt, in bytes.
const SMALL_FILE_CHARS: usize = 600;
/// Skill descriptions in the compact prompt, at most this many bytes.
const SMALL_SKILL_CHARS: usize = 96;

/// Who a run talks to, as far as the prompt is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunContext {
    /// A chat shared with other people: private workspace files stay out.
    pub group: bool,
    /// Channel and sender, e.g. `telegram group "Family" · from Ann (@ann)`;
    /// empty for the gateway's own clients and scheduled runs.
    pub origin: String,
    /// A `/compact` request: compact the session, no model answer.
    pub compact_only: bool,
}

/// Workspace files of the system prompt, in order; the last two are the
/// owner's private files.
const FILES: [&str; 5] = [
    "AGENTS.md",
    "SOUL.md",
    "IDENTITY.md",
    "USER.md",
    "MEMORY.md",
];
const PRIVATE: [&str; 2] = ["USER.md", "MEMORY.md"];

/// The system prompt for a session: the same bytes for every request of
/// the session as long as the workspace files and skills do not change.
pub fn system_prompt(ctx: &Ctx, group: bool) -> String {
    let small = compact(ctx);
    let mut max = ctx.cfg.agents.defaults.bootstrap_max_chars;
    if small {
        max = max.min(SMALL_FILE_CHARS);
    }
    let mut out = String::new();
    for name in FILES {
        if group && PRIVATE.contains(&name) {
            continue;
        }
        if let Some(text) = crate::workspace::read_capped(&ctx.workspace, name, max) {
            out.push_str(text.trim_end());
            out.push_str("\n\n");
        }
    }
    let skills: Vec<_> = ctx.tools.skills().iter().filter(|s| s.eligible).collect();
    if !skills.is_empty() {
        out.push_str("Skills (load one with the `skill` tool):\n");
        for s in skills.iter().take(24) {
            let description = if small {
                first_clause(&s.description, SMALL_SKILL_CHARS)
            } else {
                crate::util::truncate(&s.description, 160).trim_end()
            };
            out.push_str(&format!("- {}: {description}\n", s.name));
        }
        out.push('\n');
    }
    out.push_str("User messages start with [UTC time · channel and sender, if known].\n");
    if group {
        out.push_str("This is a group chat: keep the owner's private facts private.\n");
    } else {
        out.push_str("Keep durable facts about the user in memory with the `memory` tool.\n");
    }
    out
}

/// Whether the session's requests use the compact prompt and tool set:
/// `agents.defaults.compactPrompt` when set, else a primary model with a
/// window of at most `SMALL_WINDOW` tokens.
pub fn compact(ctx: &Ctx) -> bool {
    compact_for(ctx.cfg.agents.defaults.compact_prompt, primary_window(ctx))
}

/// `compact` for a setting and a window (pure).
pub fn compact_for(setting: Option<bool>, window: u32) -> bool {
    setting.unwrap_or(window <= SMALL_WINDOW)
}

/// The tool schemas of the session's requests.
pub fn tools(ctx: &Ctx) -> &[crate::llm::ToolSpec] {
    ctx.tools.specs_for(compact(ctx))
}

/// A description cut to its first sentence or clause, at most `max` bytes,
/// ending on a word boundary (pure).
pub fn first_clause(text: &str, max: usize) -> &str {
    let text = text.trim();
    let mut end = text.len();
    for stop in [". ", "; ", " ("] {
        if let Some(i) = text.find(stop) {
            end = end.min(i);
        }
    }
    let cut = text.get(..end).unwrap_or(text).trim_end_matches('.');
    if cut.len() <= max {
        return cut;
    }
    let short = crate::util::truncate(cut, max);
    match short.rfind(' ') {
        Some(i) if i > 0 => short.get(..i).unwrap_or(short),
        _ => short,
    }
}

/// The primary model's context window (4096 when none is configured).
fn primary_window(ctx: &Ctx) -> u32 {
    ctx.cfg
        .agents
        .defaults
        .model
        .primary
        .as_deref()
        .and_then(|r| crate::config::find_model(&ctx.cfg, r))
        .map(|(_, _, m)| m.context_window)
        .unwrap_or(4096)
}

/// The newest user turn as sent and stored: `[Tue 2026-11-24 00:44 UTC]`
/// (plus the origin when known) in front of the text. Pure.
pub fn envelope(now_ms: u64, run: &RunContext, text: &str) -> String {
    let stamp = minute_stamp(now_ms);
    if run.origin.is_empty() {
        format!("[{stamp}] {text}")
    } else {
        format!("[{stamp} · {}] {text}", run.origin)
    }
}

/// The user's own words of a stored user turn: `text` without the
/// envelope `envelope` put in front (for showing history to people).
pub fn strip_envelope(text: &str) -> &str {
    let Some(rest) = text.strip_prefix('[') else {
        return text;
    };
    // "Tue 2026-11-24 00:44 UTC" is 24 ASCII bytes.
    let stamp_ok = rest.get(..24).is_some_and(|s| s.ends_with(" UTC"));
    match rest.find("] ") {
        Some(end) if stamp_ok => rest.get(end + 2..).unwrap_or(""),
        _ => text,
    }
}

/// A stored turn as history shows it to people.
pub struct ShownTurn {
    /// "summary", "user" or "assistant".
    pub role: &'static str,
    /// Its text parts joined; a user turn's without the envelope.
    pub text: String,
}

/// How `chat.history` and `pinch sessions show` present a stored turn.
pub fn shown_turn(turn: &crate::store::Turn) -> ShownTurn {
    let role = match (&turn.kind, &turn.message.role) {
        (crate::store::TurnKind::Summary, _) => "summary",
        (_, crate::llm::Role::User) => "user",
        (_, crate::llm::Role::Assistant) => "assistant",
    };
    let text = turn.message.joined_text();
    let text = match role {
        "user" => strip_envelope(&text).to_string(),
        _ => text,
    };
    ShownTurn { role, text }
}

/// `Tue 2026-11-24 00:44 UTC` for unix milliseconds.
pub fn minute_stamp(now_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let t = crate::util::utc_datetime(now_ms);
    let day = DAYS
        .get(usize::from(
            t.weekday().to_monday_zero_offset().unsigned_abs(),
        ))
        .unwrap_or(&"");
    format!(
        "{day} {:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The clock of the user-turn envelope. Debug builds (the test suite and
/// the benchmarks) honour `PINCH_TEST_CLOCK_FILE`: a file holding a number
/// of milliseconds added to the wall clock, read on every call, so a test
/// can move time across a minute boundary without waiting. Release builds
/// ignore it.
pub fn clock_ms() -> u64 {
    let now = crate::util::now_ms();
    if cfg!(debug_assertions) {
        if let Some(path) = std::env::var_os("PINCH_TEST_CLOCK_FILE") {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(offset) = text.trim().parse::<i64>() {
                    return if offset >= 0 {
                        now.saturating_add(offset as u64)
                    } else {
                        now.saturating_sub(offset.unsigned_abs())
                    };
                }
            }
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_puts_the_minute_and_origin_in_front() {
        // 2026-11-24T00:44:30Z is a Tuesday.
        let ms = 1_795_481_070_000;
        assert_eq!(minute_stamp(ms), "Tue 2026-11-24 00:44 UTC");
        let plain = envelope(ms, &RunContext::default(), "hello");
        assert_eq!(plain, "[Tue 2026-11-24 00:44 UTC] hello");
        let group = RunContext {
            group: true,
            origin: "telegram group · from Ann".into(),
            ..RunContext::default()
        };
        assert_eq!(
            envelope(ms, &group, "hi"),
            "[Tue 2026-11-24 00:44 UTC · telegram group · from Ann] hi"
        );
        assert_eq!(minute_stamp(0), "Thu 1970-01-01 00:00 UTC");
        let week: Vec<String> = (0..7)
            .map(|d| minute_stamp(951_782_400_000 + d * 86_400_000 - 60_000))
            .collect();
        assert_eq!(
            week.join(", "),
            "Mon 2000-02-28 23:59 UTC, Tue 2000-02-29 23:59 UTC, Wed 2000-03-01 23:59 UTC, \
             Thu 2000-03-02 23:59 UTC, Fri 2000-03-03 23:59 UTC, Sat 2000-03-04 23:59 UTC, \
             Sun 2000-03-05 23:59 UTC"
        );
        assert_eq!(strip_envelope(&plain), "hello");
        assert_eq!(strip_envelope(&envelope(ms, &group, "[x] y")), "[x] y");
        assert_eq!(strip_envelope("[not a stamp] hi"), "[not a stamp] hi");
        assert_eq!(strip_envelope("[é"), "[é");
    }

    #[test]
    fn compact_by_setting_or_window() {
        assert!(compact_for(None, 4096));
        assert!(compact_for(None, SMALL_WINDOW));
        assert!(!compact_for(None, SMALL_WINDOW + 1));
        assert!(compact_for(Some(true), 200_000));
        assert!(!compact_for(Some(false), 2048));
    }

    #[test]
    fn first_clause_keeps_whole_words() {
        assert_eq!(
            first_clause("Compose a short digest of today's top stories from the user's feeds, Hacker News and web search; also for a push.", 80),
            "Compose a short digest of today's top stories from the user's feeds, Hacker"
        );
        assert_eq!(
            first_clause("Compose a short digest of today's top stories from the user's feeds, Hacker News and web search; also for a push.", 96),
            "Compose a short digest of today's top stories from the user's feeds, Hacker News and web search"
        );
        assert_eq!(first_clause("Check things. Then more.", 64), "Check things");
        assert_eq!(first_clause("Write notes (markdown)", 64), "Write notes");
        assert_eq!(first_clause("é".repeat(40).as_str(), 7), "ééé");
        assert_eq!(first_clause("", 10), "");
    }
}
