//! Loading, validating and editing `pinch.json`.
//!
//! Pipeline: read the file (or use embedded defaults when there is none),
//! refuse it if group/others can read it, strip comments and trailing commas,
//! parse into the typed schema (syntax and type errors carry line and
//! column), resolve `$NAME` references, then check the cross-field rules.
//! Every error names the file, the position, the field path and the fix.
//! `set` edits one field, re-validates the whole file before writing it and
//! appends a line to `logs/config-audit.jsonl`.

pub mod bounds;
pub mod env;
pub mod json5;
pub mod jsonc;
pub mod openclaw;
pub mod renames;
pub mod schema;
pub mod session;
pub mod storage;

pub use schema::*;

use crate::home::{self, Home};
use std::fmt;
use std::path::{Path, PathBuf};

/// A config problem, with enough context for a person to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<built-in defaults>".into());
        if self.line > 0 {
            write!(f, "config error in {file}:{}:{}", self.line, self.column)?;
        } else {
            write!(f, "config error in {file}")?;
        }
        if !self.path.is_empty() {
            write!(f, " at `{}`", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// A loaded, resolved and validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub cfg: Config,
    /// The file it came from; `None` means built-in defaults.
    pub file: Option<PathBuf>,
}

/// The provider every fresh install gets: llama.cpp's server on loopback.
pub const LOCAL_PROVIDER: &str = "local";
pub const LOCAL_BASE_URL: &str = "http://127.0.0.1:8080/v1";

struct Source<'a> {
    file: Option<&'a Path>,
    /// The strict JSON the schema is parsed from.
    text: &'a str,
    /// The file as the user wrote it (JSON5), for line and column.
    original: &'a str,
    map: &'a json5::Converted,
}

impl Source<'_> {
    /// Line and column in the user's file of byte `offset` of `text`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        jsonc::line_col(self.original, self.map.input_offset(offset))
    }

    fn err_at(
        &self,
        offset: Option<usize>,
        path: &str,
        message: String,
        fix: String,
    ) -> ConfigError {
        let (line, column) = offset.map(|o| self.line_col(o)).unwrap_or((0, 0));
        ConfigError {
            file: self.file.map(Path::to_path_buf),
            line,
            column,
            path: path.to_string(),
            message,
            fix,
        }
    }
    fn err_path(&self, path: &str, message: String, fix: String) -> ConfigError {
        self.err_at(jsonc::offset_of(self.text, path), path, message, fix)
    }
}

/// Loads the config for `home`, from `explicit` when given.
pub fn load(home: &Home, explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let dotenv_path = home.dotenv();
    let plain = |msg: String, fix: &str, file: &Path| ConfigError {
        file: Some(file.to_path_buf()),
        line: 0,
        column: 0,
        path: String::new(),
        message: msg,
        fix: fix.to_string(),
    };
    home::check_private(&dotenv_path).map_err(|m| split_fix(m, &dotenv_path))?;
    let dotenv = env::load_dotenv(&dotenv_path)
        .map_err(|m| plain(m, "use KEY=value lines", &dotenv_path))?;
    let vars = env::Vars::from_process(dotenv);
    let file = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.config());
    let text = match read_capped(&file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => None,
        Err(e) => {
            return Err(plain(
                format!("cannot read: {e}"),
                "check the path given to --config (or unset it to use $PINCH_HOME/pinch.json)",
                &file,
            ))
        }
    };
    match text {
        None => parse_str("{}", None, &vars).map(|cfg| Loaded { cfg, file: None }),
        Some(text) => {
            home::check_private(&file).map_err(|m| split_fix(m, &file))?;
            parse_str(&text, Some(&file), &vars).map(|cfg| Loaded {
                cfg,
                file: Some(file),
            })
        }
    }
}

fn split_fix(m: String, file: &Path) -> ConfigError {
    let (message, fix) = match m.split_once("\n  fix: ") {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (m, String::new()),
    };
    ConfigError {
        file: Some(file.to_path_buf()),
        line: 0,
        column: 0,
        path: String::new(),
        message,
        fix,
    }
}

