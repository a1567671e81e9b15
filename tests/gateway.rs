//! End to end: the real binary as a gateway against a fake streaming model.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn setup(tag: &str) -> (TempHome, FakeLlm) {
    let home = TempHome::new(tag);
    let llm = FakeLlm::openai();
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    (home, llm)
}

#[test]
fn chat_over_websocket_streams_deltas_and_names_the_model() {
    let (home, llm) = setup("ws");
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "web:t1", "text": "ping"}));
    assert_eq!(r["ok"], true, "{r}");
    let events = ws.until_done();
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "chat.delta")
        .filter_map(|e| e["payload"]["text"].as_str())
        .collect();
    // The outbox merges deltas still pending when the connection thread
    // wakes, so a fast model may arrive in fewer frames than it sent.
    assert!(!deltas.is_empty(), "streamed before the final: {events:?}");
    assert_eq!(deltas.concat(), "Hello from fake: ping");
    let fin = events.last().expect("final");
    assert_eq!(fin["event"], "chat.final");
    assert_eq!(fin["payload"]["model"], "fake/m1");
    assert_eq!(fin["payload"]["usage"]["input"], 11);
    // The model got a system prompt and the user's text, with Bearer auth.
    let seen = llm.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert!(seen[0]
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Bearer test-key"));
    assert_eq!(seen[0].body["stream"], true);
    assert_eq!(seen[0].body["messages"][0]["role"], "system");
}

