//! The pure half of `pinch migrate openclaw`: OpenClaw values in, pinch
//! values out, with every key that is not carried named and explained. No
//! file I/O here; `super` reads the OpenClaw home and writes the pinch one.

use crate::llm::{Message, Role};
use crate::sched::{JobSpec, SessionTarget, Trigger};
use crate::store::Turn;
use serde_json::{json, Map, Value};

/// One thing not carried over, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub what: String,
    pub reason: String,
}

fn drop_key(out: &mut Vec<Dropped>, what: impl Into<String>, reason: impl Into<String>) {
    out.push(Dropped {
        what: what.into(),
        reason: reason.into(),
    });
}

/// Reads JSON5 text (OpenClaw's config format: comments, trailing commas,
/// unquoted keys, single quotes, hex and `+`/leading-dot numbers) into a
/// JSON value, with the config loader's own converter (positions in errors
/// are line:column of `text`).
pub fn read_json5_value(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let converted = crate::config::json5::to_json(text).map_err(|e| {
        let (line, column) = crate::config::jsonc::line_col(text, e.offset);
        format!("{line}:{column}: {}", e.message)
    })?;
    // serde_json refuses nesting deeper than 128 levels, so a hostile file
    // cannot recurse without bound.
    serde_json::from_str::<Value>(&converted.json).map_err(|e| e.to_string())
}

/// The pinch config made from openclaw.json, plus what it does not carry.
#[derive(Debug, Clone, Default)]
pub struct ConfigPlan {
    pub config: Value,
    /// `env.vars` from openclaw.json: added to `.env` (without replacing).
    pub env_vars: Vec<(String, String)>,
    /// `agents.defaults.workspace`, if set (where to read workspace files).
    pub workspace: Option<String>,
    pub dropped: Vec<Dropped>,
}

const UNSUPPORTED: &str = "not supported by pinch";

/// Maps openclaw.json key by key.
pub fn map_config(oc: &Value) -> ConfigPlan {
    let mut plan = ConfigPlan {
        config: json!({}),
        ..ConfigPlan::default()
    };
    let Some(top) = oc.as_object() else {
        drop_key(
            &mut plan.dropped,
            "openclaw.json",
            "not a JSON object; nothing mapped",
        );
        return plan;
    };
    let mut cfg = Map::new();
    for (key, value) in top {
        match key.as_str() {
            "$schema" => drop_key(&mut plan.dropped, key, "OpenClaw's schema reference"),
            "gateway" => {
                if let Some(g) = map_gateway(value, &mut plan.dropped) {
                    cfg.insert("gateway".into(), g);
                }
            }
            "models" => {
                if let Some(m) = map_models(value, &mut plan.dropped) {
                    cfg.insert("models".into(), m);
                }
            }
            "agents" => {
                if let Some(a) = map_agents(value, &mut plan) {
                    cfg.insert("agents".into(), a);
                }
            }
            "channels" => {
                if let Some(c) = map_channels(value, &mut plan.dropped) {
                    cfg.insert("channels".into(), c);
                }
            }
            "env" => map_env(value, &mut plan),
            "proxy" => {
                let url = value.get("proxyUrl").and_then(Value::as_str);
                let enabled = value
                    .get("enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                match url {
                    Some(u) if enabled => {
                        cfg.insert("network".into(), json!({ "proxy": u }));
                    }
                    Some(_) => drop_key(
                        &mut plan.dropped,
                        "proxy.proxyUrl",
                        "the proxy is disabled (proxy.enabled is false)",
                    ),
                    None => {}
                }
                for (k, _) in value.as_object().into_iter().flatten() {
                    if k != "proxyUrl" && k != "enabled" {
                        drop_key(&mut plan.dropped, format!("proxy.{k}"), UNSUPPORTED);
                    }
                }
            }
            "logging" => {
                if let Some(level) = value.get("level").and_then(Value::as_str) {
                    cfg.insert("logging".into(), json!({ "level": level }));
                }
                for (k, _) in value.as_object().into_iter().flatten() {
                    if k != "level" {
                        drop_key(&mut plan.dropped, format!("logging.{k}"), UNSUPPORTED);
                    }
                }
            }
            "hooks" => drop_key(
                &mut plan.dropped,
                "hooks",
                "OpenClaw's hook mappings differ; re-create each as hooks.<name> {token, message}",
            ),
            "cron" => drop_key(
                &mut plan.dropped,
                "cron",
                "scheduler settings; the jobs themselves are migrated separately",
            ),
            "skills" => drop_key(
                &mut plan.dropped,
                "skills",
                "per-skill settings; put a skill's variables in .env instead",
            ),
            "session" => drop_key(
                &mut plan.dropped,
                "session",
                "session settings are not carried; set session.dmScope and session.reset in pinch.json",
            ),
            "tools" => drop_key(
                &mut plan.dropped,
                "tools",
                "tool policies differ; see tools.exec.allow in pinch.json",
            ),
            "update" | "telemetry" | "discovery" => drop_key(
                &mut plan.dropped,
                key,
                "pinch has no update checks, telemetry or network discovery",
            ),
            other => drop_key(&mut plan.dropped, other, UNSUPPORTED),
        }
    }
    prune_model_refs(&mut cfg, &mut plan.dropped);
    plan.config = Value::Object(cfg);
    plan
}

