//! The system prompt: workspace files (each capped, truncation announced),
//! the index of eligible skills (name and description only) and the date.
//! Kept small on purpose: with the default caps the prompt plus the tool
//! schemas stay under about 2,000 tokens, leaving a 4k-context local model
//! room for the conversation.

use super::Ctx;

/// Tokens set aside for the system prompt and tool schemas when budgeting
/// the transcript.
pub const RESERVE_TOKENS: u32 = 2000;
/// A conservative characters-per-token ratio for budgeting.
pub const CHARS_PER_TOKEN: usize = 3;

pub fn system_prompt(ctx: &Ctx) -> String {
    let max = ctx.cfg.agents.defaults.bootstrap_max_chars;
    let mut out = String::new();
    for name in [
        "AGENTS.md",
        "SOUL.md",
        "IDENTITY.md",
        "USER.md",
        "MEMORY.md",
    ] {
        if let Some(text) = crate::workspace::read_capped(&ctx.workspace, name, max) {
            out.push_str(&text);
            out.push_str("\n\n");
        }
    }
    let skills: Vec<_> = ctx.tools.skills().iter().filter(|s| s.eligible).collect();
    if !skills.is_empty() {
        out.push_str("Skills (load one with the `skill` tool before following it):\n");
        for s in skills.iter().take(24) {
            out.push_str(&format!(
                "- {}: {}\n",
                s.name,
                crate::util::truncate(&s.description, 160)
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Current time (UTC): {}\n",
        &crate::util::rfc3339(crate::util::now_ms())[..16]
    ));
    out.push_str("Keep durable facts about the user in memory with the `memory` tool.\n");
    out
}
