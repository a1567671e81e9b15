//! Health of a local llama.cpp server (a provider on loopback, or marked
//! with `cachePrompt: true`): `GET /health`, `GET /props` and `GET /slots`.
//! Plain HTTP to the provider's own host, no proxy, a short timeout, a
//! capped body.
//!
//! `pinch doctor` probes directly. The gateway keeps a snapshot per local
//! provider for `status.localModels`: one thread (`start_monitor`) probes
//! at start, every `INTERVAL`, and when a status request asks
//! (`status_json` nudges it, at most one probe per `MIN_GAP`); the reactor
//! only reads the snapshot and never waits on the network. What the
//! snapshot says is computed by the pure `entry_json`.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Time between two probes when nobody asks.
const INTERVAL: Duration = Duration::from_secs(60);
/// Least time between two probes, however often status is asked.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Timeout of one probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a llama-server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalInfo {
    /// `/health` answered 200: the model is loaded and the server ready.
    pub healthy: bool,
    /// `/health`'s HTTP status.
    pub health_status: u16,
    /// The server's own words when `/health` is not 200 (e.g. "Loading model").
    pub health_message: Option<String>,
    /// The loaded model's file name (from `/props` `model_path`).
    pub model: Option<String>,
    /// Context size per slot (`/props` `default_generation_settings.n_ctx`).
    pub n_ctx: Option<u64>,
    /// Server slots (`/props` `total_slots`).
    pub slots: Option<u64>,
    /// Slots generating right now (`/slots` `is_processing`), when the
    /// server offers `/slots`.
    pub slots_busy: Option<u64>,
}

/// The server root of an OpenAI-style base URL (`…/v1` dropped).
pub fn root_of(base_url: &str) -> String {
    let b = base_url.trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_string()
}

/// Reads `/props` JSON (pure).
pub fn parse_props(body: &str) -> (Option<String>, Option<u64>, Option<u64>) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (None, None, None);
    };
    let model = v["model_path"].as_str().map(|p| {
        let name = p.rsplit('/').next().unwrap_or(p);
        crate::util::truncate(name, 120).to_string()
    });
    let n_ctx = v["default_generation_settings"]["n_ctx"]
        .as_u64()
        .or_else(|| v["n_ctx"].as_u64());
    (model, n_ctx, v["total_slots"].as_u64())
}

/// Busy slots from `/slots` JSON (an array of slots), else `None` (pure).
pub fn parse_slots(body: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(body).ok()?;
    let slots = v.as_array()?;
    Some(
        slots
            .iter()
            .filter(|s| s["is_processing"].as_bool() == Some(true))
            .count() as u64,
    )
}

/// The message of an error body (`{"error":{"message":…}}`), capped (pure).
pub fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let m = v["error"]["message"]
        .as_str()
        .or_else(|| v["error"].as_str())?;
    Some(crate::util::truncate(m, 200).to_string())
}

/// Asks the server at `base_url`; Err says why it could not be reached.
pub fn probe(base_url: &str, timeout: Duration) -> Result<LocalInfo, String> {
    let root = root_of(base_url);
    let agent = crate::net::new_agent(
        ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .proxy(None)
            .http_status_as_error(false)
            .build(),
    );
    let get = |path: &str| -> Result<(u16, String), String> {
        let mut resp = agent
            .get(&format!("{root}{path}"))
            .call()
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, body))
    };
    let (status, body) = get("/health")?;
    let (model, n_ctx, slots) = match get("/props") {
        Ok((200, body)) => parse_props(&body),
        _ => (None, None, None),
    };
    let slots_busy = match get("/slots") {
        Ok((200, body)) => parse_slots(&body),
        _ => None,
    };
    Ok(LocalInfo {
        healthy: status == 200,
        health_status: status,
        health_message: (status != 200)
            .then(|| error_message(&body).unwrap_or_else(|| format!("HTTP {status}"))),
        model,
        n_ctx,
        slots,
        slots_busy,
    })
}