/// Drops `agents.defaults.model` references to providers or models that
/// were not carried (pinch refuses a config naming an unknown model).
fn prune_model_refs(cfg: &mut Map<String, Value>, dropped: &mut Vec<Dropped>) {
    let known: Vec<String> = cfg
        .get("models")
        .and_then(|m| m.get("providers"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(id, p)| {
            p.get("models")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(move |m| format!("{id}/{m}"))
        })
        .collect();
    let Some(model) = cfg
        .get_mut("agents")
        .and_then(|a| a.get_mut("defaults"))
        .and_then(|d| d.get_mut("model"))
    else {
        return;
    };
    let at = "agents.defaults.model";
    if let Some(r) = model.as_str().map(String::from) {
        if !known.contains(&r) {
            drop_key(
                dropped,
                at,
                format!("\"{r}\" names a model that was not carried"),
            );
            *model = json!({});
        }
        return;
    }
    if let Some(r) = model
        .get("primary")
        .and_then(Value::as_str)
        .map(String::from)
    {
        if !known.contains(&r) {
            drop_key(
                dropped,
                format!("{at}.primary"),
                format!("\"{r}\" names a model that was not carried"),
            );
            if let Some(o) = model.as_object_mut() {
                o.remove("primary");
            }
        }
    }
    if let Some(list) = model.get_mut("fallbacks").and_then(Value::as_array_mut) {
        list.retain(|f| {
            let r = f.as_str().unwrap_or("");
            let keep = known.iter().any(|k| k == r);
            if !keep {
                drop_key(
                    dropped,
                    format!("{at}.fallbacks \"{r}\""),
                    "names a model that was not carried",
                );
            }
            keep
        });
    }
}

fn map_gateway(v: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let obj = v.as_object()?;
    let mut g = Map::new();
    for (k, val) in obj {
        match (k.as_str(), val) {
            ("port", Value::Number(n)) if n.as_u64().is_some_and(|p| p <= 65535) => {
                g.insert("port".into(), val.clone());
            }
            ("bind", Value::String(b)) => match b.as_str() {
                "loopback" | "lan" => {
                    g.insert("bind".into(), val.clone());
                }
                "custom" => match obj.get("customBindHost").and_then(Value::as_str) {
                    Some(host) => {
                        g.insert("bind".into(), json!(host));
                    }
                    None => drop_key(dropped, "gateway.bind", "custom bind without customBindHost"),
                },
                other => drop_key(
                    dropped,
                    "gateway.bind",
                    format!("\"{other}\" is not supported; pinch binds loopback (default), lan or an IP"),
                ),
            },
            ("customBindHost", _) => {}
            ("mode", Value::String(m)) if m == "local" => {
                drop_key(dropped, "gateway.mode", "pinch always runs the gateway locally")
            }
            ("auth", Value::Object(a)) => {
                for (ak, av) in a {
                    match (ak.as_str(), av) {
                        ("token", Value::String(t)) => {
                            g.insert("auth".into(), json!({ "token": secret_text(t) }));
                        }
                        ("mode", Value::String(m)) if m == "token" || m == "none" => {}
                        _ => drop_key(dropped, format!("gateway.auth.{ak}"), UNSUPPORTED),
                    }
                }
            }
            _ => drop_key(dropped, format!("gateway.{k}"), UNSUPPORTED),
        }
    }
    (!g.is_empty()).then_some(Value::Object(g))
}

/// OpenClaw's `${VAR}` works in pinch as is; a bare value stays a value.
fn secret_text(s: &str) -> String {
    s.to_string()
}

/// A SecretRef `{source: "env", id}` becomes `"$ID"`; other sources cannot
/// be carried.
fn secret_value(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(secret_text(s)),
        Value::Object(o) => match (
            o.get("source").and_then(Value::as_str),
            o.get("id").and_then(Value::as_str),
        ) {
            (Some("env"), Some(id)) => Ok(format!("${id}")),
            (Some(source), _) => Err(format!(
                "a SecretRef from \"{source}\"; put the secret in .env and write \"$NAME\""
            )),
            _ => Err("an unreadable SecretRef".into()),
        },
        _ => Err("not a string".into()),
    }
}

