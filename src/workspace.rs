//! The agent's workspace: AGENTS.md (persona and capabilities), SOUL.md
//! (values and tone), USER.md (facts about the user), MEMORY.md (long-term
//! memory the agent curates) and HEARTBEAT.md (the heartbeat checklist).
//! Created with starter content on first run; the user may edit any of them.
//! Each file enters the system prompt up to a size cap, and a truncation is
//! announced in the prompt rather than silent.

use std::path::Path;

/// USER.md as created: a placeholder for the owner to replace.
const USER_STARTER: &str = "# User\n(Facts the user wants the assistant to know. Edit freely.)\n";

pub const FILES: [(&str, &str); 5] = [
    ("AGENTS.md", "# Agent\nYou are pinch, a personal assistant running on the user's own small computer.\nBe brief and concrete. Use tools when they help; say what you did.\n"),
    ("SOUL.md", "# Soul\nHonest, calm, helpful. Admit uncertainty. Never invent facts about the user.\n"),
    ("USER.md", USER_STARTER),
    ("MEMORY.md", "# Memory\n"),
    ("HEARTBEAT.md", "<!-- Heartbeat checklist: one item per line. Empty means no heartbeat runs. -->\n"),
];

/// Creates the workspace and any missing starter file (existing files are
/// never overwritten).
pub fn ensure(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create workspace {}: {e}", dir.display()))?;
    for (name, body) in FILES {
        let p = dir.join(name);
        if !p.exists() {
            std::fs::write(&p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Reads a workspace file for the prompt, capped at `max` bytes with an
/// explicit note when cut. Missing or empty files give `None`, and so do a
/// MEMORY.md of headings only and a USER.md still holding its starter
/// placeholder: they tell the model nothing.
pub fn read_capped(dir: &Path, name: &str, max: usize) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    let trimmed = text.trim();
    let untouched_user = name == "USER.md" && trimmed == USER_STARTER.trim();
    if trimmed.is_empty()
        || untouched_user
        || trimmed
            .lines()
            .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
            && name == "MEMORY.md"
    {
        return None;
    }
    if trimmed.len() <= max {
        return Some(trimmed.to_string());
    }
    let cut = crate::util::truncate(trimmed, max);
    Some(format!(
        "{cut}\n[{name} truncated: {} of {} bytes shown; keep it short]",
        cut.len(),
        trimmed.len()
    ))
}
