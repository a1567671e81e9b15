//! `pinch migrate openclaw`: reads an OpenClaw home (`~/.openclaw` or
//! `$OPENCLAW_STATE_DIR`) and writes a pinch home from it — the config
//! mapped key by key, `.env`, the workspace files and memory notes, skills
//! with their scripts, cron jobs from `cron/jobs.json`, approved senders
//! from `credentials/*-allowFrom.json`, and transcripts stored as JSONL.
//!
//! This file is the I/O shell: it gathers the plan (what to write, what is
//! dropped and why), prints it, and with no conflicts (or `--force`) and
//! without `--dry-run` carries it out. The mapping itself is pure code in
//! `codec.rs`.

pub mod codec;

use crate::home::Home;
use crate::sched::{JobSpec, JobState, Scheduler};
use crate::store::{Store, Turn};
use codec::Dropped;
use lexopt::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The key under which the gateway keeps its job table in the store's kv
/// table (`gateway/reactor/proactive.rs`).
const KV_JOBS: &str = "sched/jobs";
/// Largest single file carried (workspace file, skill file, config).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest transcript file read.
const MAX_TRANSCRIPT_BYTES: u64 = 64 * 1024 * 1024;
/// Files copied per skill, and folder depth inside a skill.
const MAX_SKILL_FILES: usize = 500;
const MAX_SKILL_DEPTH: usize = 8;
/// Sessions imported per agent.
const MAX_SESSIONS: usize = 10_000;

const HELP: &str = "Usage: pinch migrate openclaw [--from DIR] [--to DIR] [--dry-run] [--force]

