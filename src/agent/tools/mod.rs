//! The tools the model may call, with their JSON schemas.
//!
//! Built in: `read_file`, `write_file`, `edit_file`, `list_dir` (confined to
//! the workspace: paths are canonicalised, so `..` and symlinks cannot
//! escape; skills are read-only), `exec` (argv, allowlist checked on the
//! resolved program, never a shell unless `allowShell`; run in the sandbox of
//! `crate::sandbox` with a timeout, output cap and rlimits), `web_fetch`
//! (public addresses only, every redirect hop checked, size and time caps,
//! HTML reduced to text, the network route of `tools.webFetch`; see
//! `fetch.rs`), `web_search` (the backend of `tools.webSearch`, see
//! `search.rs`), `memory` (MEMORY.md sections, daily notes and their
//! search, see `memory_search.rs`) and `skill` (loads a skill's
//! full text) and `cron` (scheduled jobs, asked of the reactor).
//! Skill scripts declared in SKILL.md become tools too, run in the same sandbox.
//! `read_file` on a directory lists it, so the compact tool set of small
//! context windows (`specs_for`) can leave out `list_dir` and the skill
//! scripts' own tools (`skill` runs them by name) without losing a thing
//! the model can do.
//! A tool's failure is returned to the model as a result; it never ends the run.

mod message;

use super::skills::{self, Skill};
use crate::config::{Config, ExecTool};
use crate::llm::ToolSpec;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest tool result handed back to the model, in bytes.
const MAX_RESULT: usize = 8 * 1024;
/// Largest file `read_file` returns and `write_file` accepts.
const MAX_FILE: usize = 256 * 1024;
const MAX_MEMORY: usize = 16 * 1024;

pub struct Output {
    pub content: String,
    pub is_error: bool,
    /// A short line for clients ("wrote notes.md (120 bytes)").
    pub summary: String,
}

impl Output {
    pub fn ok(content: String, summary: String) -> Output {
        Output {
            content: cap(content),
            is_error: false,
            summary,
        }
    }
    pub fn error(msg: String) -> Output {
        Output {
            summary: crate::util::truncate(&msg, 120).to_string(),
            content: cap(msg),
            is_error: true,
        }
    }
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_RESULT {
        let total = s.len();
        s = crate::util::truncate(&s, MAX_RESULT).to_string();
        s.push_str(&format!("\n[truncated: {MAX_RESULT} of {total} bytes]"));
    }
    s
}

pub struct Registry {
    /// Every tool offered; those of the compact set first.
    specs: Vec<ToolSpec>,
    /// How many of `specs` the compact tool set offers. The rest are only
    /// in the full set: `list_dir` (read_file lists directories too) and
    /// the skill scripts' own tools (reached through `skill` with `run`).
    core: usize,
    workspace: PathBuf,
    exec: ExecTool,
    /// Resolved allowlist: canonical program paths.
    exec_allowed: Vec<PathBuf>,
    fetch_max: usize,
    fetch_timeout: Duration,
    fetch_agent: Option<super::fetch::FetchAgent>,
    /// Whether programs run under Landlock, without it (`sandbox: "off"`),
    /// or are refused (no Landlock and the sandbox not switched off).
    sandbox: crate::sandbox::Mode,
    /// Folders no program may reach: `$PINCH_HOME`, `$CREDENTIALS_DIRECTORY`.
    secret_roots: Vec<PathBuf>,
    searcher: Option<super::search::Searcher>,
    skills: Vec<Skill>,
    /// The reactor, for the `cron` tool (set by the gateway).
    reactor: Option<super::Sink>,
}

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

