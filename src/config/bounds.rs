//! Ranges for every duration, size and count in `pinch.json`, and the shape
//! rules serde alone does not give: an object never accepts an array (serde
//! would read `"gateway": ["0.0.0.0", 28792]` as the struct's fields in
//! order), and a string that looks like a `$NAME` reference must be one.
//!
//! The ranges are generous for real use and far from overflow, so code that
//! turns them into `Duration`s, allocations or deadlines cannot wrap.

use super::{Config, Invalid};
use serde_json::Value;

/// One checked number: where, its value and the allowed range.
struct Range {
    path: String,
    value: u64,
    min: u64,
    max: u64,
    fix: &'static str,
}

fn r(path: impl Into<String>, value: u64, min: u64, max: u64, fix: &'static str) -> Range {
    Range {
        path: path.into(),
        value,
        min,
        max,
        fix,
    }
}

const MIB: u64 = 1024 * 1024;
const DAY: u64 = 86_400;

fn ranges(cfg: &Config) -> Vec<Range> {
    let g = &cfg.gateway;
    let d = &cfg.agents.defaults;
    let e = &cfg.tools.exec;
    let f = &cfg.tools.web_fetch;
    let q = &cfg.queue;
    let mut out = vec![
        r(
            "gateway.maxBodyBytes",
            g.max_body_bytes as u64,
            1024,
            MIB,
            "the default is 262144; the framing cap is 1048576",
        ),
        r(
            "gateway.sessionCache",
            g.session_cache as u64,
            1,
            100_000,
            "the default is 256",
        ),
        r(
            "agents.defaults.maxRounds",
            d.max_rounds.into(),
            1,
            100,
            "the default is 8",
        ),
        r(
            "agents.defaults.timeoutSeconds",
            d.timeout_seconds,
            1,
            DAY,
            "seconds for one whole run; the default is 300",
        ),
        r(
            "agents.defaults.bootstrapMaxChars",
            d.bootstrap_max_chars as u64,
            0,
            1_000_000,
            "the default is 2000",
        ),
        r(
            "agents.defaults.thinkingBudget",
            d.thinking_budget.into(),
            0,
            1_000_000,
            "the default is 1024",
        ),
        r(
            "tools.exec.timeoutSeconds",
            e.timeout_seconds,
            1,
            3600,
            "the default is 30",
        ),
        r(
            "tools.exec.maxOutputBytes",
            e.max_output_bytes as u64,
            1,
            16 * MIB,
            "the default is 16384",
        ),
        r(
            "tools.exec.maxMemoryMb",
            e.max_memory_mb,
            16,
            1 << 20,
            "the default is 512",
        ),
        r(
            "tools.exec.maxCpuSeconds",
            e.max_cpu_seconds,
            1,
            3600,
            "the default is 20",
        ),
        r(
            "tools.webFetch.maxBytes",
            f.max_bytes as u64,
            1024,
            16 * MIB,
            "the default is 524288",
        ),
        r(
            "tools.webFetch.timeoutSeconds",
            f.timeout_seconds,
            1,
            600,
            "the default is 20",
        ),
        r(
            "queue.maxEntries",
            q.max_entries,
            1,
            10_000_000,
            "the default is 10000",
        ),
        r(
            "queue.maxBytes",
            q.max_bytes,
            1024,
            64 * 1024 * MIB,
            "the default is 16777216",
        ),
        r(
            "queue.maxAttempts",
            q.max_attempts.into(),
            1,
            10_000,
            "the default is 20",
        ),
        r(
            "queue.maxAgeMs",
            q.max_age_ms,
            1000,
            365 * DAY * 1000,
            "the default is 86400000 (a day)",
        ),
        r(
            "queue.maxDead",
            q.max_dead,
            0,
            10_000_000,
            "the default is 1000",
        ),
        r(
            "queue.baseBackoffMs",
            q.base_backoff_ms,
            1,
            DAY * 1000,
            "the default is 1000",
        ),
        r(
            "queue.maxBackoffMs",
            q.max_backoff_ms,
            1,
            DAY * 1000,
            "the default is 300000",
        ),
        r(
            "queue.dedupKeep",
            q.dedup_keep,
            0,
            10_000_000,
            "the default is 2000",
        ),
        r(
            "queue.dedupMaxAgeMs",
            q.dedup_max_age_ms,
            0,
            365 * DAY * 1000,
            "the default is 172800000 (two days)",
        ),
        r(
            "tools.webSearch.maxResults",
            cfg.tools.web_search.max_results as u64,
            1,
            20,
            "5 keeps a small model's context light",
        ),
        r(
            "tools.webSearch.timeoutSeconds",
            cfg.tools.web_search.timeout_seconds,
            1,
            120,
            "the default is 20",
        ),
    ];
    for (id, p) in &cfg.models.providers {
        let base = format!("models.providers.{id}");
        let t = &p.timeouts;
        out.push(r(
            format!("{base}.timeouts.connect"),
            t.connect,
            1,
            300,
            "seconds; the default is 10",
        ));
        out.push(r(
            format!("{base}.timeouts.firstToken"),
            t.first_token,
            1,
            3600,
            "seconds; the default is 120",
        ));
        out.push(r(
            format!("{base}.timeouts.idle"),
            t.idle,
            1,
            3600,
            "seconds; the default is 60",
        ));
        out.push(r(
            format!("{base}.timeouts.total"),
            t.total,
            1,
            DAY,
            "seconds; the default is 600",
        ));
        for (i, m) in p.models.iter().enumerate() {
            out.push(r(
                format!("{base}.models[{i}].contextWindow"),
                m.context_window.into(),
                512,
                10_000_000,
                "the model's context length in tokens",
            ));
        }
    }
    for (name, ch) in &cfg.channels {
        let base = format!("channels.{name}");
        out.push(r(
            format!("{base}.pollTimeoutSeconds"),
            ch.poll_timeout_seconds.into(),
            0,
            300,
            "the default is 30",
        ));
        if let Some(n) = ch.text_chunk_limit {
            out.push(r(
                format!("{base}.textChunkLimit"),
                n as u64,
                1,
                65_536,
                "Telegram's limit is 4096",
            ));
        }
    }
    for (name, h) in &cfg.hooks {
        out.push(r(
            format!("hooks.{name}.maxBodyBytes"),
            h.max_body_bytes as u64,
            1,
            MIB,
            "the default is 65536",
        ));
    }
    out
}