fn map_models(v: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let obj = v.as_object()?;
    let mut providers = Map::new();
    for (k, val) in obj {
        if k != "providers" {
            drop_key(dropped, format!("models.{k}"), UNSUPPORTED);
            continue;
        }
        for (id, p) in val.as_object().into_iter().flatten() {
            if let Some(mapped) = map_provider(id, p, dropped) {
                providers.insert(id.clone(), mapped);
            }
        }
    }
    (!providers.is_empty()).then(|| json!({ "providers": providers }))
}

fn map_provider(id: &str, p: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let at = format!("models.providers.{id}");
    let obj = p.as_object()?;
    let api = obj
        .get("api")
        .and_then(Value::as_str)
        .unwrap_or("openai-completions");
    if !crate::config::APIS.contains(&api) {
        drop_key(
            dropped,
            &at,
            format!(
                "api \"{api}\" is not supported by pinch (only {}); models using it are dropped too",
                crate::config::APIS.join(", ")
            ),
        );
        return None;
    }
    let mut out = Map::new();
    out.insert("api".into(), json!(api));
    for (k, val) in obj {
        match k.as_str() {
            "api" => {}
            "baseUrl" if val.is_string() => {
                out.insert("baseUrl".into(), val.clone());
            }
            "apiKey" => match secret_value(val) {
                Ok(s) => {
                    out.insert("apiKey".into(), json!(s));
                }
                Err(why) => drop_key(dropped, format!("{at}.apiKey"), why),
            },
            "authHeader" if val.is_boolean() => {
                out.insert("authHeader".into(), val.clone());
            }
            "headers" if val.is_object() => {
                let h: Map<String, Value> = val
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| v.is_string())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.insert("headers".into(), Value::Object(h));
            }
            "timeoutSeconds" if val.is_u64() => {
                out.insert("timeouts".into(), json!({ "total": val }));
            }
            "request" => {
                let url = val
                    .pointer("/proxy/url")
                    .and_then(Value::as_str)
                    .filter(|_| {
                        val.pointer("/proxy/mode").and_then(Value::as_str) != Some("env-proxy")
                    });
                if let Some(url) = url {
                    out.insert("network".into(), json!({ "proxy": url }));
                } else if val.pointer("/proxy/mode").and_then(Value::as_str) == Some("env-proxy") {
                    out.insert("network".into(), json!({ "proxy": "env" }));
                }
                for (rk, _) in val.as_object().into_iter().flatten() {
                    if rk != "proxy" {
                        drop_key(dropped, format!("{at}.request.{rk}"), UNSUPPORTED);
                    }
                }
            }
            "models" => {
                let mut models = Vec::new();
                for (i, m) in val.as_array().into_iter().flatten().enumerate() {
                    if let Some(mm) = map_model(&format!("{at}.models[{i}]"), m, dropped) {
                        models.push(mm);
                    }
                }
                out.insert("models".into(), Value::Array(models));
            }
            other => drop_key(dropped, format!("{at}.{other}"), UNSUPPORTED),
        }
    }
    Some(Value::Object(out))
}

