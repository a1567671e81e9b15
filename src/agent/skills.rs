//! Skills: folders `skills/<name>/` holding a SKILL.md (plus optional
//! scripts and reference files), loaded from the workspace's `skills/` and
//! from the bundled skills of the install; a workspace skill wins over a
//! bundled one of the same name.
//!
//! SKILL.md opens with a frontmatter block of flat `key: value` lines:
//!
//! ```text
//! ---
//! name: news-digest
//! description: One line saying when to use it.
//! requires-bins: python3, git        (optional: programs that must be on PATH)
//! requires-env: TAVILY_API_KEY       (optional: variables that must be set)
//! tool: fetch_feeds | scripts/fetch_feeds.py | Fetch the configured feeds
//! ---
//! ```
//!
//! Only eligible skills (requirements met) are offered. The system prompt
//! carries each one's name and description only; the model loads the full
//! text with the `skill` tool when it decides to use one.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SkillTool {
    pub name: String,
    pub script: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub dir: PathBuf,
    pub eligible: bool,
    /// Why it is not eligible (for `pinch status`).
    pub missing: Vec<String>,
    pub tools: Vec<SkillTool>,
}

/// Where bundled skills live: `$PINCH_SKILLS_DIR`, else
/// `/usr/share/pinch/skills`, else `<prefix>/share/pinch/skills` for
/// `<prefix>/bin/pinch`, else `skills/` beside the binary's project.
pub fn bundled_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("PINCH_SKILLS_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/usr/share/pinch/skills"));
    if let Ok(exe) = std::env::current_exe() {
        // A prefix install (the release tarball): <prefix>/bin/pinch →
        // <prefix>/share/pinch/skills.
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            dirs.push(prefix.join("share/pinch/skills"));
        }
        // target/<profile>/pinch → repository root
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            dirs.push(root.join("skills"));
        }
    }
    dirs
}

pub fn discover(workspace: &Path) -> Vec<Skill> {
    let mut out: Vec<Skill> = Vec::new();
    let mut roots = vec![workspace.join("skills")];
    roots.extend(bundled_dirs());
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        dirs.sort();
        for dir in dirs.into_iter().take(64) {
            let Ok(text) = std::fs::read_to_string(dir.join("SKILL.md")) else {
                continue;
            };
            match parse(&text, &dir) {
                Ok(s) => {
                    if !out.iter().any(|o| o.name == s.name) {
                        out.push(s);
                    }
                }
                Err(e) => log::warn!("skill {}: {e}", dir.display()),
            }
        }
    }
    out
}

pub fn parse(text: &str, dir: &Path) -> Result<Skill, String> {
    let body = text
        .strip_prefix("---")
        .ok_or("SKILL.md must start with a --- frontmatter block")?;
    let end = body
        .find("\n---")
        .ok_or("frontmatter is not closed with ---")?;
    let mut s = Skill {
        name: String::new(),
        description: String::new(),
        dir: dir.to_path_buf(),
        eligible: true,
        missing: Vec::new(),
        tools: Vec::new(),
    };
    for line in body[..end].lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("expected `key: value`, found {line:?}"));
        };
        let v = v.trim();
        match k.trim() {
            "name" => s.name = v.to_string(),
            "description" => s.description = v.to_string(),
            "requires-bins" => {
                for b in v.split(',').map(str::trim).filter(|b| !b.is_empty()) {
                    if super::tools::resolve_program(b, dir).is_none() {
                        s.missing.push(format!("program {b}"));
                    }
                }
            }
            "requires-env" => {
                for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    if std::env::var_os(e).map(|x| x.is_empty()).unwrap_or(true) {
                        s.missing.push(format!("${e}"));
                    }
                }
            }
            "tool" => {
                let parts: Vec<&str> = v.splitn(3, '|').map(str::trim).collect();
                if parts.len() != 3 || parts[1].contains("..") || parts[1].starts_with('/') {
                    return Err(format!(
                        "tool line must be `name | relative/script | description`, found {v:?}"
                    ));
                }
                s.tools.push(SkillTool {
                    name: parts[0].to_string(),
                    script: parts[1].to_string(),
                    description: parts[2].to_string(),
                });
            }
            _ => {}
        }
    }
    if s.name.is_empty() || s.description.is_empty() {
        return Err("frontmatter needs name and description".into());
    }
    s.eligible = s.missing.is_empty();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frontmatter_tools_and_requirements() {
        let t = "---\nname: demo\ndescription: Does demo things.\nrequires-bins: sh\nrequires-env: PINCH_SURELY_UNSET_VAR\ntool: run_demo | scripts/demo.sh | Runs the demo\n---\n# Demo\nBody";
        let s = parse(t, Path::new("/tmp")).expect("parses");
        assert_eq!(s.name, "demo");
        assert_eq!(s.tools.len(), 1);
        assert_eq!(s.tools[0].script, "scripts/demo.sh");
        assert!(!s.eligible);
        assert_eq!(s.missing, vec!["$PINCH_SURELY_UNSET_VAR".to_string()]);
        assert!(parse("no frontmatter", Path::new("/tmp")).is_err());
        assert!(parse(
            "---\nname: x\ndescription: y\ntool: a | ../escape.sh | no\n---\n",
            Path::new("/tmp")
        )
        .is_err());
    }
}
