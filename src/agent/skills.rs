//! Skills: folders `skills/<name>/` holding a SKILL.md (plus optional
//! scripts and reference files). They are found, highest precedence first,
//! in the workspace's `skills/`, in `$PINCH_HOME/skills` (managed: installed
//! or migrated for every workspace) and in the bundled skills of the
//! install; a skill shadows one of the same name further down.
//!
//! SKILL.md opens with a YAML frontmatter block, the format OpenClaw and its
//! skill hub use:
//!
//! ```text
//! ---
//! name: todo
//! description: One line saying when to use it.
//! homepage: https://example.org
//! user-invocable: true
//! metadata:
//!   openclaw:                         (aliases: clawdbot, clawdis)
//!     requires: { bins: [curl], anyBins: [jq, python3], env: [TODO_TOKEN] }
//!     os: [linux]
//! tool: todo_list | scripts/list.sh | List open items   (pinch: a script offered as a tool)
//! ---
//! ```
//!
//! pinch's older flat form (`requires-bins: a, b`, `requires-env: X`, one
//! `tool:` line per script) is still read: when the block is not valid YAML
//! (repeated `tool:` keys, unquoted `: ` inside a value) it is read line by
//! line instead.
//!
//! A skill is eligible when every required program is on PATH and every
//! required variable is set in the environment or in `$PINCH_HOME/.env`.
//! Only eligible skills are offered to the model; the others are listed with
//! the reason by `pinch skills list` and `pinch status`. The system prompt
//! carries each eligible one's name and description only; the model loads
//! the full text with the `skill` tool when it decides to use one.

use std::path::{Path, PathBuf};
use yaml_rust2::Yaml;

/// Largest SKILL.md read; larger files are skipped with a warning.
pub const MAX_SKILL_BYTES: u64 = 256 * 1024;
/// Largest frontmatter block parsed.
const MAX_FRONTMATTER_BYTES: usize = 16 * 1024;
/// Deepest nesting of the frontmatter accepted (flow brackets or indentation
/// levels), so a hostile file cannot exhaust the stack.
const MAX_NESTING: usize = 32;
/// Skill folders read per root.
const MAX_SKILLS_PER_ROOT: usize = 64;

#[derive(Debug, Clone)]
pub struct SkillTool {
    pub name: String,
    pub script: String,
    pub description: String,
}

/// Where a skill was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `<workspace>/skills`
    Workspace,
    /// `$PINCH_HOME/skills`
    Managed,
    /// Installed with pinch (`/usr/share/pinch/skills`, `$PINCH_SKILLS_DIR`).
    Bundled,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Workspace => "workspace",
            Origin::Managed => "managed",
            Origin::Bundled => "bundled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub dir: PathBuf,
    pub origin: Origin,
    pub homepage: Option<String>,
    pub user_invocable: bool,
    pub eligible: bool,
    /// Why it is not eligible (for `pinch status` and `pinch skills list`).
    pub missing: Vec<String>,
    pub tools: Vec<SkillTool>,
    /// Variables the skill requires; its scripts get them (and only them)
    /// on top of the cleared environment.
    pub env: Vec<String>,
}

/// The values of a skill's required variables, from the process
/// environment, else `$PINCH_HOME/.env`.
pub fn env_for(skill: &Skill) -> Vec<(String, String)> {
    if skill.env.is_empty() {
        return Vec::new();
    }
    let home = crate::home::Home::from_env();
    let dotenv = crate::config::env::load_dotenv(&home.dotenv()).unwrap_or_default();
    skill
        .env
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| dotenv.get(name).cloned())
                .map(|v| (name.clone(), v))
        })
        .collect()
}

/// A SKILL.md that could not be read, with the reason.
#[derive(Debug, Clone)]
pub struct Broken {
    pub dir: PathBuf,
    pub origin: Origin,
    pub error: String,
}