/// Parses, resolves and validates config text (JSON5, which includes plain
/// JSON). `file` is only for messages. Keys OpenClaw defines and pinch does
/// not implement are dropped and listed in `Config::ignored`.
pub fn parse_str(text: &str, file: Option<&Path>, vars: &env::Vars) -> Result<Config, ConfigError> {
    // Renamed keys keep working, with a warning naming the new key.
    let (renamed, applied) = renames::apply(text, renames::RENAMES);
    for a in &applied {
        log::warn!("{}", a.warning());
    }
    let text = renamed.as_str();
    let converted = json5::to_json(text).map_err(|e| {
        let (line, column) = jsonc::line_col(text, e.offset);
        ConfigError {
            file: file.map(Path::to_path_buf),
            line,
            column,
            path: String::new(),
            message: e.message,
            fix: "fix the JSON5 at that position".into(),
        }
    })?;
    let mut json = converted.json.clone();
    let mut ignored: Vec<openclaw::IgnoredKey> = Vec::new();
    // Each round drops one OpenClaw-only member; a file has fewer members
    // than bytes, so this ends.
    for _ in 0..=json.len() {
        let src = Source {
            file,
            text: &json,
            original: text,
            map: &converted,
        };
        let err = match parse_once(&src, vars) {
            Ok(mut cfg) => {
                cfg.ignored = ignored;
                return Ok(cfg);
            }
            Err(e) => e,
        };
        let removed = openclaw::unsupported_member(&err.path)
            .and_then(|member| jsonc::remove_member(&json, &member).map(|r| (member, r)));
        let Some((member, (next, at))) = removed else {
            return Err(with_openclaw_hint(err));
        };
        let (line, column) = src.line_col(at);
        ignored.push(openclaw::IgnoredKey {
            path: member,
            line,
            column,
        });
        json = next;
    }
    Err(ConfigError {
        file: file.map(Path::to_path_buf),
        line: 0,
        column: 0,
        path: String::new(),
        message: "too many ignored keys".into(),
        fix: String::new(),
    })
}

/// For an unknown key, suggests the nearest key among pinch's and
/// OpenClaw's names at that level when that is closer than pinch's alone.
fn with_openclaw_hint(mut err: ConfigError) -> ConfigError {
    let Some(rest) = err.message.strip_prefix("unknown field `") else {
        return err;
    };
    let unknown = rest.split('`').next().unwrap_or("").to_string();
    let parent = match err.path.rfind(['.', '[']) {
        Some(i) => err.path.get(..i).unwrap_or(""),
        None => "",
    };
    let mut names: Vec<String> = err
        .message
        .split("expected one of ")
        .nth(1)
        .or_else(|| err.message.split("expected ").nth(1))
        .map(|s| {
            s.split(", ")
                .map(|x| x.trim_matches('`').to_string())
                .collect()
        })
        .unwrap_or_default();
    names.extend(
        openclaw::known_children(parent)
            .iter()
            .map(|s| s.to_string()),
    );
    if let Some(near) = crate::util::nearest(&unknown, names.iter().map(String::as_str)) {
        err.fix = if openclaw::unsupported_member(&if parent.is_empty() {
            near.to_string()
        } else {
            format!("{parent}.{near}")
        })
        .is_some()
        {
            format!("did you mean `{near}`? (an OpenClaw key pinch accepts and ignores)")
        } else {
            format!("did you mean `{near}`?")
        };
    }
    err
}

