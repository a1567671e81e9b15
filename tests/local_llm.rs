//! The health of a local llama.cpp server in `GET /status` (`localModels`),
//! `pinch status` and `pinch doctor`, against a loopback fake that speaks
//! llama-server's `/health`, `/props` and `/slots` (payloads as llama.cpp
//! writes them), moving from loading to ready to gone.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOADING: u8 = 0;
const READY: u8 = 1;

/// A fake llama-server: `/health` 503 "Loading model" or 200, `/props` with
/// 2 slots of 4096 tokens, `/slots` with one busy. `stop` closes its port.
struct FakeLlama {
    port: u16,
    state: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeLlama {
    fn start() -> FakeLlama {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(AtomicU8::new(LOADING));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => answer(stream, st.load(Ordering::SeqCst)),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeLlama {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
    }

    /// Closes the port: connections are refused from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeLlama {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(mut stream: TcpStream, state: u8) {
    stream.set_nonblocking(false).expect("blocking");
    let request = fake_server::read_request(&mut stream, &mut Vec::new());
    let path = request.as_ref().map_or("", |r| r.path.as_str());
    let loading = r#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#;
    let (code, body) = match (path, state) {
        (_, LOADING) => (503, loading.to_string()),
        ("/health", _) => (200, r#"{"status":"ok"}"#.to_string()),
        ("/props", _) => (
            200,
            r#"{"default_generation_settings":{"n_ctx":4096,"params":{"temperature":0.8}},"total_slots":2,"model_path":"/srv/models/qwen2.5-0.5b-instruct-q4_k_m.gguf","build_info":"b0-unknown"}"#
                .to_string(),
        ),
        ("/slots", _) => (
            200,
            r#"[{"id":0,"n_ctx":4096,"speculative":false,"is_processing":true},{"id":1,"n_ctx":4096,"speculative":false,"is_processing":false}]"#
                .to_string(),
        ),
        _ => (404, r#"{"error":{"message":"File Not Found","code":404}}"#.to_string()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn config(port: u16) -> String {
    // contextWindow 8192 on a server started with 4096, and 4 slots asked of
    // a server with 2: both are warned about.
    format!(
        r#"{{"models": {{"providers": {{"llama": {{"baseUrl": "http://127.0.0.1:{port}/v1", "api": "openai-completions", "slots": 4,
            "models": [{{"id": "local", "contextWindow": 8192, "maxTokens": 256}}]}}}}}},
          "agents": {{"defaults": {{"model": "llama/local"}}}}}}"#
    )
}

/// Polls `GET /status` until `check` holds for `localModels.llama`.
fn wait_status(gw: &Gateway, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = http_get(&format!("{}/status", gw.url()), None);
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("status json");
        let entry = v["localModels"]["llama"].clone();
        if check(&entry) {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {what}: {entry}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn status_follows_the_local_server_from_loading_to_ready_to_gone() {
    let mut fake = FakeLlama::start();
    let home = TempHome::new("local-llm-status");
    home.write_config(&config(fake.port));
    let gw = Gateway::start(&home, &[]);

    let loading = wait_status(&gw, "loading", |e| e["state"] == "loading");
    assert_eq!(loading["reachable"], true);
    assert_eq!(loading["ready"], false);
    assert_eq!(loading["lastError"], "/health: Loading model");
    assert_eq!(
        loading["baseUrl"],
        format!("http://127.0.0.1:{}/v1", fake.port)
    );

    fake.set(READY);
    let ready = wait_status(&gw, "ready", |e| e["state"] == "ok");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["model"], "qwen2.5-0.5b-instruct-q4_k_m.gguf");
    assert_eq!(ready["contextSize"], 4096);
    assert_eq!(ready["slots"], 2);
    assert_eq!(ready["slotsBusy"], 1);
    assert!(ready["checkedAgoMs"].as_u64().is_some(), "{ready}");
    // The loading phase stays visible as the last error.
    assert_eq!(ready["lastError"], "/health: Loading model");
    let warnings = ready["warnings"].to_string();
    assert!(
        warnings
            .contains("contextWindow 8192 of model local is above the server's context size 4096"),
        "{warnings}"
    );
    assert!(warnings.contains("-np 4"), "{warnings}");

    // `pinch status` prints the gateway's view.
    let out = home.run(&["status", "--url", &gw.url()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("local model server llama: ready; model qwen2.5-0.5b-instruct-q4_k_m.gguf; context 4096; slots 2 (1 busy)"),
        "{text}"
    );
    assert!(text.contains("warning: contextWindow 8192"), "{text}");

    // `pinch doctor` asks the server itself and warns about the window.
    let out = home.run(&["doctor", "--json", "--timeout", "2"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let check = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == "local model server llama")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(check["status"], "warn", "{report}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap_or("")
            .contains("healthy; model qwen2.5-0.5b-instruct-q4_k_m.gguf; context 4096; slots 2"),
        "{check}"
    );

    fake.stop();
    let gone = wait_status(&gw, "unreachable", |e| e["state"] == "unreachable");
    assert_eq!(gone["reachable"], false);
    assert!(gone["model"].is_null(), "{gone}");
    let err = gone["lastError"].as_str().unwrap_or("");
    assert!(!err.is_empty() && !err.contains("Loading"), "{gone}");
    assert!(gone["lastErrorAgoMs"].as_u64().is_some(), "{gone}");
    gw.stop();
}

#[test]
fn no_local_server_no_local_models() {
    let llm = FakeLlm::anthropic();
    let home = TempHome::new("local-llm-none");
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let s = ws.call("status", json!({}));
    assert_eq!(s["ok"], true, "{s}");
    assert!(s["payload"]["localModels"].is_null(), "{s}");
    assert!(llm.requests().is_empty(), "no probe of a cloud provider");
    gw.stop();
}