#[test]
fn cli_chat_prints_the_reply_and_exits_zero() {
    let (home, _llm) = setup("cli");
    let gw = Gateway::start(&home, &[]);
    let out = home.run(&["chat", "--url", &gw.url(), "hello", "there"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Hello from fake: hello there"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("fake/m1"));
    // Interactive mode reads lines from stdin, one conversation.
    let mut child = home
        .cmd()
        .args(["chat", "--url", &gw.url(), "--session", "cli:int"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "one\ntwo").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fake: one") && text.contains("fake: two"),
        "{text}"
    );
}

#[test]
fn cli_chat_reports_unreachable_gateway_and_model() {
    let home = TempHome::new("unreach");
    let out = home.run(&["chat", "--url", "http://127.0.0.1:1", "hi"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the gateway"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A gateway whose model server is down: the run fails with a clear message.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    home.write_config(&format!(r#"{{"models": {{"providers": {{"x": {{"baseUrl": "http://127.0.0.1:{port}/v1", "timeouts": {{"connect": 2}}, "models": [{{"id": "m"}}]}}}}}}}}"#));
    let gw = Gateway::start(&home, &[]);
    let out = home.run(&["chat", "--url", &gw.url(), "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x/m") && err.to_lowercase().contains("refused"),
        "{err}"
    );
}

#[test]
fn http_chat_streams_sse_and_answers_json() {
    let (home, _llm) = setup("http");
    let gw = Gateway::start(&home, &[]);
    let (status, body) = http_post(
        &format!("{}/api/chat", gw.url()),
        None,
        r#"{"session": "http:a", "text": "sse please"}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("event: delta"), "{body}");
    assert!(body.contains("event: final"), "{body}");
    assert!(body.contains("fake: sse please"));
    let (status, body) = http_post(
        &format!("{}/api/chat", gw.url()),
        None,
        r#"{"session": "http:a", "text": "json please", "stream": false}"#,
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["text"], "Hello from fake: json please");
    let (status, _) = http_post(&format!("{}/api/chat", gw.url()), None, "not json");
    assert_eq!(status, 400);
}

#[test]
fn sessions_survive_a_restart() {
    let home = TempHome::new("persist");
    let llm = FakeLlm::openai();
    // The offline CLI below must not find some other gateway on the default port.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(r#", "gateway": {{"port": {unused}}}"#),
    ));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    assert_eq!(
        ws.call(
            "chat.send",
            json!({"session": "web:keep", "text": "remember me"})
        )["ok"],
        true
    );
    ws.until_done();
    drop(ws);
    assert_eq!(gw.stop(), Some(0), "clean exit on SIGTERM");
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let h = ws.call("chat.history", json!({"session": "web:keep"}));
    let turns = h["payload"]["turns"].as_array().expect("turns").clone();
    assert_eq!(turns.len(), 2, "{h}");
    assert_eq!(turns[0]["text"], "remember me");
    assert_eq!(turns[1]["model"], "fake/m1");
    // The next request carries the earlier turns to the model.
    assert_eq!(
        ws.call("chat.send", json!({"session": "web:keep", "text": "again"}))["ok"],
        true
    );
    ws.until_done();
    let last = llm.requests().pop().expect("request");
    let msgs = last.body["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 4, "system + 2 history + new: {msgs:?}");
    // The CLI sees the same sessions through the API, and offline.
    let out = home.run(&["sessions", "list", "--url", &gw.url()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("web:keep"));
    drop(ws);
    gw.stop();
    let out = home.run(&["sessions", "show", "web:keep"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("remember me") && text.contains("again"),
        "{text}"
    );
    let out = home.run(&["sessions", "reset", "web:keep"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reset"));
}

#[test]
fn non_loopback_bind_without_token_is_refused() {
    let home = TempHome::new("bind");
    let out = home.run(&["gateway", "run", "--bind", "lan", "--port", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gateway.auth.token") && err.contains("refusing"),
        "{err}"
    );
    assert!(err.contains("fix:"), "{err}");
}

#[test]
fn token_is_enforced_on_http_and_websocket() {
    let home = TempHome::new("token");
    let llm = FakeLlm::openai();
    std::fs::write(home.path.join(".env"), "GW_TOKEN=s3cret-token\n").expect("env");
    common::write_private(&home.path.join(".env"), "GW_TOKEN=s3cret-token\n");
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        r#", "gateway": {"auth": {"token": "$GW_TOKEN"}}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    assert_eq!(
        http_get(&format!("{}/healthz", gw.url()), None).0,
        200,
        "health is open"
    );
    assert_eq!(http_get(&format!("{}/status", gw.url()), None).0, 401);
    assert_eq!(
        http_get(&format!("{}/status", gw.url()), Some("wrong")).0,
        401
    );
    let (st, body) = http_get(&format!("{}/status", gw.url()), Some("s3cret-token"));
    assert_eq!(st, 200);
    assert!(body.contains("\"version\""));
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"text": "hi"}));
    assert_eq!(r["error"]["code"], "UNAUTHORIZED");
    assert_eq!(
        ws.call("connect", json!({"token": "s3cret-token"}))["ok"],
        true
    );
    assert_eq!(ws.call("chat.send", json!({"text": "hi"}))["ok"], true);
    ws.until_done();
    // The CLI picks the token up from the config.
    home.run_ok(&["chat", "--url", &gw.url(), "via cli"]);
    // Repeated failures lock the address out.
    let mut last = 0;
    for _ in 0..6 {
        last = http_get(&format!("{}/status", gw.url()), Some("bad")).0;
    }
    assert_eq!(last, 429);
    assert_eq!(
        http_get(&format!("{}/status", gw.url()), Some("s3cret-token")).0,
        200,
        "the right token passes during a lockout"
    );
}

#[test]
fn malformed_and_oversized_frames_get_error_frames() {
    let home = TempHome::new("frames");
    let llm = FakeLlm::openai();
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        r#", "gateway": {"maxBodyBytes": 4096}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    ws.send_raw("this is not json");
    let v = ws.read();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
    ws.send_raw(r#"{"type":"req","id":"x","method":"no.such"}"#);
    assert_eq!(ws.read()["error"]["code"], "METHOD_NOT_FOUND");
    ws.send_raw(&format!(
        r#"{{"type":"req","id":"big","method":"chat.send","params":{{"text":"{}"}}}}"#,
        "a".repeat(5000)
    ));
    assert_eq!(ws.read()["error"]["code"], "TOO_LARGE");
    // The connection is still usable.
    assert_eq!(ws.call("health", json!({}))["ok"], true);
    // Past the hard framing limit the gateway answers and closes.
    ws.send_raw(&"b".repeat(2 * 1024 * 1024));
    let v = ws.read();
    assert_eq!(v["error"]["code"], "TOO_LARGE", "{v}");
    // Oversized HTTP bodies are refused too.
    let (st, _) = http_post(&format!("{}/api/chat", gw.url()), None, &"x".repeat(10_000));
    assert_eq!(st, 413);
    // And the gateway is alive.
    assert_eq!(http_get(&format!("{}/healthz", gw.url()), None).0, 200);
}

#[test]
fn status_reports_memory_sessions_and_models() {
    let (home, _llm) = setup("status");
    let gw = Gateway::start(&home, &[]);
    let (st, body) = http_get(&format!("{}/status", gw.url()), None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["rssKiB"].as_u64().expect("rss") > 0);
    assert_eq!(v["models"]["fake/m1"]["state"], "ok");
    let out = home.run(&["status", "--url", &gw.url()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("fake/m1: ok"));
    let (st, body) = http_get(&format!("{}/", gw.url()), None);
    assert_eq!(st, 200);
    assert!(body.contains("<title>pinch</title>"));
}

#[test]
fn connection_limit_answers_503_not_a_thread() {
    let (home, _llm) = setup("connlimit");
    home.write_config(&config_for(
        &[("fake", &_llm)],
        "fake/m1",
        &[],
        r#", "gateway": {"maxConnections": 2}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    let a = std::net::TcpStream::connect(gw.addr).expect("a");
    let b = std::net::TcpStream::connect(gw.addr).expect("b");
    std::thread::sleep(Duration::from_millis(200));
    let (st, _) = http_get(&format!("{}/healthz", gw.url()), None);
    assert_eq!(st, 503);
    drop((a, b));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http_get(&format!("{}/healthz", gw.url()), None).0, 200);
}

#[test]
fn messages_sent_while_a_run_is_going_all_get_answers_in_order() {
    let (home, llm) = setup("queued");
    llm.push(Reply::Text(vec!["slow ".into(), "first".into()]));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let mut ids = Vec::new();
    for t in ["one", "two", "three", "four"] {
        ids.push(ws.req("chat.send", json!({"session": "web:q", "text": t})));
    }
    let mut finals = Vec::new();
    while finals.len() < 4 {
        let v = ws.read();
        if v["event"] == "chat.final" {
            finals.push(v["payload"]["text"].as_str().unwrap_or("").to_string());
        }
        assert_ne!(v["event"], "chat.error", "{v}");
    }
    assert_eq!(
        finals,
        vec![
            "slow first",
            "Hello from fake: two",
            "Hello from fake: three",
            "Hello from fake: four"
        ]
    );
}

/// How many of process `pid`'s threads have a name starting with `prefix`.
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn agent_workers_start_on_demand_and_exit_when_idle() {
    let (home, _llm) = setup("workers");
    let gw = Gateway::start(&home, &[]);
    let pid = gw.child.id();
    assert_eq!(threads_named(pid, "agent-"), 0, "no worker before any run");
    let mut ws = Ws::connect(gw.addr);
    for round in 0..2 {
        let r = ws.call(
            "chat.send",
            json!({"session": "web:workers", "text": format!("round {round}")}),
        );
        assert_eq!(r["ok"], true, "{r}");
        let events = ws.until_done();
        assert_eq!(events.last().expect("final")["event"], "chat.final");
        assert_eq!(threads_named(pid, "agent-"), 1, "one worker served the run");
        // Idle workers exit (after 3 s); the next run starts a new one.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while threads_named(pid, "agent-") > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(threads_named(pid, "agent-"), 0, "the idle worker exited");
    }
}

#[test]
fn gateway_runs_with_the_thread_stack_cache_off() {
    let (home, _llm) = setup("stackcache");
    let gw = Gateway::start(&home, &[]);
    // The test's environment lacks the setting: the gateway re-executed
    // itself (same PID) with it, and still serves.
    let environ = std::fs::read(format!("/proc/{}/environ", gw.child.id())).expect("environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ
            .split('\0')
            .any(|v| v == "GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0"),
        "{environ}"
    );
    let (st, _) = http_get(&format!("{}/healthz", gw.url()), None);
    assert_eq!(st, 200);
}