fn parse_once(src: &Source, vars: &env::Vars) -> Result<Config, ConfigError> {
    // Typed parse of the unresolved text: serde_json positions every syntax
    // and type error, and references are plain strings at this point.
    if let Err(e) = serde_json::from_str::<Config>(src.text) {
        return Err(serde_error(src, &e));
    }
    let mut value: serde_json::Value =
        serde_json::from_str(src.text).map_err(|e| serde_error(src, &e))?;
    if !value.is_object() {
        return Err(src.err_at(
            Some(src.text.len() - src.text.trim_start().len()),
            "",
            "the config must be a JSON object".into(),
            "start the file with { and put the settings inside, e.g. {\"gateway\": {\"port\": 18789}}".into(),
        ));
    }
    if let Some((path, text)) = bounds::bad_reference(&value, "") {
        return Err(src.err_path(
            &path,
            format!("{text:?} looks like a reference but is not a valid one"),
            "write $NAME or ${NAME} with letters, digits and _ (not starting with a digit); write $${ for a literal ${".into(),
        ));
    }
    if let Ok(typed) = serde_json::from_str::<Config>(src.text) {
        let typed = serde_json::to_value(&typed).unwrap_or_default();
        if let Some(path) = bounds::array_for_object(&value, &typed, "") {
            return Err(src.err_path(
                &path,
                "a list is given where an object belongs".into(),
                "write the settings as an object with named keys, e.g. \"gateway\": {\"bind\": \"lan\", \"port\": 18789}".into(),
            ));
        }
    }
    if let Err(u) = env::substitute(&mut value, vars, "") {
        return Err(src.err_path(
            &u.path,
            format!("${} is not set", u.var),
            format!(
                "set {} in the environment, in $PINCH_HOME/.env (`{}=...`) or as a systemd credential",
                u.var, u.var
            ),
        ));
    }
    // Through text rather than `from_value`: the typed tree then has one
    // deserializer instantiation (serde_json's text reader, used above for
    // the positioned errors) instead of two, about 80 KB of binary. The
    // position of an error here is in the re-serialized text, so it is cut.
    let mut cfg: Config = serde_json::from_str(&value.to_string()).map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) => full.get(..i).unwrap_or(&full).to_string(),
            None => full,
        };
        src.err_at(None, "", message, String::new())
    })?;
    apply_defaults(&mut cfg);
    validate(&cfg).map_err(|invalid| src.err_path(&invalid.path, invalid.problem, invalid.fix))?;
    cfg.dotenv_proxy = crate::net::ProxyVars::from_dotenv(&vars.dotenv);
    Ok(cfg)
}

fn serde_error(src: &Source, e: &serde_json::Error) -> ConfigError {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    let offset = jsonc::offset_at(src.text, e.line(), e.column());
    let (line, column) = src.line_col(offset);
    let mut path = if e.is_syntax() || e.is_eof() {
        String::new()
    } else {
        jsonc::path_at(src.text, offset)
    };
    let fix = if e.is_syntax() || e.is_eof() {
        "fix the syntax at that position (JSON5: comments, trailing commas, unquoted keys and single quotes are allowed)"
            .to_string()
    } else if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = message
            .split("expected one of ")
            .nth(1)
            .or_else(|| message.split("expected ").nth(1))
            .map(|s| s.split(", ").map(|x| x.trim_matches('`')).collect())
            .unwrap_or_default();
        match crate::util::nearest(unknown, expected.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!(
                "remove `{unknown}`; valid keys here: {}",
                expected.join(", ")
            ),
        }
    } else if message.starts_with("unknown variant") {
        "use one of the listed values".to_string()
    } else if message.starts_with("invalid type") {
        "give the value the expected type (numbers and booleans are not quoted)".to_string()
    } else {
        String::new()
    };
    if path.is_empty() && !(e.is_syntax() || e.is_eof()) {
        path = jsonc::path_at(src.text, offset);
    }
    ConfigError {
        file: src.file.map(Path::to_path_buf),
        line,
        column,
        path,
        message,
        fix,
    }
}

/// Fills what an empty config implies: the local llama.cpp provider and a
/// primary model when none is chosen.
pub fn apply_defaults(cfg: &mut Config) {
    if cfg.models.providers.is_empty() {
        cfg.models.providers.insert(
            LOCAL_PROVIDER.into(),
            Provider {
                base_url: LOCAL_BASE_URL.into(),
                api: "openai-completions".into(),
                models: vec![ModelDef {
                    id: "local".into(),
                    name: Some("llama.cpp server".into()),
                    context_window: 4096,
                    max_tokens: 512,
                    ..ModelDef::default()
                }],
                ..Provider::default()
            },
        );
    }
    if cfg.agents.defaults.model.primary.is_none() {
        let first = cfg
            .models
            .providers
            .iter()
            .find_map(|(id, p)| p.models.first().map(|m| format!("{id}/{}", m.id)));
        cfg.agents.defaults.model.primary = first;
    }
}

