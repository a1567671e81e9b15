//! The `skill` tool and the skill scripts' own tools: loads a skill's
//! SKILL.md, runs scripts that live inside an eligible skill's folder.

use super::{Output, Registry};
use crate::agent::skills::{self, Skill};
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Registry {
    /// The eligible skill the call names (its `name` argument).
    fn eligible_skill(&self, name: Option<&str>) -> Result<&Skill, String> {
        let name = name.ok_or("missing \"name\"")?;
        self.skills
            .iter()
            .find(|s| s.name == name && s.eligible)
            .ok_or_else(|| format!("no eligible skill {name:?}"))
    }

    pub(super) fn load_skill(&self, name: Option<&str>) -> Result<Output, String> {
        let s = self.eligible_skill(name)?;
        let body = skills::read_skill_md(&s.dir.join("SKILL.md"))?;
        // OpenClaw skills write `{baseDir}` for their own folder.
        let body = body.replace("{baseDir}", &s.dir.display().to_string());
        let mut tools = String::new();
        for t in &s.tools {
            tools.push_str(&format!("\n- {}: {}", t.name, t.description));
        }
        if !tools.is_empty() {
            tools = format!("\nIts tools (run = the name):{tools}");
        }
        Ok(Output::ok(
            format!("{body}\n\n(skill folder: {}; run its tools or scripts with the skill tool: name, run = a tool name or the script's path in the folder, args){tools}", s.dir.display()),
            format!("loaded skill {}", s.name),
        ))
    }

    /// Runs a script that lives inside an eligible skill's folder (never a
    /// path that resolves outside it), with the skill folder as cwd.
    pub(super) fn run_skill_script(
        &self,
        name: Option<&str>,
        script: &str,
        argv: Vec<String>,
        deadline: Instant,
    ) -> Result<Output, String> {
        let s = self.eligible_skill(name)?;
        // `run` may name one of the skill's declared tools.
        let script = match s.tools.iter().find(|t| t.name == script) {
            Some(tool) => tool.script.as_str(),
            None => script.strip_prefix("{baseDir}/").unwrap_or(script),
        };
        let dir = std::fs::canonicalize(&s.dir).map_err(|e| format!("{}: {e}", s.dir.display()))?;
        let candidate = if Path::new(script).is_absolute() {
            PathBuf::from(script)
        } else {
            dir.join(script)
        };
        let path = std::fs::canonicalize(&candidate)
            .map_err(|e| format!("{script}: {e} (paths are relative to the skill folder)"))?;
        if !path.starts_with(&dir) || !path.is_file() {
            return Err(format!(
                "{script}: not a file inside the skill folder {}",
                dir.display()
            ));
        }
        self.run_program(&path, argv, &dir, &skills::env_for(s), deadline)
    }

    pub(super) fn skill_tool(&self, name: &str) -> Option<(&Skill, PathBuf)> {
        for s in self.skills.iter().filter(|s| s.eligible) {
            for t in &s.tools {
                if t.name == name {
                    return Some((s, s.dir.join(&t.script)));
                }
            }
        }
        None
    }
}