fn map_model(at: &str, m: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let obj = m.as_object()?;
    let mut out = Map::new();
    for (k, val) in obj {
        match k.as_str() {
            "id" | "name" if val.is_string() => {
                out.insert(k.clone(), val.clone());
            }
            "contextWindow" | "maxTokens" if val.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {
                out.insert(k.clone(), val.clone());
            }
            "reasoning" if val.is_boolean() => {
                out.insert(k.clone(), val.clone());
            }
            "input" if val.is_array() => {
                let kinds: Vec<Value> = val
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x.as_str() == Some("text") || x.as_str() == Some("image"))
                    .cloned()
                    .collect();
                out.insert("input".into(), Value::Array(kinds));
            }
            "cost" => drop_key(dropped, format!("{at}.cost"), "pinch does not price usage"),
            other => drop_key(dropped, format!("{at}.{other}"), UNSUPPORTED),
        }
    }
    if !out.contains_key("id") {
        drop_key(dropped, at, "a model without an id");
        return None;
    }
    Some(Value::Object(out))
}

fn map_agents(v: &Value, plan: &mut ConfigPlan) -> Option<Value> {
    let obj = v.as_object()?;
    let mut defaults = Map::new();
    for (k, val) in obj {
        if k != "defaults" {
            drop_key(
                &mut plan.dropped,
                format!("agents.{k}"),
                "pinch runs one agent; only agents.defaults is carried",
            );
            continue;
        }
        for (dk, dv) in val.as_object().into_iter().flatten() {
            let at = format!("agents.defaults.{dk}");
            match dk.as_str() {
                "model" if dv.is_string() => {
                    defaults.insert("model".into(), dv.clone());
                }
                "model" if dv.is_object() => {
                    let mut m = Map::new();
                    for (mk, mv) in dv.as_object().into_iter().flatten() {
                        match mk.as_str() {
                            "primary" | "fallbacks" => {
                                m.insert(mk.clone(), mv.clone());
                            }
                            _ => drop_key(&mut plan.dropped, format!("{at}.{mk}"), UNSUPPORTED),
                        }
                    }
                    defaults.insert("model".into(), Value::Object(m));
                }
                "workspace" => {
                    plan.workspace = dv.as_str().map(String::from);
                    drop_key(
                        &mut plan.dropped,
                        at,
                        "its files are copied into $PINCH_HOME/workspace",
                    );
                }
                "timeoutSeconds" | "maxConcurrent" | "bootstrapMaxChars" if dv.is_u64() => {
                    defaults.insert(dk.clone(), dv.clone());
                }
                "heartbeat" => {
                    if let Some(h) = map_heartbeat(&at, dv, &mut plan.dropped) {
                        defaults.insert("heartbeat".into(), h);
                    }
                }
                _ => drop_key(&mut plan.dropped, at, UNSUPPORTED),
            }
        }
    }
    (!defaults.is_empty()).then(|| json!({ "defaults": defaults }))
}

fn map_heartbeat(at: &str, v: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let obj = v.as_object()?;
    let mut h = Map::new();
    for (k, val) in obj {
        match k.as_str() {
            "every" if val.is_string() => {
                h.insert("every".into(), val.clone());
            }
            "activeHours" => {
                let start = val.get("start").and_then(Value::as_str);
                let end = val.get("end").and_then(Value::as_str);
                let tz = val
                    .get("tz")
                    .or_else(|| val.get("timezone"))
                    .and_then(Value::as_str);
                if let (Some(s), Some(e)) = (start, end) {
                    let mut ah = json!({ "start": s, "end": e });
                    if let Some(tz) = tz {
                        ah["tz"] = json!(tz);
                    }
                    h.insert("activeHours".into(), ah);
                }
            }
            "to" if val.is_string() => {
                h.insert("to".into(), val.clone());
            }
            "target" if val.as_str() == Some("last") => {}
            other => drop_key(dropped, format!("{at}.{other}"), UNSUPPORTED),
        }
    }
    Some(Value::Object(h))
}

fn map_env(v: &Value, plan: &mut ConfigPlan) {
    for (k, val) in v.as_object().into_iter().flatten() {
        match k.as_str() {
            "vars" => {
                for (name, value) in val.as_object().into_iter().flatten() {
                    match value.as_str() {
                        Some(s) if valid_env_name(name) => {
                            plan.env_vars.push((name.clone(), s.to_string()))
                        }
                        _ => drop_key(
                            &mut plan.dropped,
                            format!("env.vars.{name}"),
                            "not a NAME=string pair",
                        ),
                    }
                }
            }
            other => drop_key(&mut plan.dropped, format!("env.{other}"), UNSUPPORTED),
        }
    }
}