fn path_schema(extra: Value) -> Value {
    let mut props = json!({"path": {"type": "string"}});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let mut required = vec!["path".to_string()];
    required.extend(
        extra
            .as_object()
            .map(|e| e.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    json!({"type": "object", "properties": props, "required": required})
}

impl Registry {
    pub fn new(cfg: &Config, workspace: &Path) -> Result<Registry, String> {
        let workspace =
            std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
        let mut specs = vec![
            spec("read_file", "Read a text file in the workspace, or list a directory (path \".\" for the root).", path_schema(json!({}))),
            spec("write_file", "Create or overwrite a file in the workspace.", path_schema(json!({"content": {"type": "string"}}))),
            spec(
                "edit_file",
                "Replace old_text (exact, occurring once) with new_text in a workspace file.",
                path_schema(json!({"old_text": {"type": "string"}, "new_text": {"type": "string"}})),
            ),
            spec(
                "memory",
                "Long-term memory in MEMORY.md. action: read | append (text) | replace_section (section heading, text) | note (text: today's notes) | search (text: keywords, in MEMORY.md and notes).",
                json!({"type": "object", "properties": {"action": {"type": "string", "enum": ["read", "append", "replace_section", "note", "search"]}, "section": {"type": "string"}, "text": {"type": "string"}}, "required": ["action"]}),
            ),
        ];
        let exec = cfg.tools.exec.clone();
        let exec_allowed: Vec<PathBuf> = exec
            .allow
            .iter()
            .filter_map(|a| resolve_program(a, &workspace))
            .collect();
        if exec.enabled {
            let allow = exec.allow.join(", ");
            let shell = if exec.allow_shell {
                "shell syntax runs under sh -c"
            } else {
                "no shell"
            };
            specs.push(spec(
                "exec",
                &format!("Run a program ({shell}). Allowed: {allow}."),
                json!({"type": "object", "properties": {"command": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}),
            ));
        }
        let wf = &cfg.tools.web_fetch;
        let fetch_agent = if wf.enabled {
            let route = crate::routes::route_for(cfg, crate::routes::Owner::WebFetch)?;
            let t = crate::net::Timeouts {
                connect: Duration::from_secs(10),
                recv_response: Duration::from_secs(wf.timeout_seconds),
                per_read: Some(Duration::from_secs(wf.timeout_seconds)),
            };
            specs.push(spec("web_fetch", "Fetch an http(s) URL as readable text.", json!({"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]})));
            Some(super::fetch::FetchAgent::new(route, t, wf.allow_private)?)
        } else {
            None
        };
        let searcher = if cfg.tools.web_search.enabled {
            let max = cfg.tools.web_search.max_results;
            specs.push(spec(
                "web_search",
                &format!("Search the web; returns up to {max} results, one line each: title, URL, snippet."),
                json!({"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer"}}, "required": ["query"]}),
            ));
            Some(super::search::Searcher::new(cfg)?)
        } else {
            None
        };
        let skills = skills::discover(&workspace);
        let eligible: Vec<&Skill> = skills.iter().filter(|s| s.eligible).collect();
        if !eligible.is_empty() {
            specs.push(spec("skill", "Load a skill by name before using it; with run (its tool's name or script path) and args, run that.", json!({"type": "object", "properties": {"name": {"type": "string"}, "run": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]})));
        }
        let core = specs.len();
        // Only in the full set: read_file lists directories too.
        specs.push(spec(
            "list_dir",
            "List a workspace directory (path \".\" for the root).",
            path_schema(json!({})),
        ));
        for s in &eligible {
            for t in &s.tools {
                specs.push(spec(&t.name, &t.description, json!({"type": "object", "properties": {"args": {"type": "array", "items": {"type": "string"}}}})));
            }
        }
        Ok(Registry {
            specs,
            core,
            workspace,
            exec,
            exec_allowed,
            fetch_max: wf.max_bytes,
            fetch_timeout: Duration::from_secs(wf.timeout_seconds),
            fetch_agent,
            searcher,
            skills,
            reactor: None,
            sandbox: crate::sandbox::mode(&cfg.tools.exec.sandbox),
            secret_roots: secret_roots(),
        })
    }

    /// Offers the `cron` tool, which asks the reactor through `tx`.
    pub fn enable_cron(&mut self, tx: super::Sink) {
        self.add_core(spec(
            "cron",
            "Scheduled jobs. add: name, message, and cron (5 fields, tz) or every (\"30m\") or at (RFC 3339); to: \"telegram:<chat>\" (default the last chat). remove: name.",
            json!({"type": "object", "properties": {"action": {"type": "string", "enum": ["list", "add", "remove"]}, "name": {"type": "string"}, "message": {"type": "string"}, "cron": {"type": "string"}, "tz": {"type": "string"}, "every": {"type": "string"}, "at": {"type": "string"}, "skill": {"type": "string"}, "to": {"type": "string"}}, "required": ["action"]}),
        ));
        self.reactor = Some(tx);
    }

    /// Offers a tool in both tool sets.
    fn add_core(&mut self, tool: ToolSpec) {
        let at = self.core.min(self.specs.len());
        self.specs.insert(at, tool);
        self.core = at + 1;
    }

    /// Every tool offered.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The tools of a request: all of them, or the compact set for small
    /// context windows (`prompt::compact`), without `list_dir` and the
    /// skill scripts' tools (run through `skill`, `run` = the tool's name).
    pub fn specs_for(&self, compact: bool) -> &[ToolSpec] {
        if compact {
            self.specs.get(..self.core).unwrap_or(&self.specs)
        } else {
            &self.specs
        }
    }

    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Runs one tool call. Never panics; every failure becomes an error result.
    pub fn run(&self, name: &str, args: &str, deadline: Instant) -> Output {
        let args: Value = match serde_json::from_str(args) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Output::error(format!("arguments for {name} must be a JSON object")),
        };
        let s = |k: &str| args.get(k).and_then(Value::as_str);
        // Programs (exec, skill scripts) take their arguments as a list.
        let argv: Vec<String> = args
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let result = match name {
            "read_file" => self.read_file(s("path")),
            "write_file" => self.write_file(s("path"), s("content")),
            "edit_file" => self.edit_file(s("path"), s("old_text"), s("new_text")),
            "list_dir" => self.list_dir(s("path")),
            "memory" => self.memory(s("action"), s("section"), s("text")),
            "exec" if self.exec.enabled => self.exec(s("command"), argv, deadline),
            "web_fetch" if self.fetch_agent.is_some() => self.web_fetch(s("url")),
            "web_search" if self.searcher.is_some() => {
                self.web_search(s("query"), args.get("max_results").and_then(Value::as_u64))
            }
            "skill" => match s("run") {
                Some(script) => self.run_skill_script(s("name"), script, argv, deadline),
                None => self.load_skill(s("name")),
            },
            "cron" if self.reactor.is_some() => self.cron(args),
            "message" => self.message(&args),
            other => match self.skill_tool(other) {
                Some((skill, script)) => {
                    self.run_program(&script, argv, &skill.dir, &skills::env_for(skill), deadline)
                }
                None => Err(format!("unknown tool {other:?}")),
            },
        };
        match result {
            Ok(o) => o,
            Err(e) => Output::error(e),
        }
    }

    /// Resolves a workspace path for reading (must exist).
    fn existing(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let rel = rel.ok_or("missing \"path\"")?;
        let p =
            std::fs::canonicalize(self.workspace.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        if !p.starts_with(&self.workspace) {
            return Err(format!(
                "{rel}: outside the workspace; only files under the workspace are accessible"
            ));
        }
        Ok(p)
    }

    /// Resolves a workspace path for writing: the deepest existing ancestor
    /// is canonicalised (resolving symlinks) and must be inside the
    /// workspace; the rest may not contain `..`.
    fn writable(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let rel = rel.ok_or("missing \"path\"")?;
        let full = self.workspace.join(rel);
        let mut existing = full.clone();
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        while !existing.exists() {
            match (existing.file_name(), existing.parent()) {
                (Some(n), Some(parent)) => {
                    rest.push(n.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => return Err(format!("{rel}: not a usable path")),
            }
        }
        if Path::new(rel)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
            && !rest.is_empty()
        {
            return Err(format!("{rel}: `..` is not allowed in new paths"));
        }
        let mut p = std::fs::canonicalize(&existing).map_err(|e| format!("{rel}: {e}"))?;
        if !p.starts_with(&self.workspace) {
            return Err(format!(
                "{rel}: outside the workspace; only files under the workspace are accessible"
            ));
        }
        for n in rest.iter().rev() {
            p.push(n);
        }
        self.refuse_skills(rel, &p)?;
        Ok(p)
    }

    /// Skills are code the agent runs: their folders are not the agent's to
    /// change (neither SKILL.md nor scripts), here or under Landlock.
    fn refuse_skills(&self, rel: &str, p: &Path) -> Result<(), String> {
        let under_skills = p.starts_with(self.workspace.join("skills"))
            || self.skills.iter().any(|s| p.starts_with(&s.dir));
        if under_skills || p.file_name().is_some_and(|n| n == "SKILL.md") {
            return Err(format!(
                "{rel}: skills are read-only for the assistant; a person edits them in the workspace's skills/ folder"
            ));
        }
        Ok(())
    }

    fn read_file(&self, rel: Option<&str>) -> Result<Output, String> {
        let p = self.existing(rel)?;
        if p.is_dir() {
            return self.list_dir(rel);
        }
        let meta = std::fs::metadata(&p).map_err(|e| e.to_string())?;
        if meta.len() as usize > MAX_FILE {
            return Err(format!(
                "file is {} bytes; read_file returns at most {MAX_FILE}",
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read as text: {e}"))?;
        let summary = format!("read {} ({} bytes)", rel.unwrap_or(""), text.len());
        Ok(Output::ok(text, summary))
    }

    fn write_file(&self, rel: Option<&str>, content: Option<&str>) -> Result<Output, String> {
        let content = content.ok_or("missing \"content\"")?;
        if content.len() > MAX_FILE {
            return Err(format!(
                "content is {} bytes; the limit is {MAX_FILE}",
                content.len()
            ));
        }
        let p = self.writable(rel)?;
        if p.is_dir() {
            return Err("path is a directory".into());
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        // Refuse to follow a symlink at the final component.
        if std::fs::symlink_metadata(&p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err("refusing to write through a symlink".into());
        }
        std::fs::write(&p, content).map_err(|e| e.to_string())?;
        let r = rel.unwrap_or("");
        Ok(Output::ok(
            format!("wrote {r} ({} bytes)", content.len()),
            format!("wrote {r} ({} bytes)", content.len()),
        ))
    }

    fn edit_file(
        &self,
        rel: Option<&str>,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<Output, String> {
        let (old, new) = (
            old.ok_or("missing \"old_text\"")?,
            new.ok_or("missing \"new_text\"")?,
        );
        if old.is_empty() {
            return Err("old_text must not be empty".into());
        }
        let p = self.existing(rel)?;
        self.refuse_skills(rel.unwrap_or(""), &p)?;
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        match text.matches(old).count() {
            0 => Err("old_text was not found; read the file and copy the exact text".into()),
            1 => {
                std::fs::write(&p, text.replacen(old, new, 1)).map_err(|e| e.to_string())?;
                let r = rel.unwrap_or("");
                Ok(Output::ok(format!("edited {r}"), format!("edited {r}")))
            }
            n => Err(format!(
                "old_text occurs {n} times; include more context so it is unique"
            )),
        }
    }

    fn list_dir(&self, rel: Option<&str>) -> Result<Output, String> {
        let p = self.existing(Some(rel.unwrap_or(".")))?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&p)
            .map_err(|e| e.to_string())?
            .flatten()
            .take(500)
        {
            let mut n = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                n.push('/');
            }
            names.push(n);
        }
        crate::sort::sort(&mut names);
        let summary = format!("listed {} ({} entries)", rel.unwrap_or("."), names.len());
        Ok(Output::ok(names.join("\n"), summary))
    }

    fn memory(
        &self,
        action: Option<&str>,
        section: Option<&str>,
        text: Option<&str>,
    ) -> Result<Output, String> {
        use super::memory_search as notes;
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

    /// The `cron` tool: forwards to the reactor's `cron.*` methods and
    /// waits, bounded, for the answer.
    fn cron(&self, mut args: Value) -> Result<Output, String> {
        let tx = self
            .reactor
            .as_ref()
            .ok_or("scheduling is not available here")?;
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(o) = args.as_object_mut() {
            o.remove("action");
        }
        let method = match action.as_str() {
            "list" => "cron.list",
            "add" => "cron.add",
            "remove" => "cron.remove",
            other => return Err(format!("unknown action {other:?}; use list, add or remove")),
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if !tx(super::AgentEvent::Query {
            method: method.into(),
            params: args,
            reply,
        }) {
            return Err("the gateway is shutting down".to_string());
        }
        let v = match answer.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(e.message),
            Err(_) => return Err("the gateway did not answer in time".into()),
        };
        let text = match action.as_str() {
            "list" => {
                let jobs: Vec<&str> = v["jobs"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|j| j["summary"].as_str()).collect())
                    .unwrap_or_default();
                if jobs.is_empty() {
                    "no scheduled jobs".to_string()
                } else {
                    jobs.join("\n")
                }
            }
            "add" => format!("added {}", v["job"]["summary"].as_str().unwrap_or("")),
            _ => format!("removed {}", v["name"].as_str().unwrap_or("")),
        };
        let summary = crate::util::truncate(&text, 120).to_string();
        Ok(Output::ok(text, summary))
    }

    fn load_skill(&self, name: Option<&str>) -> Result<Output, String> {
        let name = name.ok_or("missing \"name\"")?;
        let s = self
            .skills
            .iter()
            .find(|s| s.name == name && s.eligible)
            .ok_or_else(|| format!("no eligible skill {name:?}"))?;
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
            format!("loaded skill {name}"),
        ))
    }

    /// Runs a script that lives inside an eligible skill's folder (never a
    /// path that resolves outside it), with the skill folder as cwd.
    fn run_skill_script(
        &self,
        name: Option<&str>,
        script: &str,
        argv: Vec<String>,
        deadline: Instant,
    ) -> Result<Output, String> {
        let name = name.ok_or("missing \"name\"")?;
        let s = self
            .skills
            .iter()
            .find(|s| s.name == name && s.eligible)
            .ok_or_else(|| format!("no eligible skill {name:?}"))?;
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

    fn skill_tool(&self, name: &str) -> Option<(&Skill, PathBuf)> {
        for s in self.skills.iter().filter(|s| s.eligible) {
            for t in &s.tools {
                if t.name == name {
                    return Some((s, s.dir.join(&t.script)));
                }
            }
        }
        None
    }

    fn exec(
        &self,
        command: Option<&str>,
        args: Vec<String>,
        deadline: Instant,
    ) -> Result<Output, String> {
        let command = command.ok_or("missing \"command\"")?.trim();
        if self.exec.allow_shell && args.is_empty() && split_words(command).is_err() {
            // allowShell: shell syntax runs under `sh -c`, inside the sandbox
            // (the config refuses allowShell with the sandbox off).
            let sh = resolve_program("sh", &self.workspace).ok_or("sh: not found on PATH")?;
            return self.run_program(
                &sh,
                vec!["-c".into(), command.to_string()],
                &self.workspace,
                &[],
                deadline,
            );
        }
        let (program, argv) = if args.is_empty() && command.contains(char::is_whitespace) {
            let words = split_words(command)?;
            let (first, rest) = words.split_first().ok_or("empty command")?;
            (first.clone(), rest.to_vec())
        } else {
            (command.to_string(), args)
        };
        if program.is_empty() {
            return Err("empty command".into());
        }
        let resolved = resolve_program(&program, &self.workspace)
            .ok_or_else(|| format!("{program}: not found on PATH"))?;
        if !self.exec_allowed.iter().any(|a| *a == resolved) {
            return Err(format!(
                "{program} ({}) is not in tools.exec.allow; allowed: {}",
                resolved.display(),
                self.exec.allow.join(", ")
            ));
        }
        self.run_program(&resolved, argv, &self.workspace, &[], deadline)
    }

    /// Runs a program with a cleared environment plus `extra_env` (a
    /// skill's declared variables).
    fn run_program(
        &self,
        program: &Path,
        argv: Vec<String>,
        cwd: &Path,
        extra_env: &[(String, String)],
        deadline: Instant,
    ) -> Result<Output, String> {
        use std::os::unix::process::CommandExt;
        let enforce = match &self.sandbox {
            crate::sandbox::Mode::Enforced { .. } => true,
            crate::sandbox::Mode::Off => false,
            crate::sandbox::Mode::Refused(why) => {
                return Err(format!(
                    "programs are refused: the sandbox is unavailable ({why}). fix: run on Linux 5.13+ with Landlock enabled, or set tools.exec.sandbox to \"off\" to run programs unconfined"
                ))
            }
        };
        let timeout = Duration::from_secs(self.exec.timeout_seconds)
            .min(deadline.saturating_duration_since(Instant::now()));
        let mut extra_programs: Vec<PathBuf> = self.exec_allowed.clone();
        extra_programs.push(program.to_path_buf());
        let mut readable: Vec<PathBuf> = self.skills.iter().map(|s| s.dir.clone()).collect();
        crate::sort::sort(&mut readable);
        readable.dedup();
        let policy = crate::sandbox::Policy {
            workspace: self.workspace.clone(),
            extra_programs,
            readable,
            secret_roots: self.secret_roots.clone(),
        };
        let mut prepared = crate::sandbox::prepare(&policy, enforce)?;
        let mut cmd = Command::new(program);
        cmd.args(&argv)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        crate::sandbox::apply(
            &mut cmd,
            &mut prepared,
            &self.workspace,
            crate::sandbox::Limits {
                cpu_seconds: self.exec.max_cpu_seconds,
                memory_bytes: self.exec.max_memory_mb.saturating_mul(1024 * 1024),
                file_bytes: 64 * 1024 * 1024,
                open_files: 256,
            },
        );
        // A skill's declared variables, on top of the scrubbed environment.
        cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
        let started = Instant::now();
        let spawned = cmd.spawn();
        // The child holds its own copy of the ruleset now; the temp folder
        // lives until `prepared` drops at the end of this call.
        let mut child = spawned.map_err(|e| format!("{}: cannot start: {e}", program.display()))?;
        let max = self.exec.max_output_bytes;
        let stderr = child.stderr.take();
        let err_reader = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || stderr.map(|s| read_capped(s, max)).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take();
        let out_reader = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || stdout.map(|s| read_capped(s, max)).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(_) => break None,
            }
            if started.elapsed() > timeout {
                timed_out = true;
                // Kill the whole process group the child leads.
                // SAFETY: plain syscall with the child's pid as the group id.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let code = status.and_then(|s| s.code());
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = out;
        if !err.is_empty() {
            content.push_str("\n[stderr]\n");
            content.push_str(&err);
        }
        if timed_out {
            return Ok(Output {
                content: cap(format!("{content}\n[killed after {} s]", timeout.as_secs())),
                is_error: true,
                summary: format!("{name}: timed out"),
            });
        }
        let ok = code == Some(0);
        let summary = format!(
            "{name} exited {}",
            code.map(|c| c.to_string())
                .unwrap_or_else(|| "by signal".into())
        );
        Ok(Output {
            content: cap(format!(
                "{content}\n[exit {}]",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "signal".into())
            )),
            is_error: !ok,
            summary,
        })
    }

    fn web_search(&self, query: Option<&str>, max: Option<u64>) -> Result<Output, String> {
        let searcher = self.searcher.as_ref().ok_or("web_search is disabled")?;
        let query = query.ok_or("missing \"query\"")?;
        let max = max
            .map(|m| m as usize)
            .unwrap_or_else(|| searcher.max_results());
        let (text, summary) = searcher.search(query, max)?;
        Ok(Output::ok(text, summary))
    }

    fn web_fetch(&self, url: Option<&str>) -> Result<Output, String> {
        let url = url.ok_or("missing \"url\"")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("only http:// and https:// URLs can be fetched".into());
        }
        let agent = self.fetch_agent.as_ref().ok_or("web_fetch is disabled")?;
        let f = agent.get(url, self.fetch_max, self.fetch_timeout)?;
        let raw = String::from_utf8_lossy(&f.body);
        let text = if f.content_type.contains("html") || raw.trim_start().starts_with('<') {
            html_to_text(&raw)
        } else {
            raw.into_owned()
        };
        let summary = format!(
            "GET {} → {} ({} bytes)",
            crate::util::truncate(&f.url, 60),
            f.status,
            f.body.len()
        );
        if f.status >= 400 {
            return Ok(Output {
                content: cap(format!("HTTP {}\n{text}", f.status)),
                is_error: true,
                summary,
            });
        }
        Ok(Output::ok(text, summary))
    }
}

/// `$PINCH_HOME` and `$CREDENTIALS_DIRECTORY` (canonical): what no program
/// started for the agent may reach, except the workspace inside the home.
fn secret_roots() -> Vec<PathBuf> {
    let mut roots = vec![crate::home::Home::from_env().root];
    if let Some(c) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        roots.push(PathBuf::from(c));
    }
    roots
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

fn read_capped(mut r: impl Read, max: usize) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut total = 0usize;
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if buf.len() < max {
                    let take = n.min(max - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if total > max {
        s.push_str(&format!("\n[output truncated: {max} of {total} bytes]"));
    }
    s
}

/// Finds a program like the kernel would: a path with a slash is taken as
/// is (relative to the workspace); a bare name is looked up on PATH. The
/// result is canonical, so symlinks and `..` are resolved.
pub fn resolve_program(name: &str, workspace: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            workspace.join(name)
        };
        return std::fs::canonicalize(p).ok().filter(|p| p.is_file());
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return std::fs::canonicalize(candidate).ok();
        }
    }
    None
}

/// Splits a command line into words with quotes, refusing shell syntax
/// (`;`, `|`, `&`, `$`, backticks, redirections, parentheses, newlines) that
/// would run or smuggle a second command.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$') | Some('`') => return Err(
                            "`$` and backticks are shell syntax; pass arguments as an argv list"
                                .into(),
                        ),
                        Some('\\') => {
                            if let Some(x) = chars.next() {
                                cur.push(x);
                            }
                        }
                        Some(x) => cur.push(x),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            ';' | '|' | '&' | '$' | '`' | '>' | '<' | '(' | ')' | '\n' | '\r' | '*' | '?' | '~'
            | '{' | '}' => {
                return Err(format!("{c:?} is shell syntax and no shell runs here; call one program with an argv list"));
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
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

/// Reduces HTML to readable text: drops scripts, styles and tags, keeps
/// line structure at block elements, decodes common entities.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 3);
    let mut i = 0;
    let b = html.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &lower[i..];
            for skip in ["script", "style", "noscript", "svg", "head"] {
                if rest.starts_with(&format!("<{skip}")) {
                    let close = format!("</{skip}");
                    if let Some(end) = rest.find(&close) {
                        i += end;
                    }
                    break;
                }
            }
            let end = lower[i..].find('>').map(|e| i + e + 1).unwrap_or(b.len());
            let tag = &lower[i..end];
            if [
                "<br", "<p", "</p", "<div", "</div", "<li", "<h1", "<h2", "<h3", "<h4", "<tr",
                "</h", "<title", "</title",
            ]
            .iter()
            .any(|t| tag.starts_with(t))
            {
                out.push('\n');
            }
            i = end;
            continue;
        }
        let next = lower[i..].find('<').map(|e| i + e).unwrap_or(b.len());
        out.push_str(&html[i..next]);
        i = next;
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let mut lines: Vec<String> = Vec::new();
    for l in decoded.lines() {
        let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
        if !l.is_empty() {
            lines.push(l);
        }
    }
    lines.join("\n")
}

/// A short, safe summary of tool arguments for clients (no long values).
pub fn summarize_args(args: &str) -> String {
    match serde_json::from_str::<Value>(args) {
        Ok(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{k}={}", crate::util::truncate(&s, 40))
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