pub const APIS: [&str; 2] = ["openai-completions", "anthropic-messages"];
pub const CHANNELS: [&str; 6] = [
    "telegram", "slack", "discord", "whatsapp", "wechat", "feishu",
];

/// A config value that cannot be used: where it is, what is wrong, how to fix it.
#[derive(Debug)]
pub(crate) struct Invalid {
    /// The key path, e.g. `gateway.bind`.
    pub(crate) path: String,
    /// What is wrong with the value.
    pub(crate) problem: String,
    /// What to write instead.
    pub(crate) fix: String,
}

impl Invalid {
    pub(crate) fn new(path: String, problem: String, fix: String) -> Invalid {
        Invalid { path, problem, fix }
    }
}

/// Largest config or `.env` file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a config or `.env` file: a regular file (not a FIFO, device or
/// folder, which could block start-up or never end) of at most 1 MiB.
pub fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path)?;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    if !meta.is_file() {
        return Err(invalid(
            "not a regular file (a FIFO, device or folder cannot be a config file)".into(),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{} bytes, over the {MAX_FILE_BYTES}-byte limit",
            meta.len()
        )));
    }
    // O_NONBLOCK: a file swapped for a FIFO after the check cannot block the open.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let mut text = String::new();
    f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(format!("over the {MAX_FILE_BYTES}-byte limit")));
    }
    Ok(text)
}

fn validate(cfg: &Config) -> Result<(), Invalid> {
    let bad = |path: &str, msg: String, fix: String| Err(Invalid::new(path.to_string(), msg, fix));
    let g = &cfg.gateway;
    if parse_bind(&g.bind).is_none() {
        return bad(
            "gateway.bind",
            format!("{:?} is not a bind address", g.bind),
            "use \"loopback\", \"lan\" or an IP address such as \"192.168.1.10\"".into(),
        );
    }
    if g.max_connections == 0 || g.max_connections > 1024 {
        return bad(
            "gateway.maxConnections",
            "must be between 1 and 1024".into(),
            "a Pi needs no more than 32".into(),
        );
    }
    if g.max_body_bytes < 1024 {
        return bad(
            "gateway.maxBodyBytes",
            "must be at least 1024".into(),
            "the default is 262144".into(),
        );
    }
    for (id, p) in &cfg.models.providers {
        let base = format!("models.providers.{id}");
        if !APIS.contains(&p.api.as_str()) {
            let near = crate::util::nearest(&p.api, APIS)
                .map(|n| format!("did you mean \"{n}\"? "))
                .unwrap_or_default();
            return bad(
                &format!("{base}.api"),
                format!("unknown api {:?}", p.api),
                format!("{near}supported: {}", APIS.join(", ")),
            );
        }
        if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            return bad(
                &format!("{base}.baseUrl"),
                format!("{:?} is not an http(s) URL", p.base_url),
                "for example \"https://api.openai.com/v1\" or \"http://127.0.0.1:8080/v1\"".into(),
            );
        }
        if let Some(n) = p.slots {
            if !(1..=256).contains(&n) {
                return bad(
                    &format!("{base}.slots"),
                    format!("{n} is out of range"),
                    "set it to llama-server's --parallel count (1 to 256)".into(),
                );
            }
        }
        if p.models.is_empty() {
            return bad(
                &format!("{base}.models"),
                "a provider needs at least one model".into(),
                "add {\"id\": \"<model id>\"}".into(),
            );
        }
        for (i, m) in p.models.iter().enumerate() {
            if m.id.is_empty() {
                return bad(
                    &format!("{base}.models[{i}].id"),
                    "model id is empty".into(),
                    "set the id the provider's API expects".into(),
                );
            }
            if m.context_window < 512 || m.max_tokens == 0 || m.max_tokens >= m.context_window {
                return bad(&format!("{base}.models[{i}].maxTokens"), format!("maxTokens {} must be above 0 and below contextWindow {} (which must be at least 512)", m.max_tokens, m.context_window), "lower maxTokens or raise contextWindow".into());
            }
        }
    }
    let sel = &cfg.agents.defaults.model;
    let refs = sel
        .primary
        .iter()
        .map(|p| ("agents.defaults.model.primary".to_string(), p))
        .chain(
            sel.fallbacks
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("agents.defaults.model.fallbacks[{i}]"), f)),
        );
    for (path, r) in refs {
        if find_model(cfg, r).is_none() {
            let all: Vec<String> = model_refs(cfg);
            return bad(
                &path,
                format!("{r:?} names no configured model"),
                format!("use \"provider/model\", one of: {}", all.join(", ")),
            );
        }
    }
    let d = &cfg.agents.defaults;
    if d.max_concurrent == 0 || d.max_concurrent > 16 {
        return bad(
            "agents.defaults.maxConcurrent",
            "must be between 1 and 16".into(),
            "2 suits a Pi".into(),
        );
    }
    for (name, ch) in &cfg.channels {
        let base = format!("channels.{name}");
        if !CHANNELS.contains(&name.as_str()) {
            let near = crate::util::nearest(name, CHANNELS)
                .map(|n| format!("did you mean \"{n}\"? "))
                .unwrap_or_default();
            return bad(
                &base,
                format!("unknown channel {name:?}"),
                format!("{near}known channels: {}", CHANNELS.join(", ")),
            );
        }
        validate_channel(&base, ch)?;
    }
    validate_proactive(cfg)?;
    validate_web_search(&cfg.tools.web_search)?;
    bounds::check(cfg)
}

