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
//!
//! This file is the registry: each tool's schema (`Registry::new`) and its
//! dispatch (`Registry::run`). Each tool's code lives in its own file.

mod cron;
mod exec;
mod files;
mod html_text;
mod memory;
mod shell_words;
mod skill;
mod web;

use crate::sandbox::resolve_program;
pub use html_text::html_to_text;
pub use shell_words::split_words;

mod message;

use super::skills::{self, Skill};
use crate::config::{Config, ExecTool};
use crate::llm::ToolSpec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest tool result handed back to the model, in bytes.
const MAX_RESULT: usize = 8 * 1024;

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
            secret_roots: exec::secret_roots(),
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