/// One line for doctor and status.
pub fn describe(info: &LocalInfo) -> String {
    format!(
        "{}; model {}; context {}; slots {}",
        if info.healthy {
            "healthy".to_string()
        } else {
            format!(
                "not ready (/health: {})",
                info.health_message.as_deref().unwrap_or("not 200")
            )
        },
        info.model.as_deref().unwrap_or("unknown"),
        info.n_ctx.map_or("unknown".to_string(), |n| n.to_string()),
        info.slots.map_or("unknown".to_string(), |n| n.to_string()),
    )
}

/// The gateway's view of one local model server.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The provider's id in `models.providers`.
    pub id: String,
    pub base_url: String,
    /// The provider's models: id and `contextWindow`.
    pub windows: Vec<(String, u32)>,
    /// `models.providers.<id>.slots`.
    pub slots_configured: Option<u32>,
    /// The newest answer; `None` before the first probe or when the newest
    /// probe found nobody.
    pub info: Option<LocalInfo>,
    /// When the newest probe ended (unix ms); `None` before the first.
    pub checked_ms: Option<u64>,
    /// The newest failure (no answer, or `/health` not 200) and when.
    pub last_error: Option<(String, u64)>,
}

impl Entry {
    /// Records one probe's outcome at `now_ms`.
    pub fn record(&mut self, outcome: Result<LocalInfo, String>, now_ms: u64) {
        self.checked_ms = Some(now_ms);
        match outcome {
            Ok(info) => {
                if let Some(m) = &info.health_message {
                    self.last_error = Some((format!("/health: {m}"), now_ms));
                }
                self.info = Some(info);
            }
            Err(e) => {
                let e = crate::util::truncate(&e, 200).to_string();
                self.last_error = Some((e, now_ms));
                self.info = None;
            }
        }
    }
}

/// The `status.localModels.<id>` object of one server (pure).
pub fn entry_json(e: &Entry, now_ms: u64) -> Value {
    let info = e.info.as_ref();
    let state = match (e.checked_ms, info) {
        (None, _) => "unknown",
        (Some(_), None) => "unreachable",
        (Some(_), Some(i)) if i.healthy => "ok",
        (Some(_), Some(i)) if i.health_status == 503 => "loading",
        (Some(_), Some(_)) => "error",
    };
    let mut warnings = Vec::new();
    if let Some(n_ctx) = info.and_then(|i| i.n_ctx) {
        for (model, window) in &e.windows {
            if u64::from(*window) > n_ctx {
                warnings.push(format!("contextWindow {window} of model {model} is above the server's context size {n_ctx}: lower contextWindow or start the server with a larger -c"));
            }
        }
    }
    if let (Some(want), Some(have)) = (e.slots_configured, info.and_then(|i| i.slots)) {
        if u64::from(want) > have {
            warnings.push(format!("slots {want} is above the server's {have} slots: lower models.providers.{}.slots or start the server with -np {want}", e.id));
        }
    }
    let ago = |t: u64| now_ms.saturating_sub(t);
    json!({
        "baseUrl": e.base_url,
        "state": state,
        "reachable": info.is_some(),
        "ready": info.is_some_and(|i| i.healthy),
        "model": info.and_then(|i| i.model.clone()),
        "contextSize": info.and_then(|i| i.n_ctx),
        "slots": info.and_then(|i| i.slots),
        "slotsBusy": info.and_then(|i| i.slots_busy),
        "checkedAgoMs": e.checked_ms.map(ago),
        "lastError": e.last_error.as_ref().map(|(m, _)| m.clone()),
        "lastErrorAgoMs": e.last_error.as_ref().map(|(_, t)| ago(*t)),
        "warnings": warnings,
    })
}

/// The local model servers of a config, in provider order.
pub fn entries(cfg: &crate::config::Config) -> Vec<Entry> {
    cfg.models
        .providers
        .iter()
        .filter(|(_, p)| crate::provider::is_local_llama(p))
        .map(|(id, p)| Entry {
            id: id.clone(),
            base_url: p.base_url.clone(),
            windows: p
                .models
                .iter()
                .map(|m| (m.id.clone(), m.context_window))
                .collect(),
            slots_configured: p.slots,
            ..Entry::default()
        })
        .collect()
}