Reads an OpenClaw home and writes a pinch home from it:
  openclaw.json (JSON5)  → pinch.json, key by key; every key not carried is listed with the reason
  .env, env.vars         → .env (mode 0600; proxy variables included)
  workspace files        → workspace/ (AGENTS.md SOUL.md USER.md IDENTITY.md MEMORY.md HEARTBEAT.md memory/*.md)
  workspace/skills       → workspace/skills/, and <openclaw>/skills → skills/ (scripts included)
  cron/jobs.json         → scheduled jobs (state.redb)
  credentials/*-allowFrom.json → approved senders per channel (state.redb)
  agents/<id>/sessions/*.jsonl → transcripts (state.redb; user and assistant text)

  --from DIR   the OpenClaw home (default $OPENCLAW_STATE_DIR, else ~/.openclaw)
  --to DIR     the pinch home (default $PINCH_HOME, else ~/.pinch)
  --dry-run    print the plan and write nothing
  --force      replace existing pinch files, sessions and jobs (pinch.json and .env are kept as .bak)

Stop the gateway first: the state store has one writer.";

/// Entry point from `pinch migrate`.
pub fn cmd(p: &mut lexopt::Parser, home: &Home) -> Result<i32, String> {
    let mut what: Option<String> = None;
    let mut from: Option<PathBuf> = None;
    let mut to: Option<PathBuf> = None;
    let mut dry_run = false;
    let mut force = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("from") => from = Some(p.value().map_err(|e| e.to_string())?.into()),
            Long("to") => to = Some(p.value().map_err(|e| e.to_string())?.into()),
            Long("dry-run") => dry_run = true,
            Long("force") => force = true,
            Value(v) if what.is_none() => what = v.into_string().ok(),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    if what.as_deref() != Some("openclaw") {
        println!("{HELP}");
        return Ok(2);
    }
    let from = from.unwrap_or_else(default_openclaw_home);
    let target = match to {
        Some(root) => Home { root },
        None => home.clone(),
    };
    let plan = gather(&from, &target)?;
    plan.print(&from, &target, force, dry_run);
    if dry_run {
        println!("\ndry run: nothing was written");
        return Ok(0);
    }
    let conflicts = plan.conflicts();
    if !conflicts.is_empty() && !force {
        return Err(format!(
            "{} of the files, sessions or jobs above already exist in {}; nothing was written. \
             Run again with --force to replace them (pinch.json and .env are kept as .bak).",
            conflicts.len(),
            target.root.display()
        ));
    }
    plan.apply(&target, force)?;
    println!(
        "\nmigrated into {}. Check it with `pinch config check`, then start the gateway.",
        target.root.display()
    );
    Ok(0)
}

/// `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
pub fn default_openclaw_home() -> PathBuf {
    match std::env::var_os("OPENCLAW_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".openclaw"),
    }
}

/// A file to write in the pinch home.
#[derive(Debug)]
struct FileWrite {
    to: PathBuf,
    data: Vec<u8>,
    mode: u32,
    /// Where it came from (for the plan).
    from: String,
    /// The destination already exists (and differs from pinch's starter).
    exists: bool,
}

/// One session's transcript to import.
#[derive(Debug)]
struct SessionImport {
    key: String,
    from: String,
    turns: Vec<Turn>,
    skipped: usize,
    exists: bool,
}

#[derive(Debug, Default)]
struct Plan {
    /// The pinch workspace written to.
    workspace: PathBuf,
    files: Vec<FileWrite>,
    sessions: Vec<SessionImport>,
    jobs: Vec<(JobSpec, bool)>,
    /// (channel, sender ids) approvals.
    approvals: Vec<(String, Vec<String>)>,
    dropped: Vec<Dropped>,
    /// Whole things not carried, each a sentence.
    not_carried: Vec<String>,
}

/// Reads a regular file (a symlink is followed: users link their config
/// and notes) of at most `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut data = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() as u64 > cap {
        return Err(format!(
            "{}: larger than the {cap} bytes carried",
            path.display()
        ));
    }
    Ok(data)
}

/// Expands a leading `~/` against $HOME.
fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(p),
    }
}

fn now_ms() -> u64 {
    crate::util::now_ms()
}

fn gather(from: &Path, to: &Home) -> Result<Plan, String> {
    if !from.is_dir() {
        return Err(format!(
            "{} is not an OpenClaw home (no such folder); give it with --from DIR",
            from.display()
        ));
    }
    let mut plan = Plan {
        workspace: to.workspace(),
        ..Plan::default()
    };
    // The store is opened only if it exists: a dry run creates nothing.
    let store = if to.state().exists() {
        Some(Store::open(&to.state())?)
    } else {
        None
    };

    // --- config
    let oc_path = std::env::var_os("OPENCLAW_CONFIG_PATH")
        .map(PathBuf::from)
        .filter(|p| p.starts_with(from))
        .unwrap_or_else(|| from.join("openclaw.json"));
    let mut workspace_from = from.join("workspace");
    let mut env_vars = Vec::new();
    match read_capped(&oc_path, MAX_FILE_BYTES) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{}: not UTF-8 text", oc_path.display()))?;
            let value = codec::read_json5_value(&text)
                .map_err(|e| format!("{}: {e}", oc_path.display()))?;
            let mapped = codec::map_config(&value);
            if let Some(ws) = &mapped.workspace {
                workspace_from = expand_home(ws);
            }
            env_vars = mapped.env_vars;
            plan.dropped.extend(mapped.dropped);
            let mut text =
                serde_json::to_string_pretty(&mapped.config).map_err(|e| e.to_string())?;
            text.push('\n');
            plan.add_file(to.config(), text.into_bytes(), 0o600, &oc_path);
        }
        Err(e) if !oc_path.exists() => {
            plan.not_carried
                .push(format!("config: no {} ({e})", oc_path.display()));
        }
        Err(e) => return Err(e),
    }
    if let Some(ws) = std::env::var_os("OPENCLAW_WORKSPACE_DIR") {
        workspace_from = PathBuf::from(ws);
    }

    // --- .env (the file, then env.vars for names it does not define)
    let mut env_text = match read_capped(&from.join(".env"), MAX_FILE_BYTES) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let defined = crate::config::env::parse_dotenv(&env_text).unwrap_or_default();
    for (name, value) in env_vars {
        if !defined.contains_key(&name) {
            if !env_text.is_empty() && !env_text.ends_with('\n') {
                env_text.push('\n');
            }
            env_text.push_str(&format!("{name}={}\n", dotenv_quote(&value)));
        }
    }
    if let Err((line, msg)) = crate::config::env::parse_dotenv(&env_text) {
        plan.not_carried.push(format!(
            ".env: line {line} is not KEY=value ({msg}); fix it in {} and run again",
            from.join(".env").display()
        ));
    } else if !env_text.is_empty() {
        plan.add_file(
            to.dotenv(),
            env_text.into_bytes(),
            0o600,
            &from.join(".env"),
        );
    }

    // --- workspace files and memory notes
    let ws_to = to.workspace();
    if workspace_from.is_dir() {
        for name in [
            "AGENTS.md",
            "SOUL.md",
            "USER.md",
            "IDENTITY.md",
            "MEMORY.md",
            "HEARTBEAT.md",
        ] {
            let src = workspace_from.join(name);
            if !src.exists() {
                continue;
            }
            match read_capped(&src, MAX_FILE_BYTES) {
                Ok(data) => plan.add_file(ws_to.join(name), data, 0o600, &src),
                Err(e) => plan.not_carried.push(e),
            }
        }
        for (name, why) in [
            ("BOOTSTRAP.md", "OpenClaw's first-run ritual"),
            ("TOOLS.md", "retired by OpenClaw (merged into AGENTS.md)"),
            ("DREAMS.md", "OpenClaw's memory consolidation output"),
        ] {
            if workspace_from.join(name).exists() {
                plan.not_carried
                    .push(format!("workspace/{name}: not used by pinch ({why})"));
            }
        }
        if let Ok(entries) = std::fs::read_dir(workspace_from.join("memory")) {
            let mut notes: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect();
            crate::sort::sort(&mut notes);
            for src in notes.into_iter().take(10_000) {
                let Some(file) = src.file_name() else {
                    continue;
                };
                match read_capped(&src, MAX_FILE_BYTES) {
                    Ok(data) => plan.add_file(ws_to.join("memory").join(file), data, 0o600, &src),
                    Err(e) => plan.not_carried.push(e),
                }
            }
        }
    } else {
        plan.not_carried.push(format!(
            "workspace: {} does not exist",
            workspace_from.display()
        ));
    }

    // --- skills: the workspace's and OpenClaw's managed ones
    for (src_root, dst_root) in [
        (workspace_from.join("skills"), ws_to.join("skills")),
        (from.join("skills"), to.root.join("skills")),
    ] {
        let Ok(entries) = std::fs::read_dir(&src_root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in entries.flatten().map(|e| e.path()) {
            if !(p.join("SKILL.md").is_file() || p.join("skill.md").is_file()) {
                continue;
            }
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                dirs.push(p);
            } else {
                plan.not_carried.push(format!(
                    "{}: a symlinked skill folder; install its target with `pinch skills install DIR`",
                    p.display()
                ));
            }
        }
        crate::sort::sort(&mut dirs);
        for dir in dirs {
            let Some(name) = dir.file_name().map(|n| n.to_owned()) else {
                continue;
            };
            let mut files = Vec::new();
            let mut problems = Vec::new();
            collect_tree(&dir, &dir, 0, &mut files, &mut problems);
            for p in problems {
                plan.not_carried.push(p);
            }
            for (rel, mode) in files {
                let src = dir.join(&rel);
                match read_capped(&src, MAX_FILE_BYTES) {
                    Ok(data) => {
                        // OpenClaw accepts skill.md too; pinch reads SKILL.md.
                        let rel = if rel == Path::new("skill.md") {
                            PathBuf::from("SKILL.md")
                        } else {
                            rel
                        };
                        plan.add_file(dst_root.join(&name).join(rel), data, mode, &src)
                    }
                    Err(e) => plan.not_carried.push(e),
                }
            }
        }
    }
    if from.join(".agents").join("skills").is_dir()
        || workspace_from.join(".agents/skills").is_dir()
    {
        plan.not_carried.push(
            ".agents/skills: not read; copy those skills with `pinch skills install DIR`".into(),
        );
    }

    // --- cron jobs
    let jobs_path = from.join("cron").join("jobs.json");
    match read_capped(&jobs_path, MAX_FILE_BYTES) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match codec::read_json5_value(&text) {
                Ok(v) => {
                    let (specs, dropped) = codec::map_cron_jobs(&v, now_ms());
                    plan.dropped.extend(dropped);
                    let existing = existing_jobs(store.as_ref());
                    for spec in specs {
                        let exists = existing.iter().any(|(s, _)| s.name == spec.name);
                        plan.jobs.push((spec, exists));
                    }
                }
                Err(e) => plan
                    .not_carried
                    .push(format!("cron jobs: {}: {e}", jobs_path.display())),
            }
        }
        Err(_) => plan.not_carried.push(
            "cron jobs: no cron/jobs.json; jobs kept only in OpenClaw's SQLite store (cron_jobs) \
             are not read — re-create them with `pinch cron add`"
                .into(),
        ),
    }

    // --- approved senders
    if let Ok(entries) = std::fs::read_dir(from.join("credentials")) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        crate::sort::sort(&mut paths);
        for path in paths {
            let Some(fname) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(channel) = codec::allow_from_channel(fname) {
                if !crate::config::CHANNELS.contains(&channel) {
                    plan.not_carried.push(format!(
                        "credentials/{fname}: pinch has no {channel} channel"
                    ));
                    continue;
                }
                let senders = read_capped(&path, MAX_FILE_BYTES)
                    .ok()
                    .and_then(|b| codec::read_json5_value(&String::from_utf8_lossy(&b)).ok())
                    .map(|v| codec::allow_from_file(channel, &v))
                    .unwrap_or_default();
                if senders.is_empty() {
                    continue;
                }
                match plan.approvals.iter_mut().find(|(c, _)| c == channel) {
                    Some((_, list)) => list.extend(senders),
                    None => plan.approvals.push((channel.to_string(), senders)),
                }
            } else if fname.ends_with("-pairing.json") {
                plan.not_carried.push(format!(
                    "credentials/{fname}: pending pairing codes (they expire within an hour; senders ask again)"
                ));
            }
        }
    }
    for (_, list) in plan.approvals.iter_mut() {
        crate::sort::sort(list);
        list.dedup();
    }

    // --- transcripts
    gather_transcripts(from, store.as_ref(), &mut plan);

    // --- what lives only in SQLite
    let mut sqlite = Vec::new();
    for p in [
        from.join("state").join("openclaw.sqlite"),
        from.join("openclaw.sqlite"),
    ] {
        if p.exists() {
            sqlite.push(p.display().to_string());
        }
    }
    if let Ok(agents) = std::fs::read_dir(from.join("agents")) {
        for a in agents.flatten() {
            let p = a.path().join("agent").join("openclaw-agent.sqlite");
            if p.exists() {
                sqlite.push(p.display().to_string());
            }
        }
    }
    if !sqlite.is_empty() {
        plan.not_carried.push(format!(
            "SQLite stores ({}): pinch does not read SQLite; transcripts, cron jobs, pairings and \
             the delivery queue kept only there are not carried",
            sqlite.join(", ")
        ));
    }
    if from.join("delivery-queue").is_dir() {
        plan.not_carried.push(
            "delivery-queue/: messages OpenClaw had not delivered yet are not carried".into(),
        );
    }
    Ok(plan)
}

/// `KEY=value` with the value quoted when it needs it.
fn dotenv_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,%".contains(c))
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Regular files under `dir` (relative paths, with their mode), refusing
/// symlinks and anything else that is not a plain file or folder.
fn collect_tree(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut Vec<(PathBuf, u32)>,
    problems: &mut Vec<String>,
) {
    if depth > MAX_SKILL_DEPTH {
        problems.push(format!("{}: nested too deeply; not carried", dir.display()));
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    crate::sort::sort(&mut paths);
    for p in paths {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == ".git" || name == "node_modules" || name == ".clawhub" || name == ".clawdhub" {
            continue;
        }
        if meta.file_type().is_symlink() {
            problems.push(format!("{}: a symlink; not carried", p.display()));
        } else if meta.is_dir() {
            collect_tree(root, &p, depth + 1, files, problems);
        } else if meta.is_file() {
            if files.len() >= MAX_SKILL_FILES {
                problems.push(format!(
                    "{}: more than {MAX_SKILL_FILES} files; the rest are not carried",
                    root.display()
                ));
                return;
            }
            if let Ok(rel) = p.strip_prefix(root) {
                let exec = meta.permissions().mode() & 0o111 != 0;
                files.push((rel.to_path_buf(), if exec { 0o700 } else { 0o600 }));
            }
        }
    }
}

/// A trigger as a user wrote it.
fn describe(t: &crate::sched::Trigger) -> String {
    use crate::sched::Trigger;
    match t {
        Trigger::Cron { expr, tz } => format!("cron \"{expr}\" ({tz})"),
        Trigger::Every { millis, .. } => format!("every {} s", millis / 1000),
        Trigger::At { at_ms } => format!("at {}", crate::util::rfc3339(*at_ms)),
    }
}

fn existing_jobs(store: Option<&Store>) -> Vec<(JobSpec, JobState)> {
    store
        .and_then(|s| s.kv_get(KV_JOBS).ok().flatten())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn gather_transcripts(from: &Path, store: Option<&Store>, plan: &mut Plan) {
    let Ok(agents) = std::fs::read_dir(from.join("agents")) else {
        return;
    };
    let mut agent_dirs: Vec<PathBuf> = agents.flatten().map(|e| e.path()).collect();
    crate::sort::sort(&mut agent_dirs);
    for agent_dir in agent_dirs {
        let agent = agent_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let sessions_dir = agent_dir.join("sessions");
        let index_path = sessions_dir.join("sessions.json");
        let Ok(bytes) = read_capped(&index_path, MAX_TRANSCRIPT_BYTES) else {
            if sessions_dir.is_dir() {
                plan.not_carried.push(format!(
                    "{}: no sessions.json, so the .jsonl files cannot be matched to chats",
                    sessions_dir.display()
                ));
            }
            continue;
        };
        let index = match codec::read_json5_value(&String::from_utf8_lossy(&bytes)) {
            Ok(v) => v,
            Err(e) => {
                plan.not_carried
                    .push(format!("{}: {e}", index_path.display()));
                continue;
            }
        };
        let mut used = Vec::new();
        for (oc_key, entry) in index.as_object().into_iter().flatten().take(MAX_SESSIONS) {
            let Some(session_id) = entry.get("sessionId").and_then(|v| v.as_str()) else {
                continue;
            };
            let file = entry
                .get("sessionFile")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
                .filter(|p| p.starts_with(&sessions_dir))
                .unwrap_or_else(|| sessions_dir.join(format!("{session_id}.jsonl")));
            // Session ids name files: nothing outside the folder.
            if session_id.contains('/') || session_id.contains("..") {
                continue;
            }
            used.push(file.clone());
            let text = match read_capped(&file, MAX_TRANSCRIPT_BYTES) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    plan.not_carried.push(format!("transcript {oc_key}: {e}"));
                    continue;
                }
            };
            let fallback = entry.get("updatedAt").and_then(|v| v.as_u64()).unwrap_or(0);
            let imported = codec::map_transcript(&text, fallback);
            if imported.turns.is_empty() {
                continue;
            }
            let key = if agent == "main" {
                codec::session_key(oc_key)
            } else {
                format!("openclaw:{oc_key}")
            };
            let exists = store.and_then(|s| s.session(&key).ok().flatten()).is_some();
            plan.sessions.push(SessionImport {
                key,
                from: file.display().to_string(),
                turns: imported.turns,
                skipped: imported.skipped,
                exists,
            });
        }
        if let Ok(entries) = std::fs::read_dir(&sessions_dir) {
            let others = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && !used.contains(p))
                .count();
            if others > 0 {
                plan.not_carried.push(format!(
                    "{}: {others} transcript file(s) not in sessions.json (earlier sessions ended by a reset)",
                    sessions_dir.display()
                ));
            }
        }
    }
}

/// pinch's starter content for a workspace file, if it has one: a file
/// that still holds exactly that is replaced without `--force`.
fn is_starter(path: &Path, ws: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(ws) else {
        return false;
    };
    crate::workspace::FILES.iter().any(|(name, body)| {
        rel == Path::new(name) && std::fs::read(path).is_ok_and(|b| b == body.as_bytes())
    })
}

impl Plan {
    fn add_file(&mut self, to: PathBuf, data: Vec<u8>, mode: u32, from: &Path) {
        let exists = to.exists() && !is_starter(&to, &self.workspace);
        self.files.push(FileWrite {
            to,
            data,
            mode,
            from: from.display().to_string(),
            exists,
        });
    }

    fn conflicts(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.exists)
            .map(|f| f.to.display().to_string())
            .collect();
        out.extend(
            self.sessions
                .iter()
                .filter(|s| s.exists)
                .map(|s| format!("session {}", s.key)),
        );
        out.extend(
            self.jobs
                .iter()
                .filter(|(_, e)| *e)
                .map(|(j, _)| format!("job {}", j.name)),
        );
        out
    }

    fn print(&self, from: &Path, to: &Home, force: bool, dry_run: bool) {
        let verb = if dry_run { "would write" } else { "writes" };
        println!(
            "migrating OpenClaw home {} → pinch home {}",
            from.display(),
            to.root.display()
        );
        let mark = |exists: bool| match (exists, force) {
            (false, _) => "new",
            (true, true) => "REPLACE",
            (true, false) => "EXISTS",
        };
        println!("\nfiles ({verb}):");
        for f in &self.files {
            println!(
                "  [{}] {} ({} bytes, from {})",
                mark(f.exists),
                f.to.display(),
                f.data.len(),
                f.from
            );
        }
        if !self.sessions.is_empty() {
            println!("\ntranscripts ({verb} into {}):", to.state().display());
            for s in &self.sessions {
                println!(
                    "  [{}] session {}: {} turns ({} tool, thinking or other entries left out) from {}",
                    mark(s.exists),
                    s.key,
                    s.turns.len(),
                    s.skipped,
                    s.from
                );
            }
        }
        if !self.jobs.is_empty() {
            println!("\ncron jobs ({verb} into {}):", to.state().display());
            for (j, exists) in &self.jobs {
                println!(
                    "  [{}] {}: {}{}",
                    mark(*exists),
                    j.name,
                    describe(&j.trigger),
                    j.deliver_to
                        .as_deref()
                        .map(|t| format!(" → {t}"))
                        .unwrap_or_default()
                );
            }
        }
        if !self.approvals.is_empty() {
            println!("\napproved senders ({verb} into {}):", to.state().display());
            for (channel, senders) in &self.approvals {
                println!("  {channel}: {}", senders.join(", "));
            }
        }
        if !self.dropped.is_empty() {
            println!("\nnot carried from the config ({}):", self.dropped.len());
            for d in &self.dropped {
                println!("  {}: {}", d.what, d.reason);
            }
        }
        if !self.not_carried.is_empty() {
            println!("\nnot carried:");
            for n in &self.not_carried {
                println!("  {n}");
            }
        }
    }

    fn apply(&self, to: &Home, force: bool) -> Result<(), String> {
        to.ensure()?;
        for f in &self.files {
            if f.exists && !force {
                continue;
            }
            if let Some(dir) = f.to.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            if f.exists && (f.to == to.config() || f.to == to.dotenv()) {
                let bak = f.to.with_extension(match f.to.extension() {
                    Some(x) => format!("{}.bak", x.to_string_lossy()),
                    None => "bak".into(),
                });
                let bak = if f.to == to.dotenv() {
                    to.root.join(".env.bak")
                } else {
                    bak
                };
                std::fs::copy(&f.to, &bak)
                    .map_err(|e| format!("cannot keep {}: {e}", bak.display()))?;
                let _ = std::fs::set_permissions(&bak, std::fs::Permissions::from_mode(0o600));
            }
            crate::home::write_private(&f.to, &f.data)?;
            std::fs::set_permissions(&f.to, std::fs::Permissions::from_mode(f.mode))
                .map_err(|e| format!("cannot set permissions on {}: {e}", f.to.display()))?;
        }
        if self.sessions.is_empty() && self.jobs.is_empty() && self.approvals.is_empty() {
            return Ok(());
        }
        let store = Store::open(&to.state())?;
        let now = now_ms();
        for s in &self.sessions {
            if s.exists {
                if !force {
                    continue;
                }
                store.reset(&s.key)?;
            }
            for chunk in s.turns.chunks(500) {
                store.append(
                    &s.key,
                    chunk,
                    crate::llm::TokenUsage::default(),
                    chunk.last().map_or(now, |t| t.ts_ms),
                )?;
            }
        }
        if !self.jobs.is_empty() {
            let mut sched = Scheduler::restore(existing_jobs(Some(&store)), now);
            for (spec, exists) in &self.jobs {
                if *exists {
                    if !force {
                        continue;
                    }
                    sched.remove(&spec.name);
                }
                sched.add(spec.clone(), now)?;
            }
            let bytes = serde_json::to_vec(&sched.snapshot()).map_err(|e| e.to_string())?;
            store.kv_put(KV_JOBS, &bytes)?;
        }
        for (channel, senders) in &self.approvals {
            let mut pairing: crate::channel::pairing::Pairing =
                crate::queue::channel_state_get(&store, channel, "pairing")?
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
            for s in senders {
                pairing.grant(s, "", now)?;
            }
            let bytes = serde_json::to_vec(&pairing).map_err(|e| e.to_string())?;
            crate::queue::channel_state_put(&store, channel, "pairing", &bytes)?;
        }
        Ok(())
    }
}