pub fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn map_channels(v: &Value, dropped: &mut Vec<Dropped>) -> Option<Value> {
    let obj = v.as_object()?;
    let mut out = Map::new();
    for (name, ch) in obj {
        if !crate::config::CHANNELS.contains(&name.as_str()) {
            drop_key(
                dropped,
                format!("channels.{name}"),
                format!(
                    "pinch has no such channel (it knows {})",
                    crate::config::CHANNELS.join(", ")
                ),
            );
            continue;
        }
        let at = format!("channels.{name}");
        let mut c = Map::new();
        for (k, val) in ch.as_object().into_iter().flatten() {
            match k.as_str() {
                "enabled" | "requireMention" if val.is_boolean() => {
                    c.insert(k.clone(), val.clone());
                }
                "dmPolicy" | "groupPolicy" if val.is_string() => {
                    c.insert(k.clone(), val.clone());
                }
                "allowFrom" if val.is_array() => {
                    c.insert("allowFrom".into(), json!(sender_list(name, val)));
                }
                "textChunkLimit" if val.is_u64() => {
                    c.insert(k.clone(), val.clone());
                }
                "botToken" => match secret_value(val) {
                    Ok(s) => {
                        c.insert("botToken".into(), json!(s));
                    }
                    Err(why) => drop_key(dropped, format!("{at}.botToken"), why),
                },
                "proxy" if val.is_string() => {
                    c.insert("network".into(), json!({ "proxy": val }));
                }
                "groups" => {
                    let mut groups = Map::new();
                    for (gid, rule) in val.as_object().into_iter().flatten() {
                        let mut r = Map::new();
                        for (rk, rv) in rule.as_object().into_iter().flatten() {
                            match rk.as_str() {
                                "requireMention" | "enabled" if rv.is_boolean() => {
                                    r.insert(rk.clone(), rv.clone());
                                }
                                "allowFrom" if rv.is_array() => {
                                    r.insert(rk.clone(), json!(sender_list(name, rv)));
                                }
                                _ => drop_key(
                                    dropped,
                                    format!("{at}.groups.{gid}.{rk}"),
                                    UNSUPPORTED,
                                ),
                            }
                        }
                        groups.insert(gid.clone(), Value::Object(r));
                    }
                    c.insert("groups".into(), Value::Object(groups));
                }
                other => drop_key(dropped, format!("{at}.{other}"), UNSUPPORTED),
            }
        }
        out.insert(name.clone(), Value::Object(c));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Sender entries without OpenClaw's channel prefixes (`tg:123` → `123`).
pub fn sender_list(channel: &str, v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .map(|s| strip_sender_prefix(channel, &s))
        .collect()
}

pub fn strip_sender_prefix(channel: &str, s: &str) -> String {
    let prefixes: &[&str] = match channel {
        "telegram" => &["telegram:", "tg:"],
        _ => &[],
    };
    for p in prefixes {
        if let Some(rest) = s.strip_prefix(p) {
            return rest.to_string();
        }
    }
    s.to_string()
}

/// Approved senders in a credentials `<channel>[-<account>]-allowFrom.json`
/// file: `{ "version": 1, "allowFrom": [...] }` or a bare array.
pub fn allow_from_file(channel: &str, v: &Value) -> Vec<String> {
    let list = v.get("allowFrom").unwrap_or(v);
    sender_list(channel, list)
}

/// The channel named by a credentials file name: `telegram-allowFrom.json`
/// or `telegram-default-allowFrom.json` → `telegram`.
pub fn allow_from_channel(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix("-allowFrom.json")?;
    let channel = stem.split('-').next()?;
    (!channel.is_empty()).then_some(channel)
}

/// pinch's session key for an OpenClaw session key, for agent `main`.
/// `agent:main:main` → `main`; `agent:main:telegram:direct:42` →
/// `telegram:42`; groups likewise; anything else keeps its key under
/// `openclaw:`.
pub fn session_key(key: &str) -> String {
    let parts: Vec<&str> = key.split(':').collect();
    match parts.as_slice() {
        ["agent", "main", "main"] => "main".into(),
        ["agent", "main", channel, "direct" | "group" | "channel" | "room", peer]
            if crate::config::CHANNELS.contains(channel) =>
        {
            format!("{channel}:{}", peer)
        }
        _ => format!("openclaw:{key}"),
    }
}

/// What a transcript import kept and left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptImport {
    pub turns: Vec<Turn>,
    /// Lines that were not user or assistant text: tool calls and results,
    /// thinking, model changes, custom entries, unreadable lines.
    pub skipped: usize,
}

/// Reads one OpenClaw JSONL transcript (pi-agent events, one per line):
/// user and assistant text messages become turns; the rest is counted.
pub fn map_transcript(text: &str, fallback_ms: u64) -> TranscriptImport {
    let mut out = TranscriptImport::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(ev) = serde_json::from_str::<Value>(line) else {
            out.skipped += 1;
            continue;
        };
        if ev.get("type").and_then(Value::as_str) != Some("message") {
            if ev.get("type").and_then(Value::as_str) != Some("session") {
                out.skipped += 1;
            }
            continue;
        }
        let msg = ev.get("message").unwrap_or(&Value::Null);
        let role = match msg.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                out.skipped += 1;
                continue;
            }
        };
        let text = message_text(msg.get("content").unwrap_or(&Value::Null));
        if text.trim().is_empty() {
            out.skipped += 1;
            continue;
        }
        let ts = timestamp_ms(ev.get("timestamp"))
            .or_else(|| timestamp_ms(msg.get("timestamp")))
            .unwrap_or(fallback_ms);
        let mut turn = Turn::message(ts, Message::text(role, &text));
        if role == Role::Assistant {
            if let (Some(p), Some(m)) = (
                msg.get("provider").and_then(Value::as_str),
                msg.get("model").and_then(Value::as_str),
            ) {
                turn.model = Some(format!("{p}/{m}"));
            }
        }
        out.turns.push(turn);
    }
    out
}