/// What a skill needs before it is offered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requires {
    pub bins: Vec<String>,
    pub any_bins: Vec<String>,
    pub env: Vec<String>,
    pub os: Vec<String>,
    pub always: bool,
}

/// The parsed frontmatter, before eligibility is checked.
#[derive(Debug, Clone, Default)]
pub struct Frontmatter {
    pub name: String,
    pub description: String,
    pub homepage: Option<String>,
    pub user_invocable: bool,
    pub requires: Requires,
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

/// The roots searched, highest precedence first.
pub fn roots(workspace: &Path) -> Vec<(PathBuf, Origin)> {
    let home = crate::home::Home::from_env();
    let mut roots = vec![
        (workspace.join("skills"), Origin::Workspace),
        (home.root.join("skills"), Origin::Managed),
    ];
    roots.extend(bundled_dirs().into_iter().map(|d| (d, Origin::Bundled)));
    roots
}

/// Every skill found (eligible or not), first of each name only.
pub fn discover(workspace: &Path) -> Vec<Skill> {
    let (skills, broken) = discover_all(workspace);
    for b in broken {
        log::warn!("skill {}: {}", b.dir.display(), b.error);
    }
    skills
}

/// Every skill found, plus the SKILL.md files that could not be read.
pub fn discover_all(workspace: &Path) -> (Vec<Skill>, Vec<Broken>) {
    let dotenv = dotenv_names();
    let mut out: Vec<Skill> = Vec::new();
    let mut broken = Vec::new();
    let mut seen_roots: Vec<PathBuf> = Vec::new();
    for (root, origin) in roots(workspace) {
        // The same folder reached twice (a symlink, PINCH_SKILLS_DIR equal
        // to the bundled path) is read once.
        let canon = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        if seen_roots.contains(&canon) {
            continue;
        }
        seen_roots.push(canon);
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        crate::sort::sort(&mut dirs);
        for dir in dirs.into_iter().take(MAX_SKILLS_PER_ROOT) {
            match load(&dir, origin, &dotenv) {
                Ok(s) => {
                    if !out.iter().any(|o| o.name == s.name) {
                        out.push(s);
                    }
                }
                Err(error) => broken.push(Broken { dir, origin, error }),
            }
        }
    }
    (out, broken)
}

/// Reads and checks one skill folder.
pub fn load(dir: &Path, origin: Origin, dotenv: &[String]) -> Result<Skill, String> {
    let text = read_skill_md(&dir.join("SKILL.md"))?;
    let fm = parse_frontmatter(&text)?;
    let mut s = Skill {
        name: fm.name,
        description: fm.description,
        dir: dir.to_path_buf(),
        origin,
        homepage: fm.homepage,
        user_invocable: fm.user_invocable,
        eligible: true,
        missing: Vec::new(),
        env: fm.requires.env.clone(),
        tools: fm.tools,
    };
    s.missing = unmet(&fm.requires, dir, &|name| {
        std::env::var_os(name).is_some_and(|v| !v.is_empty()) || dotenv.iter().any(|d| d == name)
    });
    s.eligible = s.missing.is_empty();
    Ok(s)
}

/// Reads a SKILL.md of at most `MAX_SKILL_BYTES` (a read that stops
/// there, so a device or a growing file cannot stall discovery).
pub fn read_skill_md(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read SKILL.md: {e}"))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err("SKILL.md is not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_SKILL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read SKILL.md: {e}"))?;
    if bytes.len() as u64 > MAX_SKILL_BYTES {
        return Err(format!("SKILL.md is larger than {MAX_SKILL_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "SKILL.md is not UTF-8 text".to_string())
}

/// Parses SKILL.md text and checks requirements against the process
/// environment only (used by tests and callers without a home).
pub fn parse(text: &str, dir: &Path) -> Result<Skill, String> {
    let fm = parse_frontmatter(text)?;
    let missing = unmet(&fm.requires, dir, &|name| {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    });
    Ok(Skill {
        name: fm.name,
        description: fm.description,
        dir: dir.to_path_buf(),
        origin: Origin::Workspace,
        homepage: fm.homepage,
        user_invocable: fm.user_invocable,
        eligible: missing.is_empty(),
        missing,
        env: fm.requires.env.clone(),
        tools: fm.tools,
    })
}

/// Names defined in `$PINCH_HOME/.env` (values are not kept).
pub fn dotenv_names() -> Vec<String> {
    let home = crate::home::Home::from_env();
    crate::config::env::load_dotenv(&home.dotenv())
        .map(|m| m.into_keys().collect())
        .unwrap_or_default()
}

/// The requirements not met, each as a short reason.
pub fn unmet(req: &Requires, dir: &Path, env_set: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut missing = Vec::new();
    if !req.os.is_empty() && !req.os.iter().any(|o| o == "linux") {
        missing.push(format!("os: only for {}", req.os.join(", ")));
    }
    if req.always {
        return missing;
    }
    for b in &req.bins {
        if crate::sandbox::resolve_program(b, dir).is_none() {
            missing.push(format!("program {b} not on PATH"));
        }
    }
    if !req.any_bins.is_empty()
        && !req
            .any_bins
            .iter()
            .any(|b| crate::sandbox::resolve_program(b, dir).is_some())
    {
        missing.push(format!(
            "none of the programs {} on PATH",
            req.any_bins.join(", ")
        ));
    }
    for e in &req.env {
        if !env_set(e) {
            missing.push(format!("${e} not set (environment or .env)"));
        }
    }
    missing
}

/// The frontmatter block of SKILL.md text (between the opening `---` line
/// and the next line that is `---`).
fn frontmatter_block(text: &str) -> Result<&str, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let body = text
        .strip_prefix("---")
        .ok_or("SKILL.md must start with a --- frontmatter block")?;
    let body = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
        .ok_or("the opening --- must be alone on its line")?;
    let mut offset = 0usize;
    for line in body.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return body
                .get(..offset)
                .ok_or_else(|| "frontmatter is not closed with ---".to_string());
        }
        offset = offset.saturating_add(line.len());
    }
    Err("frontmatter is not closed with ---".into())
}

/// Parses the frontmatter: YAML first, the flat line form when the block is
/// not valid YAML.
pub fn parse_frontmatter(text: &str) -> Result<Frontmatter, String> {
    let block = frontmatter_block(text)?;
    if block.len() > MAX_FRONTMATTER_BYTES {
        return Err(format!(
            "frontmatter is {} bytes; the limit is {MAX_FRONTMATTER_BYTES}",
            block.len()
        ));
    }
    check_nesting(block)?;
    let fm = match yaml_rust2::YamlLoader::load_from_str(block) {
        Ok(docs) => match docs.into_iter().next() {
            Some(doc @ Yaml::Hash(_)) => from_yaml(&doc)?,
            _ => return Err("frontmatter must be a YAML mapping (key: value lines)".into()),
        },
        Err(yaml_err) => parse_flat(block).map_err(|_| {
            format!(
                "frontmatter is not valid YAML: {yaml_err} (line {} of the frontmatter)",
                yaml_err.marker().line()
            )
        })?,
    };
    if fm.name.is_empty() || fm.description.is_empty() {
        return Err("frontmatter needs name and description".into());
    }
    if fm.name.len() > 64
        || !fm
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || fm.name.starts_with('.')
    {
        return Err(format!(
            "skill name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
            crate::util::truncate(&fm.name, 80)
        ));
    }
    Ok(fm)
}

/// Rejects frontmatter nested deeper than `MAX_NESTING`, counted
/// conservatively (every bracket outside nothing, every two columns of
/// indentation), before the YAML parser builds a tree from it.
fn check_nesting(block: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut max = 0usize;
    for c in block.chars() {
        match c {
            '[' | '{' => {
                depth = depth.saturating_add(1);
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let indent = block
        .lines()
        .map(|l| l.len() - l.trim_start_matches([' ', '-']).len())
        .max()
        .unwrap_or(0);
    if max > MAX_NESTING || indent / 2 > MAX_NESTING {
        return Err(format!(
            "frontmatter is nested too deeply (more than {MAX_NESTING} levels)"
        ));
    }
    Ok(())
}

fn yaml_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string list from a YAML sequence, or from one comma-separated string.
fn yaml_list(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Array(items) => items.iter().filter_map(yaml_string).collect(),
        other => yaml_string(other)
            .map(|s| split_list(&s))
            .unwrap_or_default(),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn from_yaml(doc: &Yaml) -> Result<Frontmatter, String> {
    let mut fm = Frontmatter {
        name: yaml_string(&doc["name"]).unwrap_or_default(),
        description: yaml_string(&doc["description"]).unwrap_or_default(),
        homepage: yaml_string(&doc["homepage"]),
        user_invocable: doc["user-invocable"].as_bool().unwrap_or(true),
        ..Frontmatter::default()
    };
    // pinch's flat requirement keys.
    fm.requires.bins = yaml_list(&doc["requires-bins"]);
    fm.requires.env = yaml_list(&doc["requires-env"]);
    // OpenClaw's gating block under metadata.openclaw (or its older names).
    // Some skills write `metadata` as a JSON string.
    let parsed_string;
    let mut metadata = &doc["metadata"];
    if let Yaml::String(s) = metadata {
        parsed_string = yaml_rust2::YamlLoader::load_from_str(s)
            .ok()
            .and_then(|d| d.into_iter().next())
            .unwrap_or(Yaml::BadValue);
        metadata = &parsed_string;
    }
    for key in ["openclaw", "clawdbot", "clawdis"] {
        let gate = &metadata[key];
        if gate.as_hash().is_none() {
            continue;
        }
        let req = &gate["requires"];
        fm.requires.bins.extend(yaml_list(&req["bins"]));
        fm.requires.any_bins.extend(yaml_list(&req["anyBins"]));
        fm.requires.env.extend(yaml_list(&req["env"]));
        fm.requires.os.extend(yaml_list(&gate["os"]));
        fm.requires.always |= gate["always"].as_bool().unwrap_or(false);
        if fm.homepage.is_none() {
            fm.homepage = yaml_string(&gate["homepage"]);
        }
        break;
    }
    let tool_lines: Vec<String> = match &doc["tool"] {
        Yaml::Array(items) => items.iter().filter_map(yaml_string).collect(),
        other => yaml_string(other).into_iter().collect(),
    };
    for line in tool_lines {
        fm.tools.push(parse_tool(&line)?);
    }
    Ok(fm)
}

/// `name | relative/script | description`
fn parse_tool(v: &str) -> Result<SkillTool, String> {
    let parts: Vec<&str> = v.splitn(3, '|').map(str::trim).collect();
    match parts.as_slice() {
        [name, script, description]
            if !name.is_empty()
                && !script.is_empty()
                && !script.split('/').any(|c| c == "..")
                && !script.starts_with('/') =>
        {
            Ok(SkillTool {
                name: name.to_string(),
                script: script.to_string(),
                description: description.to_string(),
            })
        }
        _ => Err(format!(
            "tool line must be `name | relative/script | description`, found {:?}",
            crate::util::truncate(v, 120)
        )),
    }
}

/// pinch's older flat frontmatter: one `key: value` per line.
fn parse_flat(block: &str) -> Result<Frontmatter, String> {
    let mut fm = Frontmatter {
        user_invocable: true,
        ..Frontmatter::default()
    };
    for line in block.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("expected `key: value`, found {line:?}"));
        };
        let v = v.trim();
        match k.trim() {
            "name" => fm.name = v.to_string(),
            "description" => fm.description = v.to_string(),
            "homepage" => fm.homepage = Some(v.to_string()),
            "requires-bins" => fm.requires.bins.extend(split_list(v)),
            "requires-env" => fm.requires.env.extend(split_list(v)),
            "tool" => fm.tools.push(parse_tool(v)?),
            _ => {}
        }
    }
    Ok(fm)
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
        assert_eq!(
            s.missing,
            vec!["$PINCH_SURELY_UNSET_VAR not set (environment or .env)".to_string()]
        );
        assert!(parse("no frontmatter", Path::new("/tmp")).is_err());
        assert!(parse(
            "---\nname: x\ndescription: y\ntool: a | ../escape.sh | no\n---\n",
            Path::new("/tmp")
        )
        .is_err());
    }

    #[test]
    fn flat_form_with_colons_and_repeated_tools_still_reads() {
        let t = "---\nname: two\ndescription: Two tools.\ntool: a | s/a.sh | First. args: [\"X\"]\ntool: b | s/b.sh | Second\n---\n";
        let s = parse(t, Path::new("/tmp")).expect("parses");
        assert_eq!(s.tools.len(), 2);
        assert_eq!(s.tools[0].description, "First. args: [\"X\"]");
    }

    #[test]
    fn openclaw_multiline_metadata_gates_eligibility() {
        let t = r#"---
name: todo-cli
description: "Manage tasks: add, list, finish."
homepage: https://example.org/todo
user-invocable: false
metadata:
  {
    "openclaw":
      {
        "emoji": "✅",
        "requires": { "bins": ["sh"], "anyBins": ["pinch-no-such-a", "sh"], "env": ["PINCH_SURELY_UNSET_TOKEN"] },
        "primaryEnv": "PINCH_SURELY_UNSET_TOKEN",
      },
  }
---
Body
"#;
        let s = parse(t, Path::new("/tmp")).expect("parses");
        assert_eq!(s.description, "Manage tasks: add, list, finish.");
        assert_eq!(s.homepage.as_deref(), Some("https://example.org/todo"));
        assert!(!s.user_invocable);
        assert_eq!(
            s.missing,
            vec!["$PINCH_SURELY_UNSET_TOKEN not set (environment or .env)".to_string()]
        );

        let block = "---\nname: w\ndescription: d\nmetadata:\n  clawdbot:\n    requires:\n      bins:\n        - pinch-no-such-program\n---\n";
        let s = parse(block, Path::new("/tmp")).expect("parses");
        assert_eq!(s.missing, vec!["program pinch-no-such-program not on PATH"]);

        let mac = "---\nname: m\ndescription: d\nmetadata: {\"openclaw\": {\"os\": [\"darwin\"], \"always\": true}}\n---\n";
        let s = parse(mac, Path::new("/tmp")).expect("parses");
        assert!(!s.eligible);
        assert_eq!(s.missing, vec!["os: only for darwin"]);

        let string_form = "---\nname: j\ndescription: d\nmetadata: '{\"openclaw\":{\"requires\":{\"env\":[\"PINCH_SURELY_UNSET_X\"]}}}'\n---\n";
        let s = parse(string_form, Path::new("/tmp")).expect("parses");
        assert_eq!(s.missing.len(), 1);
    }

    #[test]
    fn hostile_frontmatter_is_an_error_not_a_crash() {
        let deep = format!(
            "---\nname: d\ndescription: d\nx: {}\n---\n",
            "[".repeat(5000)
        );
        assert!(parse(&deep, Path::new("/tmp"))
            .unwrap_err()
            .contains("nested too deeply"));
        assert!(parse("---\nname: ../x\ndescription: d\n---\n", Path::new("/tmp")).is_err());
        assert!(parse("---\nname: [\ndescription: d\n---\n", Path::new("/tmp")).is_err());
        assert!(parse("---\n- a\n- b\n---\n", Path::new("/tmp")).is_err());
        assert!(parse("---\nname: a\ndescription: d\n", Path::new("/tmp")).is_err());
    }
}
