//! `pinch doctor`: checks everything a self-hoster trips over, each along
//! its own network route, and says what to fix.
//!
//! Per provider and enabled channel: DNS, TCP connect (to the target or its
//! proxy), proxy handshake, TLS, one HTTP request — each failure classified
//! (DNS 6, refused 7, timeout 28, reset after connect 56, TLS 35/60, proxy
//! auth 407, proxy refused, HTTP status) with a one-line hint. Then the
//! gateway's exposure, file permissions, free disk for the state store, the
//! filesystem under it (fsync and permissions must hold), clock skew
//! against a server's Date header, and each enabled channel adapter as the
//! running gateway's `/status` reports it (state, last event, reconnects
//! today, last error and its fix). `--json` for machines; the
//! exit status is 1 when anything failed.

use crate::config::{self, Config};
use crate::home::Home;
use lexopt::prelude::*;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    name: String,
    level: Level,
    detail: String,
    hint: String,
    extra: Value,
}

fn check(
    name: impl Into<String>,
    level: Level,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> Check {
    Check {
        name: name.into(),
        level,
        detail: detail.into(),
        hint: hint.into(),
        extra: Value::Null,
    }
}

/// The API endpoint a channel adapter talks to by default.
pub fn channel_default_url(name: &str) -> String {
    match name {
        "telegram" => "https://api.telegram.org/",
        "slack" => "https://slack.com/api/",
        "discord" => "https://discord.com/api/",
        "feishu" => "https://open.feishu.cn/",
        "whatsapp" => "https://graph.facebook.com/",
        _ => "https://example.com/",
    }
    .to_string()
}

pub fn cmd(p: &mut lexopt::Parser, config_path: Option<&Path>, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch doctor [--json] [--timeout SECONDS] [--url URL]

Checks each provider and channel endpoint along its own route (DNS, connect,
proxy, TLS, HTTP), gateway exposure, file permissions, free disk and clock,
and each enabled channel adapter as the running gateway reports it (--url:
that gateway; default the gateway of this $PINCH_HOME from its runtime file,
else the config's gateway.bind and gateway.port).";
    let (mut as_json, mut timeout) = (false, 5u64);
    let mut gateway_url: Option<String> = None;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("json") => as_json = true,
            Long("url") => {
                let url = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|_| "--url is not valid UTF-8".to_string())?;
                if !url.starts_with("http://") {
                    return Err("--url must start with http://".into());
                }
                gateway_url = Some(url);
            }
            Long("timeout") => {
                timeout = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--timeout takes seconds")?
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let mut checks = Vec::new();
    let cfg = match config::load(home, config_path) {
        Ok(l) => {
            checks.push(check(
                "config",
                Level::Ok,
                l.file
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "built-in defaults".into()),
                "",
            ));
            Some(l.cfg)
        }
        Err(e) => {
            checks.push(check(
                "config",
                Level::Fail,
                e.message.clone(),
                e.to_string(),
            ));
            None
        }
    };
    checks.extend(local_checks(home, config_path, cfg.as_ref()));
    let mut date: Option<String> = None;
    if let Some(cfg) = &cfg {
        for c in endpoint_checks(cfg, Duration::from_secs(timeout), &mut date) {
            checks.push(c);
        }
    }
    checks.push(clock_check(date.as_deref(), crate::util::now_ms()));
    // The gateway of this home first: whatever answers on the config's
    // port may be another home's.
    let gateway_url = gateway_url.or_else(|| {
        match crate::runtime_file::lookup(home, Duration::from_millis(500)) {
            crate::runtime_file::Lookup::Running(record) => {
                Some(format!("http://{}", record.address))
            }
            _ => None,
        }
    });
    if let Some(cfg) = &cfg {
        checks.extend(adapter_checks(
            cfg,
            gateway_url.as_deref(),
            crate::util::now_ms(),
        ));
    }
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    if as_json {
        let items: Vec<Value> = checks
            .iter()
            .map(|c| json!({"check": c.name, "status": match c.level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" }, "detail": c.detail, "hint": c.hint, "probe": c.extra}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": !failed, "checks": items}))
                .unwrap_or_default()
        );
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            println!("{tag} {:<28} {}", c.name, c.detail);
            if c.level != Level::Ok && !c.hint.is_empty() {
                for line in c.hint.lines() {
                    println!("     {line}");
                }
            }
        }
        println!(
            "{}",
            if failed {
                "doctor: problems found"
            } else {
                "doctor: all good"
            }
        );
    }
    Ok(if failed { 1 } else { 0 })
}