/// A delivery target (`channel:chat`) naming a known channel.
pub fn check_target(to: &str) -> Result<crate::channel::envelope::ReplyTarget, String> {
    let t = crate::channel::envelope::ReplyTarget::parse(to)?;
    if !CHANNELS.contains(&t.channel.as_str()) {
        let near = crate::util::nearest(&t.channel, CHANNELS)
            .map(|n| format!(" (did you mean \"{n}\"?)"))
            .unwrap_or_default();
        return Err(format!(
            "{to:?} names an unknown channel {:?}{near}; known: {}",
            t.channel,
            CHANNELS.join(", ")
        ));
    }
    Ok(t)
}

/// `agents.defaults.heartbeat` and `hooks`.
fn validate_proactive(cfg: &Config) -> Result<(), Invalid> {
    let bad = |path: String, msg: String, fix: &str| Err(Invalid::new(path, msg, fix.to_string()));
    cfg.session.validate()?;
    let mc = cfg.agents.defaults.memory_consolidation.trim();
    if mc != "off" {
        if let Err(e) = crate::sched::parse_every(mc) {
            return bad(
                "agents.defaults.memoryConsolidation".into(),
                e,
                "use an interval such as \"7d\", or \"off\"",
            );
        }
    }
    if let Some(h) = &cfg.agents.defaults.heartbeat {
        let path = "agents.defaults.heartbeat";
        if let Err(e) = h.validate() {
            return bad(path.into(), e, "e.g. {\"every\": \"30m\", \"activeHours\": {\"start\": \"08:00\", \"end\": \"22:00\", \"tz\": \"Europe/Berlin\"}, \"to\": \"telegram:123\"}");
        }
        if let Some(m) = h.model.as_deref().filter(|m| find_model(cfg, m).is_none()) {
            return bad(
                format!("{path}.model"),
                format!("model {m:?} is not configured"),
                "use \"provider/model\" from models.providers",
            );
        }
        if let Some(Err(e)) = h.to.as_deref().map(check_target) {
            return bad(
                format!("{path}.to"),
                e,
                "use channel:chat_id, e.g. \"telegram:123456789\"",
            );
        }
    }
    for (name, hook) in &cfg.hooks {
        let base = format!("hooks.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return bad(
                base,
                format!("hook name {name:?} is not usable in a URL"),
                "use 1-64 letters, digits, '-', '_' or '.'",
            );
        }
        if hook.token.len() < 16 {
            return bad(format!("{base}.token"), "a hook token must be at least 16 characters".into(), "generate one (e.g. `openssl rand -hex 24`), put HOOK_TOKEN=<it> in $PINCH_HOME/.env and set \"token\": \"$HOOK_TOKEN\"");
        }
        if hook.message.trim().is_empty() {
            return bad(
                format!("{base}.message"),
                "the message is empty".into(),
                "say what the assistant should do, e.g. \"A new tag was pushed: {{body}}\"",
            );
        }
        if hook.max_body_bytes == 0 || hook.max_body_bytes > 1024 * 1024 {
            return bad(
                format!("{base}.maxBodyBytes"),
                "must be between 1 and 1048576".into(),
                "the default is 65536",
            );
        }
        if let Some(Err(e)) = hook.to.as_deref().map(check_target) {
            return bad(
                format!("{base}.to"),
                e,
                "use channel:chat_id, e.g. \"telegram:123456789\"",
            );
        }
        if let Some(m) = &hook.model {
            if find_model(cfg, m).is_none() {
                return bad(
                    format!("{base}.model"),
                    format!("{m:?} names no configured model"),
                    &format!(
                        "use \"provider/model\", one of: {}",
                        model_refs(cfg).join(", ")
                    ),
                );
            }
        }
    }
    Ok(())
}