struct Monitor {
    entries: Arc<Mutex<Vec<Entry>>>,
    /// Asks the probe thread for a fresh look; holds at most one request.
    nudge: mpsc::SyncSender<()>,
    /// Raised at shutdown; the nudge that follows wakes the thread.
    stop: Arc<AtomicBool>,
    /// The probe thread, until the shutdown takes it to join.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static MONITOR: OnceLock<Monitor> = OnceLock::new();

/// Starts the probe thread of the gateway, once per process, when the
/// config has local model servers.
pub fn start_monitor(cfg: &crate::config::Config) -> Result<(), String> {
    let list = entries(cfg);
    if list.is_empty() || MONITOR.get().is_some() {
        return Ok(());
    }
    let shared = Arc::new(Mutex::new(list));
    let (nudge, asked) = mpsc::sync_channel(1);
    let for_thread = shared.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("local-llm".into())
        .stack_size(256 * 1024)
        .spawn(move || probe_loop(&for_thread, &asked, &stopped))
        .map_err(|e| format!("cannot start the local model monitor: {e}"))?;
    let _ = MONITOR.set(Monitor {
        entries: shared,
        nudge,
        stop,
        thread: Mutex::new(Some(thread)),
    });
    Ok(())
}

/// Shutdown: tells the probe thread to end (after the probe under way, at
/// most `PROBE_TIMEOUT`) and hands it over to be joined; `None` when no
/// monitor runs.
pub fn stop_monitor() -> Option<std::thread::JoinHandle<()>> {
    let m = MONITOR.get()?;
    m.stop.store(true, Ordering::SeqCst);
    // A full queue already holds a nudge, which wakes it as well.
    let _ = m.nudge.try_send(());
    crate::util::lock(&m.thread).take()
}

/// Probes every server now, then every `INTERVAL` or when nudged (at most
/// once per `MIN_GAP`). Ends when `stop` is raised or the sender is gone.
fn probe_loop(entries: &Mutex<Vec<Entry>>, asked: &mpsc::Receiver<()>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let targets: Vec<String> = match entries.lock() {
            Ok(list) => list.iter().map(|e| e.base_url.clone()).collect(),
            Err(_) => return,
        };
        for (i, url) in targets.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let outcome = probe(url, PROBE_TIMEOUT);
            let now = crate::util::now_ms();
            match entries.lock() {
                Ok(mut list) => {
                    if let Some(e) = list.get_mut(i) {
                        e.record(outcome, now);
                    }
                }
                Err(_) => return,
            }
        }
        let done = Instant::now();
        match asked.recv_timeout(INTERVAL) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let since = done.elapsed();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if since < MIN_GAP {
            std::thread::sleep(MIN_GAP.saturating_sub(since));
        }
        // Nudges that came meanwhile are answered by this round.
        while asked.try_recv().is_ok() {}
    }
}

/// `status.localModels`: `{ "<provider id>": entry }`, or `null` when no
/// local server is configured. Asks the monitor for a fresh look, which the
/// next status shows; never waits.
pub fn status_json() -> Value {
    let Some(m) = MONITOR.get() else {
        return Value::Null;
    };
    let _ = m.nudge.try_send(());
    let now = crate::util::now_ms();
    let Ok(list) = m.entries.lock() else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for e in list.iter() {
        out.insert(e.id.clone(), entry_json(e, now));
    }
    Value::Object(out)
}