fn local_checks(home: &Home, config_path: Option<&Path>, cfg: Option<&Config>) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(cfg) = cfg {
        let token = cfg.gateway.auth.token.as_deref().filter(|t| !t.is_empty());
        match config::parse_bind(&cfg.gateway.bind) {
            Some(ip) if ip.is_loopback() => out.push(check("gateway exposure", Level::Ok, format!("loopback only ({ip}:{})", cfg.gateway.port), "")),
            Some(ip) if token.is_none() => out.push(check(
                "gateway exposure",
                Level::Fail,
                format!("bind {ip} without gateway.auth.token"),
                "set gateway.auth.token (the gateway refuses to start like this) or bind to loopback",
            )),
            Some(ip) => out.push(check("gateway exposure", Level::Warn, format!("listening on {ip}:{} with a token", cfg.gateway.port), "reachable from the network: keep the token long and random; prefer a VPN or SSH tunnel")),
            None => {}
        }
        out.push(sandbox_check(cfg));
    }
    match std::fs::metadata(&home.root) {
        Ok(m) if m.mode() & 0o077 != 0 => out.push(check(
            "home permissions",
            Level::Warn,
            format!("{} is mode {:o}", home.root.display(), m.mode() & 0o777),
            format!("chmod 700 {}", home.root.display()),
        )),
        Ok(_) => out.push(check(
            "home permissions",
            Level::Ok,
            format!("{} is private", home.root.display()),
            "",
        )),
        Err(_) => out.push(check(
            "home permissions",
            Level::Ok,
            format!("{} not created yet", home.root.display()),
            "",
        )),
    }
    let cfg_file = config_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.config());
    for (name, path) in [
        ("config permissions", cfg_file),
        (".env permissions", home.dotenv()),
    ] {
        match crate::home::check_private(&path) {
            Ok(()) => out.push(check(
                name,
                Level::Ok,
                if path.exists() {
                    format!("{} is private", path.display())
                } else {
                    format!("{} absent", path.display())
                },
                "",
            )),
            Err(e) => {
                let (msg, fix) = e.split_once("\n  fix: ").unwrap_or((&e, ""));
                out.push(check(name, Level::Fail, msg, fix));
            }
        }
    }
    let probe_dir = if home.root.exists() {
        home.root.clone()
    } else {
        home.root
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "/".into())
    };
    match free_bytes(&probe_dir) {
        Some(b) if b < 50 * 1024 * 1024 => out.push(check(
            "free disk",
            Level::Fail,
            format!("{} MiB free for {}", b >> 20, probe_dir.display()),
            "free some space: the state store needs room to commit",
        )),
        Some(b) if b < 500 * 1024 * 1024 => out.push(check(
            "free disk",
            Level::Warn,
            format!("{} MiB free", b >> 20),
            "the state store grows with transcripts and queued messages",
        )),
        Some(b) => out.push(check(
            "free disk",
            Level::Ok,
            format!("{} MiB free", b >> 20),
            "",
        )),
        None => out.push(check(
            "free disk",
            Level::Warn,
            "could not read free space",
            "",
        )),
    }
    out.push(filesystem_check(&probe_dir));
    if let Some(c) = card_wear_check(&probe_dir) {
        out.push(c);
    }
    out.push(storage_check(home, cfg));
    out
}

/// Whether programs the agent runs are confined, and by what.
fn sandbox_check(cfg: &Config) -> Check {
    let e = &cfg.tools.exec;
    let kernel = crate::sandbox::probe().describe();
    match crate::sandbox::mode(&e.sandbox) {
        crate::sandbox::Mode::Enforced { .. } => check(
            "tool sandbox",
            Level::Ok,
            format!("{kernel}: exec and skill scripts are confined"),
            "",
        ),
        crate::sandbox::Mode::Off => check(
            "tool sandbox",
            Level::Warn,
            format!("off by tools.exec.sandbox ({kernel})"),
            "programs the assistant runs can read everything this user can, including .env and pinch.json; set tools.exec.sandbox to \"on\"",
        ),
        crate::sandbox::Mode::Refused(why) => check(
            "tool sandbox",
            if e.enabled { Level::Fail } else { Level::Warn },
            format!("unavailable: {why}; exec and skill scripts are refused"),
            "apply the fix this line names, or set tools.exec.sandbox to \"off\" to run programs unconfined",
        ),
    }
}