pub const SEARCH_BACKENDS: [&str; 2] = ["tavily", "searxng"];

fn validate_web_search(w: &WebSearchTool) -> Result<(), Invalid> {
    let bad = |path: &str, msg: String, fix: &str| {
        Err(Invalid::new(
            format!("tools.webSearch.{path}"),
            msg,
            fix.to_string(),
        ))
    };
    if !SEARCH_BACKENDS.contains(&w.backend.as_str()) {
        let near = crate::util::nearest(&w.backend, SEARCH_BACKENDS)
            .map(|n| format!("did you mean \"{n}\"? "))
            .unwrap_or_default();
        return bad(
            "backend",
            format!("unknown backend {:?}", w.backend),
            &format!("{near}supported: {}", SEARCH_BACKENDS.join(", ")),
        );
    }
    let url_ok = w.base_url.starts_with("http://") || w.base_url.starts_with("https://");
    if !w.base_url.is_empty() && !url_ok {
        return bad(
            "baseUrl",
            format!("{:?} is not an http(s) URL", w.base_url),
            "for example \"https://api.tavily.com\" or \"http://127.0.0.1:8888\"",
        );
    }
    if w.max_results == 0 || w.max_results > 20 {
        return bad(
            "maxResults",
            "must be between 1 and 20".into(),
            "5 keeps a small model's context light",
        );
    }
    if w.timeout_seconds == 0 || w.timeout_seconds > 120 {
        return bad(
            "timeoutSeconds",
            "must be between 1 and 120".into(),
            "the default is 20",
        );
    }
    if w.enabled && w.backend == "searxng" && w.base_url.is_empty() {
        return bad(
            "baseUrl",
            "the searxng backend needs the address of your instance".into(),
            "set it, e.g. \"http://127.0.0.1:8888\" (the instance must allow format=json)",
        );
    }
    if w.enabled
        && w.backend == "tavily"
        && w.api_key.is_none()
        && (w.base_url.is_empty() || w.base_url.contains("api.tavily.com"))
    {
        return bad(
            "apiKey",
            "api.tavily.com needs an API key".into(),
            "set \"apiKey\": \"$TAVILY_API_KEY\" and put the key in $PINCH_HOME/.env",
        );
    }
    Ok(())
}