/// One line of `pinch status` from a `status.localModels` entry (pure).
pub fn status_line(v: &Value) -> String {
    let text = |k: &str| v[k].as_str().unwrap_or("unknown").to_string();
    let num = |k: &str| {
        v[k].as_u64()
            .map_or("unknown".to_string(), |n| n.to_string())
    };
    let mut line = match v["state"].as_str().unwrap_or("unknown") {
        "ok" => "ready".to_string(),
        "loading" => "loading its model (/health 503)".to_string(),
        "unreachable" => "no answer".to_string(),
        "unknown" => "not checked yet".to_string(),
        other => other.to_string(),
    };
    if v["reachable"] == true {
        line.push_str(&format!(
            "; model {}; context {}; slots {} ({} busy)",
            text("model"),
            num("contextSize"),
            num("slots"),
            num("slotsBusy")
        ));
    }
    if let Some(age) = v["checkedAgoMs"].as_u64() {
        line.push_str(&format!("; checked {} s ago", age / 1000));
    }
    if let Some(e) = v["lastError"].as_str() {
        let age = v["lastErrorAgoMs"].as_u64().unwrap_or(0) / 1000;
        line.push_str(&format!("; last error {age} s ago: {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_and_roots() {
        assert_eq!(
            root_of("http://127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080"
        );
        let (m, c, s) = parse_props(
            r#"{"model_path":"/models/qwen2.5-1.5b-q4.gguf","total_slots":2,"default_generation_settings":{"n_ctx":4096}}"#,
        );
        assert_eq!(m.as_deref(), Some("qwen2.5-1.5b-q4.gguf"));
        assert_eq!((c, s), (Some(4096), Some(2)));
        assert_eq!(parse_props("not json"), (None, None, None));
    }

    #[test]
    fn slots_and_errors_as_llama_server_writes_them() {
        // Recorded from llama-server (llama.cpp 11434), `-np 4`, one busy.
        let slots = r#"[{"id":0,"n_ctx":4096,"speculative":false,"is_processing":true},{"id":1,"n_ctx":4096,"speculative":false,"is_processing":false},{"id":2,"n_ctx":4096,"is_processing":false},{"id":3,"n_ctx":4096,"is_processing":false}]"#;
        assert_eq!(parse_slots(slots), Some(1));
        assert_eq!(parse_slots(r#"{"error":"no slots"}"#), None);
        assert_eq!(parse_slots("["), None);
        let loading =
            r#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#;
        assert_eq!(error_message(loading).as_deref(), Some("Loading model"));
        assert_eq!(error_message("<html>"), None);
    }

    fn entry() -> Entry {
        Entry {
            id: "llama".into(),
            base_url: "http://127.0.0.1:8080/v1".into(),
            windows: vec![("small".into(), 4096), ("big".into(), 8192)],
            slots_configured: Some(4),
            ..Entry::default()
        }
    }

    #[test]
    fn states_warnings_and_the_last_error() {
        let mut e = entry();
        let v = entry_json(&e, 1_000);
        assert_eq!(v["state"], "unknown");
        assert_eq!(v["reachable"], false);
        assert!(v["checkedAgoMs"].is_null() && v["lastError"].is_null());

        e.record(Err("Connection refused".into()), 1_000);
        let v = entry_json(&e, 3_500);
        assert_eq!(v["state"], "unreachable");
        assert_eq!(v["lastError"], "Connection refused");
        assert_eq!(v["lastErrorAgoMs"], 2_500);
        assert_eq!(v["checkedAgoMs"], 2_500);

        let loading = LocalInfo {
            health_status: 503,
            health_message: Some("Loading model".into()),
            ..LocalInfo::default()
        };
        e.record(Ok(loading), 4_000);
        let v = entry_json(&e, 4_000);
        assert_eq!(v["state"], "loading");
        assert_eq!(
            (v["reachable"].clone(), v["ready"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(v["lastError"], "/health: Loading model");

        let ready = LocalInfo {
            healthy: true,
            health_status: 200,
            model: Some("m.gguf".into()),
            n_ctx: Some(4096),
            slots: Some(2),
            slots_busy: Some(1),
            ..LocalInfo::default()
        };
        e.record(Ok(ready), 5_000);
        let v = entry_json(&e, 6_000);
        assert_eq!(v["state"], "ok");
        assert_eq!(v["ready"], true);
        assert_eq!(v["model"], "m.gguf");
        assert_eq!(
            (
                v["contextSize"].clone(),
                v["slots"].clone(),
                v["slotsBusy"].clone()
            ),
            (json!(4096), json!(2), json!(1))
        );
        // The last failure stays visible, with its age.
        assert_eq!(v["lastErrorAgoMs"], 2_000);
        let warnings = v["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0]
            .as_str()
            .unwrap_or("")
            .contains("contextWindow 8192 of model big"));
        assert!(warnings[1].as_str().unwrap_or("").contains("-np 4"));
        assert_eq!(
            status_line(&v),
            "ready; model m.gguf; context 4096; slots 2 (1 busy); checked 1 s ago; last error 2 s ago: /health: Loading model"
        );
        e.record(Err("Connection refused".into()), 7_000);
        assert_eq!(
            status_line(&entry_json(&e, 7_000)),
            "no answer; checked 0 s ago; last error 0 s ago: Connection refused"
        );
    }
}