/// The text of a message's content: a string, or the `text` parts of an
/// array (tool calls, thinking and images are left out).
fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn timestamp_ms(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| u64::try_from(t.as_millisecond()).ok()),
        _ => None,
    }
}

/// A job name pinch accepts, made from an OpenClaw job's name or id.
pub fn job_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if out.chars().count() >= 64 {
            break;
        }
        if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Maps the jobs of OpenClaw's `cron/jobs.json` (`{version, jobs: [...]}`
/// or a bare array) to pinch job specs; the ones that cannot be carried are
/// listed with the reason.
pub fn map_cron_jobs(v: &Value, now_ms: u64) -> (Vec<JobSpec>, Vec<Dropped>) {
    let mut specs: Vec<JobSpec> = Vec::new();
    let mut dropped = Vec::new();
    let list = v.get("jobs").unwrap_or(v);
    for (i, job) in list.as_array().into_iter().flatten().enumerate() {
        let label = job
            .get("name")
            .or_else(|| job.get("id"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("job {i}"));
        match map_cron_job(job, now_ms) {
            Ok(mut spec) => {
                let base = spec.name.clone();
                let mut n = 2;
                while specs.iter().any(|s| s.name == spec.name) {
                    spec.name = format!("{base}-{n}");
                    n += 1;
                }
                specs.push(spec)
            }
            Err(why) => drop_key(&mut dropped, format!("cron job \"{label}\""), why),
        }
    }
    (specs, dropped)
}

fn map_cron_job(job: &Value, now_ms: u64) -> Result<JobSpec, String> {
    let name = job
        .get("name")
        .or_else(|| job.get("id"))
        .and_then(Value::as_str)
        .map(job_name)
        .filter(|n| !n.is_empty())
        .ok_or("no usable name or id")?;
    let schedule = job.get("schedule").ok_or("no schedule")?;
    let trigger = match schedule.get("kind").and_then(Value::as_str) {
        Some("cron") => Trigger::Cron {
            expr: schedule
                .get("expr")
                .or_else(|| schedule.get("cron"))
                .and_then(Value::as_str)
                .ok_or("a cron schedule without expr")?
                .to_string(),
            tz: schedule
                .get("tz")
                .and_then(Value::as_str)
                .unwrap_or("UTC")
                .to_string(),
        },
        Some("every") => {
            let millis = schedule
                .get("everyMs")
                .and_then(Value::as_u64)
                .ok_or("an every schedule without everyMs")?;
            let anchor_ms = schedule
                .get("anchorMs")
                .and_then(Value::as_u64)
                .unwrap_or(now_ms);
            Trigger::Every { millis, anchor_ms }
        }
        Some("at") => {
            let at_ms = schedule
                .get("atMs")
                .and_then(Value::as_u64)
                .or_else(|| timestamp_ms(schedule.get("at")))
                .ok_or("an at schedule without a readable time")?;
            if at_ms <= now_ms {
                return Err("a one-shot time that has passed".into());
            }
            Trigger::At { at_ms }
        }
        Some(other) => {
            return Err(format!(
                "schedule kind \"{other}\" is not supported by pinch"
            ))
        }
        None => return Err("a schedule without kind".into()),
    };
    let payload = job.get("payload").unwrap_or(&Value::Null);
    let message = match payload.get("kind").and_then(Value::as_str) {
        Some("agentTurn") => payload.get("message").and_then(Value::as_str),
        Some("systemEvent") => payload.get("text").and_then(Value::as_str),
        Some(other) => {
            return Err(format!(
                "payload kind \"{other}\" is not supported by pinch (only agent messages)"
            ))
        }
        None => payload.get("message").and_then(Value::as_str),
    }
    .filter(|m| !m.trim().is_empty())
    .ok_or("no message to send to the agent")?;
    let mut spec = JobSpec::new(&name, trigger, message);
    spec.enabled = job.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    if job.get("sessionTarget").and_then(Value::as_str) == Some("main") {
        spec.session = SessionTarget::Main;
    }
    spec.model = payload
        .get("model")
        .and_then(Value::as_str)
        .map(String::from);
    let delivery = job.get("delivery").unwrap_or(&Value::Null);
    if let (Some(ch), Some(to)) = (
        delivery.get("channel").and_then(Value::as_str),
        delivery.get("to").and_then(Value::as_str),
    ) {
        if crate::config::CHANNELS.contains(&ch) {
            spec.deliver_to = Some(format!("{ch}:{}", strip_sender_prefix(ch, to)));
        }
    }
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json5_reads_openclaw_syntax() {
        let v = read_json5_value(
            "// c\n{ gateway: { port: 0x4965, bind: 'loopback', }, /* b */ n: +.5, s: 'a\\\nb', }",
        )
        .expect("json5");
        assert_eq!(v["gateway"]["port"], 18789);
        assert_eq!(v["gateway"]["bind"], "loopback");
        assert_eq!(v["n"], 0.5);
        // JSON5 drops an escaped line break.
        assert_eq!(v["s"], "ab");
        assert!(read_json5_value("{ a: }").is_err());
        assert!(read_json5_value(&"[".repeat(10_000)).is_err());
    }

    #[test]
    fn config_is_mapped_and_every_drop_is_named() {
        let oc = read_json5_value(
            r#"{
  gateway: { mode: "local", bind: "tailnet", port: 18789, auth: { mode: "token", token: "${OPENCLAW_GATEWAY_TOKEN}" } },
  models: { mode: "merge", providers: {
    minimax: { baseUrl: "https://api.minimaxi.com/anthropic", api: "anthropic-messages", apiKey: "${MINIMAX_API_KEY}",
      models: [{ id: "MiniMax-M2", contextWindow: 200000, maxTokens: 8192, cost: { input: 1 } }] },
    gem: { api: "google-generative-ai", models: [] },
  } },
  agents: { defaults: { model: { primary: "minimax/MiniMax-M2", fallbacks: [] }, workspace: "~/w", imageModel: "x" }, list: [] },
  channels: { telegram: { botToken: { source: "env", provider: "default", id: "TG" }, dmPolicy: "pairing", allowFrom: ["tg:42", 7], proxy: "socks5://127.0.0.1:1080", streaming: { mode: "off" } },
              signal: {} },
  env: { vars: { FOO: "bar" } },
  tts: {},
}"#,
        )
        .expect("json5");
        let plan = map_config(&oc);
        let c = &plan.config;
        assert_eq!(c["gateway"]["port"], 18789);
        assert_eq!(c["gateway"]["auth"]["token"], "${OPENCLAW_GATEWAY_TOKEN}");
        assert!(c["gateway"].get("bind").is_none());
        assert_eq!(
            c["models"]["providers"]["minimax"]["models"][0]["id"],
            "MiniMax-M2"
        );
        assert!(c["models"]["providers"].get("gem").is_none());
        assert_eq!(c["channels"]["telegram"]["botToken"], "$TG");
        assert_eq!(c["channels"]["telegram"]["allowFrom"], json!(["42", "7"]));
        assert_eq!(
            c["channels"]["telegram"]["network"]["proxy"],
            "socks5://127.0.0.1:1080"
        );
        assert_eq!(plan.env_vars, vec![("FOO".to_string(), "bar".to_string())]);
        assert_eq!(plan.workspace.as_deref(), Some("~/w"));
        let names: Vec<&str> = plan.dropped.iter().map(|d| d.what.as_str()).collect();
        for expected in [
            "gateway.mode",
            "gateway.bind",
            "models.mode",
            "models.providers.gem",
            "models.providers.minimax.models[0].cost",
            "agents.defaults.imageModel",
            "agents.list",
            "channels.telegram.streaming",
            "channels.signal",
            "tts",
        ] {
            assert!(names.contains(&expected), "{expected} not in {names:?}");
        }
        // The result is a config pinch accepts.
        let text = serde_json::to_string(c).expect("json");
        let vars = crate::config::env::Vars::from_process(
            [
                ("OPENCLAW_GATEWAY_TOKEN", "t0123456789abcdef0123"),
                ("MINIMAX_API_KEY", "k"),
                ("TG", "1:x"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        );
        crate::config::parse_str(&text, None, &vars).expect("pinch accepts the mapped config");
    }

    #[test]
    fn session_keys_and_transcripts() {
        assert_eq!(session_key("agent:main:main"), "main");
        assert_eq!(session_key("agent:main:telegram:direct:42"), "telegram:42");
        assert_eq!(session_key("cron:abc"), "openclaw:cron:abc");
        let t = r#"{"type":"session","version":4,"id":"s"}
{"type":"message","id":"1","timestamp":"2026-01-02T03:04:05Z","message":{"role":"user","content":[{"type":"text","text":"hello"}]}}
{"type":"message","id":"2","message":{"role":"assistant","provider":"p","model":"m","timestamp":1700000000000,"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"hi there"}]}}
{"type":"message","id":"3","message":{"role":"toolResult","content":"x"}}
not json
{"type":"model_change"}"#;
        let r = map_transcript(t, 5);
        assert_eq!(r.turns.len(), 2);
        assert_eq!(r.turns[0].ts_ms, 1_767_323_045_000);
        assert_eq!(r.turns[1].ts_ms, 1_700_000_000_000);
        assert_eq!(r.turns[1].model.as_deref(), Some("p/m"));
        assert_eq!(r.skipped, 3);
    }

    #[test]
    fn cron_jobs_map_or_say_why_not() {
        let v = json!({"version": 1, "jobs": [
            {"id": "a", "name": "Morning brief", "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "Europe/Berlin"},
             "payload": {"kind": "agentTurn", "message": "Summarise"}, "delivery": {"mode": "announce", "channel": "telegram", "to": "42"}},
            {"id": "b", "schedule": {"kind": "every", "everyMs": 3_600_000}, "payload": {"kind": "systemEvent", "text": "ping"}},
            {"id": "c", "schedule": {"kind": "at", "at": "2000-01-01T00:00:00Z"}, "payload": {"kind": "agentTurn", "message": "x"}},
            {"id": "d", "schedule": {"kind": "cron", "expr": "* * * * *"}, "payload": {"kind": "command", "argv": ["ls"]}}
        ]});
        let (specs, dropped) = map_cron_jobs(&v, 1_800_000_000_000);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "morning-brief");
        assert_eq!(specs[0].deliver_to.as_deref(), Some("telegram:42"));
        assert_eq!(specs[1].name, "b");
        assert_eq!(dropped.len(), 2);
        assert!(dropped[1].reason.contains("command"));
    }

    #[test]
    fn allow_from_files() {
        assert_eq!(
            allow_from_channel("telegram-allowFrom.json"),
            Some("telegram")
        );
        assert_eq!(
            allow_from_channel("telegram-default-allowFrom.json"),
            Some("telegram")
        );
        assert_eq!(allow_from_channel("telegram-pairing.json"), None);
        let v = json!({"version": 1, "allowFrom": ["tg:5", "6"]});
        assert_eq!(allow_from_file("telegram", &v), vec!["5", "6"]);
        assert_eq!(allow_from_file("telegram", &json!(["9"])), vec!["9"]);
    }
}