fn validate_channel(base: &str, ch: &Channel) -> Result<(), Invalid> {
    let dm = ["pairing", "allowlist", "open", "disabled"];
    let group = ["open", "allowlist", "disabled"];
    if !dm.contains(&ch.dm_policy.as_str()) {
        return Err(Invalid::new(
            format!("{base}.dmPolicy"),
            format!("unknown dmPolicy {:?}", ch.dm_policy),
            format!("use one of: {}", dm.join(", ")),
        ));
    }
    if !group.contains(&ch.group_policy.as_str()) {
        return Err(Invalid::new(
            format!("{base}.groupPolicy"),
            format!("unknown groupPolicy {:?}", ch.group_policy),
            format!("use one of: {}", group.join(", ")),
        ));
    }
    if let Some(mode) = &ch.reply_to_mode {
        let modes = ["off", "first", "all"];
        if !modes.contains(&mode.as_str()) {
            return Err(Invalid::new(
                format!("{base}.replyToMode"),
                format!("unknown replyToMode {mode:?}"),
                format!("use one of: {}", modes.join(", ")),
            ));
        }
    }
    if let Some(streaming) = &ch.streaming {
        match Streaming::parse(streaming) {
            Ok((_, Some(note))) => log::warn!("{base}.streaming: {note}"),
            Ok((_, None)) => {}
            Err(e) => {
                return Err(Invalid::new(
                    format!("{base}.streaming"),
                    e,
                    "e.g. \"streaming\": \"partial\"".into(),
                ))
            }
        }
    }
    let star = ch.allow_from.iter().any(|a| a == "*");
    if ch.dm_policy == "open" && !star {
        return Err(Invalid::new(format!("{base}.dmPolicy"), "dmPolicy \"open\" lets anyone talk to the assistant and must be stated with \"*\" in allowFrom".into(), format!("add \"*\" to {base}.allowFrom, or use \"pairing\"")));
    }
    if ch.dm_policy == "allowlist" && ch.allow_from.is_empty() {
        return Err(Invalid::new(
            format!("{base}.allowFrom"),
            "dmPolicy \"allowlist\" with an empty allowFrom lets nobody in".into(),
            "list sender ids in allowFrom, or use dmPolicy \"pairing\"".into(),
        ));
    }
    Ok(())
}

/// "provider/model" → (provider id, provider, model).
pub fn find_model<'a>(cfg: &'a Config, r: &str) -> Option<(&'a str, &'a Provider, &'a ModelDef)> {
    let (pid, mid) = r.split_once('/')?;
    let (id, p) = cfg.models.providers.get_key_value(pid)?;
    let m = p.models.iter().find(|m| m.id == mid)?;
    Some((id.as_str(), p, m))
}

pub fn model_refs(cfg: &Config) -> Vec<String> {
    cfg.models
        .providers
        .iter()
        .flat_map(|(id, p)| p.models.iter().map(move |m| format!("{id}/{}", m.id)))
        .collect()
}

/// Resolves `gateway.bind` to an IP address.
pub fn parse_bind(bind: &str) -> Option<std::net::IpAddr> {
    match bind {
        "loopback" => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        "lan" => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        other => other.parse().ok(),
    }
}

// ---------------------------------------------------------------------------
// Editing

/// Splits "a.b[2].c" into segments.
fn path_segments(path: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && out.is_empty() {
            return Err(format!("{path:?} is not a field path; write it like gateway.port or models.providers.local.models[0].id"));
        }
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {path:?}"))?;
            let idx: usize = r[..end]
                .parse()
                .map_err(|_| format!("bad index in {path:?}"))?;
            out.push(Seg::Index(idx));
            rest = &r[end + 1..];
        }
    }
    Ok(out)
}

enum Seg {
    Key(String),
    Index(usize),
}

