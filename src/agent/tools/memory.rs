//! The `memory` tool: MEMORY.md and its sections, daily notes and their
//! search (`agent::memory_search`).

use super::{Output, Registry};

const MAX_MEMORY: usize = 16 * 1024;

impl Registry {
    pub(super) fn memory(
        &self,
        action: Option<&str>,
        section: Option<&str>,
        text: Option<&str>,
    ) -> Result<Output, String> {
        use crate::agent::memory_search as notes;
        match action {
            Some("note") => {
                let rel = notes::note(&self.workspace, text.unwrap_or(""), crate::util::now_ms())?;
                return Ok(Output::ok(
                    format!("noted in {rel}"),
                    format!("note in {rel}"),
                ));
            }
            Some("search") => {
                let hits = notes::search(&self.workspace, text.unwrap_or(""), notes::MAX_RESULTS);
                let summary = format!("memory search: {} hits", hits.len());
                return Ok(Output::ok(notes::format_hits(&hits), summary));
            }
            _ => {}
        }
        let path = self.workspace.join("MEMORY.md");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let new = match action {
            Some("read") => return Ok(Output::ok(current, "read memory".into())),
            Some("append") => {
                let t = text.ok_or("missing \"text\"")?.trim();
                let mut c = current.clone();
                if !c.ends_with('\n') && !c.is_empty() {
                    c.push('\n');
                }
                c.push_str(&format!("- {t}\n"));
                c
            }
            Some("replace_section") => {
                let heading = section
                    .ok_or("missing \"section\"")?
                    .trim()
                    .trim_start_matches('#')
                    .trim();
                replace_section(&current, heading, text.ok_or("missing \"text\"")?.trim())
            }
            _ => return Err("action must be read, append, replace_section, note or search".into()),
        };
        if new.len() > MAX_MEMORY {
            return Err(format!("MEMORY.md would be {} bytes, over the {MAX_MEMORY}-byte cap; condense it with replace_section first", new.len()));
        }
        std::fs::write(&path, &new).map_err(|e| e.to_string())?;
        Ok(Output::ok(
            "memory updated".into(),
            format!("memory {} ({} bytes)", action.unwrap_or(""), new.len()),
        ))
    }
}

/// Replaces the body under `## heading` (or adds the section).
fn replace_section(doc: &str, heading: &str, body: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut found = false;
    for line in doc.lines() {
        let t = line.trim_start();
        if t.starts_with('#') {
            let title = t.trim_start_matches('#').trim();
            if skipping {
                skipping = false;
            }
            if title.eq_ignore_ascii_case(heading) && !found {
                found = true;
                skipping = true;
                out.push_str(&format!("## {heading}\n{body}\n\n"));
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        if !out.ends_with("\n\n") && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("## {heading}\n{body}\n"));
    }
    out
}