/// Every number inside its range, plus the cross-field and text rules.
pub(crate) fn check(cfg: &Config) -> Result<(), Invalid> {
    for x in ranges(cfg) {
        if x.value < x.min || x.value > x.max {
            return Err(Invalid::new(
                x.path,
                format!(
                    "{} is out of range: it must be between {} and {}",
                    x.value, x.min, x.max
                ),
                x.fix.to_string(),
            ));
        }
    }
    if let Some(t) = cfg.agents.defaults.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(Invalid::new(
                "agents.defaults.temperature".into(),
                format!("{t} is out of range: it must be between 0 and 2"),
                "leave it out to use the model's default".into(),
            ));
        }
    }
    if cfg.queue.base_backoff_ms > cfg.queue.max_backoff_ms {
        return Err(Invalid::new(
            "queue.baseBackoffMs".into(),
            "baseBackoffMs is above maxBackoffMs".into(),
            "make baseBackoffMs the smaller of the two".into(),
        ));
    }
    if let Some(h) = &cfg.agents.defaults.heartbeat {
        let every: String = h.every.chars().filter(|c| !c.is_whitespace()).collect();
        let zero = every.chars().all(|c| c == '0' || c.is_ascii_alphabetic());
        if zero && every != "0m" && every.chars().any(|c| c == '0') {
            return Err(Invalid::new(
                "agents.defaults.heartbeat.every".into(),
                format!("{:?} is zero, which would never beat", h.every),
                "write \"0m\" to switch the heartbeat off, or an interval such as \"30m\"".into(),
            ));
        }
        if let Ok(Some(ms)) = h.every_ms() {
            if ms > 7 * DAY * 1000 {
                return Err(Invalid::new(
                    "agents.defaults.heartbeat.every".into(),
                    format!("{:?} is longer than a week", h.every),
                    "use a cron job for rarer check-ins".into(),
                ));
            }
        }
    }
    if cfg.tools.exec.sandbox != "on" && cfg.tools.exec.sandbox != "off" {
        return Err(Invalid::new(
            "tools.exec.sandbox".into(),
            format!("unknown value {:?}", cfg.tools.exec.sandbox),
            "use \"on\" (the default: Landlock, or programs are refused) or \"off\"".into(),
        ));
    }
    if cfg.tools.exec.allow_shell && cfg.tools.exec.sandbox == "off" {
        return Err(Invalid::new(
            "tools.exec.allowShell".into(),
            "a shell runs any program, so it needs the sandbox".into(),
            "set tools.exec.sandbox to \"on\" (needs Landlock) or allowShell to false".into(),
        ));
    }
    check_proxies(cfg)
}

fn check_proxies(cfg: &Config) -> Result<(), Invalid> {
    let mut blocks: Vec<(String, &crate::net::NetworkConfig)> = Vec::new();
    if let Some(n) = &cfg.network {
        blocks.push(("network".into(), n));
    }
    for (id, p) in &cfg.models.providers {
        if let Some(n) = &p.network {
            blocks.push((format!("models.providers.{id}.network"), n));
        }
    }
    for (name, c) in &cfg.channels {
        if let Some(n) = &c.network {
            blocks.push((format!("channels.{name}.network"), n));
        }
    }
    for (name, n) in [
        ("tools.webFetch.network", &cfg.tools.web_fetch.network),
        ("tools.webSearch.network", &cfg.tools.web_search.network),
    ] {
        if let Some(n) = n {
            blocks.push((name.into(), n));
        }
    }
    for (path, n) in blocks {
        if let Some(p) = &n.proxy {
            if let Err(e) = crate::net::ProxySpec::parse(p) {
                return Err(Invalid::new(
                    format!("{path}.proxy"),
                    e,
                    "use \"direct\", \"env\" or a URL such as \"http://127.0.0.1:3128\" or \"socks5h://127.0.0.1:1080\"".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Finds an array where the schema has an object: `typed` is the parsed
/// config serialised back (every struct is an object there), `raw` the
/// file's value. Returns the field path of the first mismatch.
pub fn array_for_object(raw: &Value, typed: &Value, path: &str) -> Option<String> {
    match (raw, typed) {
        (Value::Array(_), Value::Object(_)) => Some(path.to_string()),
        (Value::Object(r), Value::Object(t)) => r.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            t.get(k).and_then(|tv| array_for_object(v, tv, &p))
        }),
        (Value::Array(r), Value::Array(t)) => r
            .iter()
            .zip(t.iter())
            .enumerate()
            .find_map(|(i, (rv, tv))| array_for_object(rv, tv, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// A string that starts like a reference (`$`, `${`) but is not a valid
/// `$NAME`, `${NAME}` or escaped `$${`: the field path and the text.
pub fn bad_reference(v: &Value, path: &str) -> Option<(String, String)> {
    match v {
        Value::String(s) => {
            if super::env::malformed_reference(s) {
                Some((path.to_string(), s.clone()))
            } else {
                None
            }
        }
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            bad_reference(x, &p)
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| bad_reference(x, &format!("{path}[{i}]"))),
        _ => None,
    }
}