/// Reads a field from the raw (unresolved) config value.
pub fn get_path<'a>(
    v: &'a serde_json::Value,
    path: &str,
) -> Result<Option<&'a serde_json::Value>, String> {
    let mut cur = v;
    for seg in path_segments(path)? {
        let next = match seg {
            Seg::Key(k) => cur.get(&k),
            Seg::Index(i) => cur.get(i),
        };
        match next {
            Some(n) => cur = n,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

fn set_path(
    v: &mut serde_json::Value,
    path: &str,
    new: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let segs = path_segments(path)?;
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match seg {
            Seg::Key(k) => {
                if !cur.is_object() {
                    return Err(format!("cannot set {path}: a parent is not an object"));
                }
                let map = cur.as_object_mut().ok_or("not an object")?;
                if last {
                    return Ok(map
                        .insert(k.clone(), new)
                        .unwrap_or(serde_json::Value::Null));
                }
                let next_is_index = matches!(segs.get(i + 1), Some(Seg::Index(_)));
                cur = map.entry(k.clone()).or_insert_with(|| {
                    if next_is_index {
                        serde_json::json!([])
                    } else {
                        serde_json::json!({})
                    }
                });
            }
            Seg::Index(idx) => {
                let arr = cur
                    .as_array_mut()
                    .ok_or_else(|| format!("cannot set {path}: a parent is not a list"))?;
                if *idx > arr.len() {
                    return Err(format!(
                        "cannot set {path}: index {idx} is past the end (length {})",
                        arr.len()
                    ));
                }
                if *idx == arr.len() {
                    arr.push(serde_json::json!({}));
                }
                if last {
                    return Ok(std::mem::replace(&mut arr[*idx], new));
                }
                cur = &mut arr[*idx];
            }
        }
    }
    Err(format!("{path:?} is empty"))
}

/// True for fields whose values must never be printed.
pub fn is_secret_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    ["token", "apikey", "password", "secret"]
        .iter()
        .any(|s| p.contains(s))
}

/// Replaces literal secrets in a config value by "***" (references like
/// "$NAME" are kept: they reveal nothing).
pub fn redact(v: &mut serde_json::Value, path: &str) {
    match v {
        serde_json::Value::String(s) if is_secret_path(path) && !s.starts_with('$') => {
            *s = "***".into()
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                redact(
                    x,
                    &if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    },
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                redact(x, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

/// Reads the raw config file as a value (comments dropped). Missing => `{}`.
pub fn read_raw(file: &Path) -> Result<serde_json::Value, String> {
    match read_capped(file) {
        Ok(text) => {
            let converted = json5::to_json(&text).map_err(|e| {
                let (line, col) = jsonc::line_col(&text, e.offset);
                format!("{}:{line}:{col}: {}", file.display(), e.message)
            })?;
            serde_json::from_str(&converted.json).map_err(|e| format!("{}: {e}", file.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}

/// Sets `path` to `value_text` (JSON, or a bare string) in `file`, validates
/// the result as a whole, writes it atomically (keeping `<file>.bak`) and
/// appends an audit record. Comments in the file are not preserved.
pub fn set(
    home: &Home,
    file: &Path,
    path: &str,
    value_text: &str,
    source: &str,
) -> Result<(), String> {
    let mut raw = read_raw(file)?;
    let new: serde_json::Value = serde_json::from_str(value_text)
        .unwrap_or_else(|_| serde_json::Value::String(value_text.to_string()));
    let new_bytes = serde_json::to_vec(&new).unwrap_or_default();
    let old = set_path(&mut raw, path, new)?;
    let text = serde_json::to_string_pretty(&raw).map_err(|e| e.to_string())? + "\n";
    let dotenv = env::load_dotenv(&home.dotenv())?;
    parse_str(&text, Some(file), &env::Vars::from_process(dotenv)).map_err(|e| e.to_string())?;
    if file.exists() {
        let _ = std::fs::copy(file, file.with_extension("json.bak"));
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            file.with_extension("json.bak"),
            std::fs::Permissions::from_mode(0o600),
        );
    }
    home::write_private(file, text.as_bytes())?;
    let old_bytes = if old.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&old).unwrap_or_default()
    };
    audit(home, source, &[path.to_string()], &old_bytes, &new_bytes)
}

/// Appends one JSON line to `logs/config-audit.jsonl`: time, source, field
/// paths and shortened hashes of the old and new values — never the values.
pub fn audit(
    home: &Home,
    source: &str,
    paths: &[String],
    old: &[u8],
    new: &[u8],
) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    home.ensure()?;
    let line = serde_json::json!({
        "ts": crate::util::rfc3339(crate::util::now_ms()),
        "source": source,
        "paths": paths,
        "old": if old.is_empty() { serde_json::Value::Null } else { crate::util::short_hash(old).into() },
        "new": crate::util::short_hash(new),
    });
    let file = home.logs().join("config-audit.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file)
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("cannot append to {}: {e}", file.display()))
}

#[cfg(test)]
mod tests;