/// The filesystem under PINCH_HOME: the queue needs fsync and permissions
/// that hold (see crate::filesystem).
fn filesystem_check(dir: &Path) -> Check {
    use crate::filesystem;
    let name = "state filesystem";
    match filesystem::magic_of(dir) {
        Ok(magic) => {
            let kind = filesystem::classify(magic);
            let detail = format!("{} ({magic:#x}) at {}", kind.name, dir.display());
            let mut c = match filesystem::advice(kind.trust) {
                Some(hint) => check(name, Level::Warn, detail, hint),
                None => check(name, Level::Ok, detail, ""),
            };
            c.extra = json!({"filesystem": kind.name, "magic": magic});
            c
        }
        Err(e) => check(
            name,
            Level::Warn,
            format!("cannot statfs {}: {e}", dir.display()),
            "",
        ),
    }
}

/// What wears an SD card holding the state (see crate::card_wear); no line
/// when the mount table cannot be read.
fn card_wear_check(dir: &Path) -> Option<Check> {
    use crate::card_wear;
    let path = std::fs::canonicalize(dir).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let state = card_wear::mount_of(&mountinfo, path.to_str()?)?;
    let swaps = card_wear::swaps(&std::fs::read_to_string("/proc/swaps").unwrap_or_default());
    let mut confs = vec![std::fs::read_to_string("/etc/systemd/journald.conf").unwrap_or_default()];
    if let Ok(dir) = std::fs::read_dir("/etc/systemd/journald.conf.d") {
        let mut names: Vec<std::path::PathBuf> = dir.flatten().map(|e| e.path()).collect();
        crate::sort::sort(&mut names);
        for n in names
            .iter()
            .filter(|n| n.extension().is_some_and(|x| x == "conf"))
        {
            confs.push(std::fs::read_to_string(n).unwrap_or_default());
        }
    }
    let journal = card_wear::journal(&confs);
    let verdict = card_wear::assess(
        &state,
        &swaps,
        &journal,
        Path::new("/var/log/journal").is_dir(),
    );
    let level = if verdict.warnings.is_empty() {
        Level::Ok
    } else {
        Level::Warn
    };
    Some(check(
        "card wear",
        level,
        verdict.detail,
        verdict.warnings.join("; "),
    ))
}

