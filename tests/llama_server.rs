//! Against a real llama.cpp `llama-server` with a small model, when one is
//! available: `PINCH_LLAMA_URL` (e.g. http://127.0.0.1:8080), as `.ci/run`
//! provides. Without it each test says so and passes without checking.
//! The model's words are nonsense-grade; the assertions are on the protocol.

mod common;

use common::*;
use serde_json::json;

fn llama() -> Option<String> {
    match std::env::var("PINCH_LLAMA_URL") {
        Ok(u) if !u.is_empty() => Some(u.trim_end_matches('/').to_string()),
        _ => {
            eprintln!(
                "SKIPPED: no llama-server (set PINCH_LLAMA_URL, as .ci/run does, to run this test)"
            );
            None
        }
    }
}

fn config(base_url: &str, api: &str) -> String {
    format!(
        r#"{{"models": {{"providers": {{"llama": {{"baseUrl": "{base_url}", "api": "{api}", "timeouts": {{"firstToken": 120, "idle": 60}},
            "models": [{{"id": "smollm2", "contextWindow": 4096, "maxTokens": 48}}]}}}}}},
            "agents": {{"defaults": {{"temperature": 0}}}}}}"#
    )
}

fn chat_once(api: &str, base_url: &str) {
    let home = TempHome::new(&format!("llama-{api}"));
    home.write_config(&config(base_url, api));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call(
        "chat.send",
        json!({"session": "t:llama", "text": "Say hello."}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let events = ws.until_done();
    let last = events.last().expect("final");
    assert_eq!(
        last["event"],
        "chat.final",
        "{api}: {events:?}\n{}",
        gw.log()
    );
    assert_eq!(last["payload"]["model"], "llama/smollm2");
    let text = last["payload"]["text"].as_str().unwrap_or("");
    assert!(!text.trim().is_empty(), "{api}: empty answer");
    let deltas = events.iter().filter(|e| e["event"] == "chat.delta").count();
    assert!(
        deltas >= 2,
        "{api}: answer should stream in pieces, got {deltas}"
    );
    // The turn is persisted with the model that answered.
    let h = ws.call("chat.history", json!({"session": "t:llama"}));
    assert_eq!(h["payload"]["turns"][1]["model"], "llama/smollm2");
}

#[test]
fn openai_completions_against_llama_server() {
    if let Some(url) = llama() {
        chat_once("openai-completions", &format!("{url}/v1"));
    }
}

#[test]
fn anthropic_messages_against_llama_server() {
    if let Some(url) = llama() {
        // llama-server also serves the Anthropic Messages API at /v1/messages;
        // its base URL is written without /v1, as llama.cpp's docs and the
        // Anthropic SDK write it.
        chat_once("anthropic-messages", &url);
    }
}

#[test]
fn the_second_turn_is_served_from_llama_cache() {
    let Some(url) = llama() else { return };
    let home = TempHome::new("llama-cache");
    home.write_config(&config(&url, "openai-completions"));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let mut usage = Vec::new();
    for text in ["Say hello.", "Say goodbye."] {
        let r = ws.call("chat.send", json!({"session": "t:cache", "text": text}));
        assert_eq!(r["ok"], true, "{r}");
        let events = ws.until_done();
        let last = events.last().expect("final");
        assert_eq!(last["event"], "chat.final", "{events:?}");
        usage.push(last["payload"]["usage"].clone());
    }
    // The turn's own usage carries llama.cpp's cache counts.
    assert!(
        usage[1]["cacheRead"].as_u64().expect("cacheRead") > 0,
        "{usage:?}"
    );
    assert!(usage[1]["cacheWritten"].as_u64().is_some(), "{usage:?}");
    // llama-server's timings (cache_n, prompt_n) of the second turn.
    let s = ws.call("status", json!({}));
    let last = &s["payload"]["promptCache"]["lastRun"];
    let read = last["readTokens"].as_u64().expect("readTokens");
    let written = last["writtenTokens"].as_u64().expect("writtenTokens");
    let share = read as f64 / (read + written).max(1) as f64;
    eprintln!("second turn: {read} prompt tokens from cache, {written} evaluated ({share:.3})");
    assert!(share > 0.85, "second turn re-evaluated the prompt: {last}");
}

#[test]
fn a_new_users_first_request_fits_1200_tokens() {
    let Some(url) = llama() else { return };
    // What pinch sends for a new user's first message with a 4k window
    // (default workspace, bundled skills), counted by llama-server's own
    // chat template and tokenizer.
    let home = TempHome::new("llama-first");
    let llm = FakeLlm::openai();
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "t:first", "text": "hello"}));
    assert_eq!(r["ok"], true, "{r}");
    ws.until_done();
    let body = llm.requests().remove(0).body;
    let (status, rendered) = http_post(
        &format!("{url}/apply-template"),
        None,
        &json!({"messages": body["messages"], "tools": body["tools"]}).to_string(),
    );
    assert_eq!(status, 200, "{rendered}");
    let prompt = serde_json::from_str::<serde_json::Value>(&rendered).expect("json")["prompt"]
        .as_str()
        .expect("prompt")
        .to_string();
    assert!(
        prompt.contains("\"read_file\""),
        "the server's template dropped the tools; start it with a tool-capable template (scripts/local-llm.sh does)"
    );
    let (status, tokens) = http_post(
        &format!("{url}/tokenize"),
        None,
        &json!({"content": prompt, "parse_special": true}).to_string(),
    );
    assert_eq!(status, 200, "{tokens}");
    let n = serde_json::from_str::<serde_json::Value>(&tokens).expect("json")["tokens"]
        .as_array()
        .expect("tokens")
        .len();
    eprintln!(
        "first request: {n} prompt tokens ({} tools)",
        body["tools"].as_array().map_or(0, Vec::len)
    );
    assert!(n <= 1200, "first request of {n} tokens, over 1,200");
}

#[test]
fn status_shows_the_real_servers_health() {
    let Some(url) = llama() else { return };
    let home = TempHome::new("llama-health");
    home.write_config(&config(&format!("{url}/v1"), "openai-completions"));
    let gw = Gateway::start(&home, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let entry = loop {
        let (code, body) = http_get(&format!("{}/status", gw.url()), None);
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let e = v["localModels"]["llama"].clone();
        if e["state"] == "ok" {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never showed ready: {e}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    eprintln!("status.localModels.llama: {entry}");
    assert!(
        entry["model"].as_str().unwrap_or("").ends_with(".gguf"),
        "{entry}"
    );
    let n_ctx = entry["contextSize"].as_u64().expect("contextSize");
    assert!(n_ctx >= 512, "{entry}");
    assert!(entry["slots"].as_u64().expect("slots") >= 1, "{entry}");
    assert!(entry["slotsBusy"].as_u64().is_some(), "{entry}");
}