/// `$PINCH_HOME` against `storage.maxBytes`, and what retention removed so far
/// (read from the store when no gateway holds it).
fn storage_check(home: &Home, cfg: Option<&Config>) -> Check {
    let max = cfg
        .map(|c| c.storage.max_bytes)
        .unwrap_or_else(|| crate::config::storage::Storage::default().max_bytes);
    let used = crate::gateway::storage::dir_bytes(&home.root);
    let removed = match crate::store::version::read_counters(&home.state()) {
        Ok(c) => format!(
            "; store schema {}; retention removed {} turns and {} dead letters, {} compactions",
            c.schema_version, c.turns, c.dead_letters, c.compactions
        ),
        Err(_) => "; `pinch status` shows what retention removed".to_string(),
    };
    let msg = format!(
        "{} MiB of {} MiB (storage.maxBytes){removed}",
        used >> 20,
        max >> 20
    );
    if used > max {
        check(
            "disk budget",
            Level::Warn,
            msg,
            "over budget with nothing retention may remove: raise storage.maxBytes, lower storage.transcriptDays, or clear old sessions (`pinch sessions reset KEY`)",
        )
    } else {
        check("disk budget", Level::Ok, msg, "")
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into a zeroed struct we own; the path is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

fn endpoint_checks(cfg: &Config, timeout: Duration, date: &mut Option<String>) -> Vec<Check> {
    let mut targets: Vec<(String, crate::routes::Owner, String)> = Vec::new();
    for (id, p) in &cfg.models.providers {
        targets.push((
            format!("provider {id}"),
            crate::routes::Owner::Provider(id),
            p.base_url.clone(),
        ));
    }
    for (name, ch) in &cfg.channels {
        if ch.enabled {
            let url = ch
                .api_root
                .clone()
                .unwrap_or_else(|| channel_default_url(name));
            targets.push((
                format!("channel {name}"),
                crate::routes::Owner::Channel(name),
                url,
            ));
        }
    }
    let mut out = Vec::new();
    for (label, owner, url) in targets {
        let route = match crate::routes::route_for(cfg, owner) {
            Ok(r) => r,
            Err(e) => {
                out.push(check(
                    label,
                    Level::Fail,
                    e,
                    "fix the network block of this provider or channel",
                ));
                continue;
            }
        };
        let decision = match route.decide(&url) {
            Ok(d) => d,
            Err(e) => {
                out.push(check(label, Level::Fail, e, "check the URL"));
                continue;
            }
        };
        let report = crate::net::probe(&url, &decision, route.ca_file.as_deref(), timeout);
        if date.is_none() {
            date.clone_from(&report.http_date);
        }
        let steps: Vec<Value> = report.steps.iter().map(|s| json!({"step": s.step.to_string(), "ok": s.ok, "ms": s.millis, "detail": s.detail})).collect();
        let mut c = match &report.failure {
            None => check(
                label,
                Level::Ok,
                format!("{} ({})", report.target, report.route),
                "",
            ),
            Some(f) => check(
                label,
                Level::Fail,
                format!(
                    "{} — {f} (curl exit {}) [{}]",
                    report.target,
                    f.curl_code(),
                    report.route
                ),
                f.hint(&decision),
            ),
        };
        c.extra = json!({"target": report.target, "route": report.route, "steps": steps, "curlCode": report.failure.as_ref().map(|f| f.curl_code())});
        out.push(c);
    }
    for (id, p) in &cfg.models.providers {
        if !crate::provider::is_local_llama(p) {
            continue;
        }
        let label = format!("local model server {id}");
        out.push(match crate::local_llm::probe(&p.base_url, timeout) {
            Ok(info) => {
                let ctx_small = p
                    .models
                    .iter()
                    .any(|m| info.n_ctx.is_some_and(|n| n < u64::from(m.context_window)));
                let (level, hint) = if !info.healthy {
                    (Level::Warn, "wait for the model to load, or see the server's log")
                } else if ctx_small {
                    (Level::Warn, "a model's contextWindow is above the server's context (-c): lower contextWindow or raise -c")
                } else {
                    (Level::Ok, "")
                };
                check(label, level, crate::local_llm::describe(&info), hint)
            }
            Err(e) => check(
                label,
                Level::Warn,
                format!("no answer from /health: {e}"),
                "start it (systemctl start pinch-llama, or scripts/local-llm.sh start)",
            ),
        });
    }
    out
}

fn clock_check(date: Option<&str>, now_ms: u64) -> Check {
    let Some(d) = date else {
        return check(
            "clock",
            Level::Warn,
            "no server answered with a Date header; skew not checked",
            "",
        );
    };
    match crate::util::parse_http_date(d) {
        Some(server_s) => {
            let skew = (now_ms / 1000) as i64 - server_s as i64;
            if skew.abs() > 300 {
                check(
                    "clock",
                    Level::Fail,
                    format!("local clock is {skew:+} s off the server's"),
                    "TLS and schedules need a right clock: enable NTP (timedatectl set-ntp true)",
                )
            } else if skew.abs() > 30 {
                check(
                    "clock",
                    Level::Warn,
                    format!("local clock is {skew:+} s off"),
                    "enable NTP (timedatectl set-ntp true)",
                )
            } else {
                check(
                    "clock",
                    Level::Ok,
                    format!("within {} s of the server", skew.abs()),
                    "",
                )
            }
        }
        None => check(
            "clock",
            Level::Warn,
            format!("unreadable Date header {d:?}"),
            "",
        ),
    }
}

/// One line per enabled channel adapter, from the running gateway's
/// `/status`; one warning when no gateway answers.
fn adapter_checks(cfg: &Config, gateway_url: Option<&str>, now_ms: u64) -> Vec<Check> {
    let enabled: Vec<&String> = cfg
        .channels
        .iter()
        .filter(|(_, c)| c.enabled)
        .map(|(name, _)| name)
        .collect();
    if enabled.is_empty() {
        return Vec::new();
    }
    let status = match gateway_status(cfg, gateway_url) {
        Ok(s) => s,
        Err(e) => {
            return vec![check(
                "channel adapters",
                Level::Warn,
                format!("state unknown: {e}"),
                "start the gateway (`pinch gateway run` or `systemctl start pinch`) to see each adapter's state",
            )]
        }
    };
    enabled
        .into_iter()
        .map(|name| {
            let health = &status["channels"]["channels"][name.as_str()]["health"];
            adapter_check(name, health, now_ms)
        })
        .collect()
}

/// `GET /status` of the gateway at `gateway_url`, else of the one this
/// config describes (on loopback when it listens on every interface).
fn gateway_status(cfg: &Config, gateway_url: Option<&str>) -> Result<Value, String> {
    let url = match gateway_url {
        Some(u) => format!("{}/status", u.trim_end_matches('/')),
        None => {
            let ip = match config::parse_bind(&cfg.gateway.bind) {
                Some(ip) if !ip.is_unspecified() => ip,
                _ => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            };
            let address = std::net::SocketAddr::new(ip, cfg.gateway.port);
            format!("http://{address}/status")
        }
    };
    let agent = crate::net::new_agent(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(3)))
            .build(),
    );
    let mut request = agent.get(&url);
    let token = std::env::var("PINCH_GATEWAY_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| cfg.gateway.auth.token.clone());
    if let Some(t) = token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    let mut response = request
        .call()
        .map_err(|e| format!("no gateway answers at {url} ({e})"))?;
    if response.status() != 200 {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("{url}: {e}")))
}

/// "12 s", "5 min", "3 h", "2 d".
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// An adapter's `/status` health in one line (state, the age of the last
/// event, reconnects today, the last error), and that error alone; for
/// `pinch doctor` and `pinch status`.
pub fn adapter_summary(health: &Value, now_ms: u64) -> (String, String) {
    let state = health["state"].as_str().unwrap_or("?");
    let mut detail = state.to_string();
    if let Some(last) = health["lastEventMs"].as_u64() {
        detail.push_str(&format!(
            ", last event {} ago",
            age(now_ms.saturating_sub(last))
        ));
    }
    if let Some(n) = health["reconnectsToday"].as_u64() {
        detail.push_str(&format!(", {n} reconnects today"));
    }
    let error = health["error"]
        .as_str()
        .or_else(|| (state != "up").then(|| health["detail"].as_str()).flatten())
        .unwrap_or("")
        .to_string();
    if !error.is_empty() {
        detail.push_str(&format!("; last error: {error}"));
    }
    (detail, error)
}

/// An adapter's `/status` health as a check: up is ok, an error the
/// adapter will not retry (or a conflict) fails, anything else warns. The
/// adapters' own error texts say what to change, so they are the hint.
fn adapter_check(name: &str, health: &Value, now_ms: u64) -> Check {
    let Some(state) = health.get("state").and_then(Value::as_str) else {
        return check(
            format!("adapter {name}"),
            Level::Fail,
            "not running in the gateway",
            "restart the gateway after enabling the channel; its log says why the adapter did not start",
        );
    };
    let (detail, error) = adapter_summary(health, now_ms);
    let level = match state {
        "up" => Level::Ok,
        "error" | "conflict" => Level::Fail,
        _ => Level::Warn,
    };
    let hint = match (level, error.is_empty()) {
        (Level::Ok, _) => String::new(),
        (_, false) => error.to_string(),
        (_, true) => format!("the adapter retries on its own; `pinch status` and the gateway log show channels.{name}'s progress"),
    };
    check(format!("adapter {name}"), level, detail, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_lines_read_each_adapters_health() {
        let now = 10_000_000;
        let discord = json!({"state": "up", "detail": "connected", "lastEventMs": now - 12_000, "reconnectsToday": 2, "error": null});
        let c = adapter_check("discord", &discord, now);
        assert!(c.level == Level::Ok);
        assert_eq!(c.detail, "up, last event 12 s ago, 2 reconnects today");
        let fatal =
            "Discord refused a privileged intent (close 4014): enable the Message Content intent";
        let c = adapter_check(
            "discord",
            &json!({"state": "error", "detail": "x", "error": fatal}),
            now,
        );
        assert!(c.level == Level::Fail);
        assert_eq!(c.hint, fatal);
        let slack = json!({"state": "down", "failures": 3, "lastEventMs": now - 600_000, "reconnectsToday": 4, "error": "apps.connections.open: invalid_auth"});
        let c = adapter_check("slack", &slack, now);
        assert!(c.level == Level::Warn);
        assert_eq!(c.detail, "down, last event 10 min ago, 4 reconnects today; last error: apps.connections.open: invalid_auth");
        let telegram = json!({"state": "conflict", "failures": 1, "lastEventMs": null, "reconnectsToday": 0, "error": null, "detail": "Conflict { since: 1 }"});
        let c = adapter_check("telegram", &telegram, now);
        assert!(c.level == Level::Fail && c.hint.contains("Conflict"));
        assert_eq!(
            c.detail,
            "conflict, 0 reconnects today; last error: Conflict { since: 1 }"
        );
        let c = adapter_check("slack", &Value::Null, now);
        assert!(c.level == Level::Fail && c.detail == "not running in the gateway");
        assert_eq!(age(3 * 3_600_000), "3 h");
    }
}
