//! Black-box hardening of the gateway's edge: the real binary, raw sockets
//! and hostile requests. Each test leaves the gateway answering `/healthz`.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn setup(tag: &str, extra: &str) -> (TempHome, FakeLlm) {
    let home = TempHome::new(tag);
    let llm = FakeLlm::openai();
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], extra));
    (home, llm)
}

/// Sends raw bytes and reads until the peer closes (bounded); returns the
/// whole answer as lossy text ("" when the connection was dropped).
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP answer (0 if none).
fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn assert_healthy(gw: &Gateway) {
    let (status, body) = http_get(&format!("{}/healthz", gw.url()), None);
    assert_eq!(status, 200, "gateway still answers; log:\n{}", gw.log());
    assert_eq!(body, "ok\n");
}

#[test]
fn percent_escapes_cut_through_a_character_are_answered_not_fatal() {
    let (home, _llm) = setup("pct", "");
    let gw = Gateway::start(&home, &[]);
    let paths = [
        ("POST", "/hooks/%\u{20ac}"),
        ("POST", "/hooks/x%1\u{e9}"),
        ("GET", "/api/sessions/%1\u{e9}"),
        ("DELETE", "/api/sessions/%1\u{e9}"),
        ("GET", "/api/cron/%1\u{e9}"),
        ("GET", "/api/cron/%"),
        ("GET", "/api/sessions/%%%"),
        ("POST", "/hooks/%ff%fe"),
    ];
    for (method, path) in paths {
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
        let answer = raw(gw.addr, req.as_bytes());
        let status = status_of(&answer);
        assert!(
            (200..500).contains(&status),
            "{method} {path}: an answer, got {answer:?}; log:\n{}",
            gw.log()
        );
        assert_healthy(&gw);
    }
}

#[test]
fn unknown_api_call_method_is_404_without_echoing_the_request() {
    let (home, _llm) = setup("call", "");
    let gw = Gateway::start(&home, &[]);
    let long = "m".repeat(200_000);
    let (status, body) = http_post(
        &format!("{}/api/call", gw.url()),
        None,
        &json!({"method": long, "params": {}}).to_string(),
    );
    assert_eq!(status, 404, "{}", &body[..body.len().min(300)]);
    assert!(body.len() < 1000, "no echo: {} bytes", body.len());
    let (status, body) = http_post(
        &format!("{}/api/call", gw.url()),
        None,
        &json!({"method": "no.such", "params": {}}).to_string(),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("METHOD_NOT_FOUND"), "{body}");
    assert_healthy(&gw);
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A raw WebSocket upgrade request with extra header lines.
fn upgrade(addr: SocketAddr, extra: &str) -> String {
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    );
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the response head; a 101 keeps the socket open, any other answer
    // is followed by its body and the close.
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    if !out.starts_with(b"HTTP/1.1 101") {
        let _ = s.read_to_end(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_web_page_cannot_drive_the_gateway_but_its_own_page_and_the_cli_can() {
    let (home, _llm) = setup(
        "origin",
        r#", "gateway": {"allowedOrigins": ["https://app.example"], "allowedHosts": ["pinch.home.arpa"]}"#,
    );
    let gw = Gateway::start(&home, &[]);
    let a = gw.addr;
    // A WebSocket from a foreign page is refused with a clear body.
    let answer = upgrade(a, "Origin: http://evil.example\r\n");
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(answer.contains("gateway.allowedOrigins"), "{answer}");
    // The gateway's own page, a listed origin, and origin-less clients pass.
    assert_eq!(
        status_of(&upgrade(a, &format!("Origin: http://{a}\r\n"))),
        101
    );
    assert_eq!(
        status_of(&upgrade(a, "Origin: https://app.example\r\n")),
        101
    );
    assert_eq!(status_of(&upgrade(a, "")), 101);
    // Cross-site "simple" POSTs (text/plain, forms) never reach the agent.
    let body = r#"{"text":"run","stream":false}"#;
    for (ctype, origin, want) in [
        ("text/plain", "", 415),
        ("application/x-www-form-urlencoded", "", 415),
        ("application/json", "Origin: http://evil.example\r\n", 403),
        ("text/plain", "Origin: null\r\n", 403),
    ] {
        for path in ["/api/chat", "/api/cron"] {
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: {a}\r\n{origin}Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let answer = raw(a, req.as_bytes());
            assert_eq!(
                status_of(&answer),
                want,
                "{path} {ctype} {origin}: {answer}"
            );
        }
    }
    // DNS rebinding: our socket, a foreign name.
    let req = "GET /api/sessions HTTP/1.1\r\nHost: rebind.evil.example:18789\r\n\r\n";
    let answer = raw(a, req.as_bytes());
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(answer.contains("gateway.allowedHosts"), "{answer}");
    for host in ["localhost", "pinch.home.arpa:80", "[::1]:1"] {
        let req = format!("GET /api/sessions HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(status_of(&raw(a, req.as_bytes())), 200, "{host}");
    }
    // The page itself loads, and the CLI still chats.
    let (status, page) = http_get(&format!("{}/", gw.url()), None);
    assert_eq!(status, 200);
    assert!(page.contains("WebSocket"), "the web chat page");
    home.run_ok(&["chat", "--url", &gw.url(), "hello"]);
    // No job was added by the refused cron POSTs.
    let (status, jobs) = http_get(&format!("{}/api/cron", gw.url()), None);
    assert_eq!(status, 200);
    // (The one job is the built-in weekly memory consolidation.)
    assert_eq!(jobs.matches("\"name\"").count(), 1, "{jobs}");
    assert!(jobs.contains("memory-consolidation"), "{jobs}");
}

#[test]
fn malformed_framing_and_handshakes_are_refused() {
    let (home, _llm) = setup("framing", "");
    let gw = Gateway::start(&home, &[]);
    let a = gw.addr;
    let req = format!("POST /api/chat HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}");
    assert_eq!(status_of(&raw(a, req.as_bytes())), 400);
    let v99 = format!("GET /ws HTTP/1.1\r\nHost: {a}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: {KEY}\r\n\r\n");
    let answer = raw(a, v99.as_bytes());
    assert_eq!(status_of(&answer), 426, "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13"), "{answer}");
    for key in ["", "abc", "!!!!!!!!!!!!!!!!!!!!!!=="] {
        let req = format!("GET /ws HTTP/1.1\r\nHost: {a}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n");
        assert_eq!(status_of(&raw(a, req.as_bytes())), 400, "key {key:?}");
    }
    assert_healthy(&gw);
}

#[test]
fn the_right_token_passes_during_a_lockout_and_wrong_ones_get_429() {
    let token = "correct-horse-battery-staple";
    let (home, _llm) = setup(
        "lockout",
        &format!(r#", "gateway": {{"auth": {{"token": "{token}"}}}}"#),
    );
    let gw = Gateway::start(&home, &[]);
    let url = format!("{}/status", gw.url());
    let mut last = 0;
    for _ in 0..6 {
        last = http_get(&url, Some("wrong")).0;
    }
    assert_eq!(last, 429, "locked out");
    assert_eq!(http_get(&url, Some(token)).0, 200, "the right token passes");
    let answer = upgrade(gw.addr, &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(status_of(&answer), 101, "{answer}");
    let answer = upgrade(gw.addr, "Authorization: Bearer wrong\r\n");
    assert_eq!(status_of(&answer), 429, "{answer}");
    assert!(answer.contains("Retry-After"), "{answer}");
}

#[test]
fn an_unauthenticated_websocket_is_closed_after_a_few_seconds() {
    let (home, _llm) = setup(
        "wsauth",
        r#", "gateway": {"auth": {"token": "0123456789abcdef-token"}}"#,
    );
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        match ws.ws.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "closed without a connect");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    // One that authenticates stays.
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("connect", json!({"token": "0123456789abcdef-token"}));
    assert_eq!(r["ok"], true, "{r}");
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        let r = ws.call("sessions.list", json!({}));
        assert_eq!(r["ok"], true, "still open: {r}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Opens a connection that sends a request head one byte at a time,
/// one byte a second, from its own thread; returns how it ended.
fn slowloris(addr: SocketAddr) -> std::thread::JoinHandle<(Duration, String)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let Ok(mut s) = TcpStream::connect(addr) else {
            return (started.elapsed(), "refused".into());
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
        let head = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut buf = [0u8; 512];
        for b in head.iter() {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            match s.read(&mut buf) {
                Ok(n) => {
                    return (
                        started.elapsed(),
                        String::from_utf8_lossy(&buf[..n]).into_owned(),
                    )
                }
                Err(_) => {}
            }
            if started.elapsed() > Duration::from_secs(40) {
                break;
            }
        }
        (started.elapsed(), "no answer".into())
    })
}

#[test]
fn slow_heads_time_out_and_health_checks_get_through_a_full_house() {
    let (home, _llm) = setup("slowloris", r#", "gateway": {"maxConnections": 8}"#);
    let gw = Gateway::start(&home, &[]);
    let attackers: Vec<_> = (0..8).map(|_| slowloris(gw.addr)).collect();
    // Let every attacker hold its slot.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut ok = false;
    while started.elapsed() < Duration::from_secs(8) {
        let answer = raw(gw.addr, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        if status_of(&answer) == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok, "/healthz got through while slow heads held the slots");
    for a in attackers {
        let (took, how) = a.join().expect("join");
        assert!(
            took < Duration::from_secs(15) && (how.contains(" 408 ") || how.contains(" 503 ")),
            "a slow head is cut off by the deadline: {took:?} {how:?}"
        );
    }
    assert_healthy(&gw);
}

#[test]
fn a_lan_bind_needs_a_strong_token() {
    for token in ["a", "   ", "short token 12"] {
        let home = TempHome::new("weak");
        let llm = FakeLlm::openai();
        home.write_config(&config_for(
            &[("fake", &llm)],
            "fake/m1",
            &[],
            &format!(r#", "gateway": {{"auth": {{"token": "{token}"}}}}"#),
        ));
        let err = match Gateway::try_start(&home, &["--bind", "lan"]) {
            Ok(_) => panic!("started on a LAN bind with token {token:?}"),
            Err(log) => log,
        };
        assert!(err.contains("gateway.auth.token"), "{token:?}: {err}");
    }
}

#[test]
fn a_burst_of_deltas_reaches_slow_and_non_streaming_readers_whole() {
    let (home, llm) = setup("burst", "");
    let gw = Gateway::start(&home, &[]);
    let pieces: Vec<String> = (0..1500).map(|i| format!("w{i} ")).collect();
    let whole = pieces.concat();
    // Non-streaming HTTP: one answer, nothing else buffered.
    llm.push(Reply::Text(pieces.clone()));
    let (status, body) = http_post(
        &format!("{}/api/chat", gw.url()),
        None,
        &json!({"text": "go", "stream": false, "session": "http:a"}).to_string(),
    );
    assert_eq!(status, 200, "{}", &body[..body.len().min(300)]);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["text"].as_str(), Some(whole.as_str()));
    // Streaming HTTP read slowly: every character arrives, then final.
    llm.push(Reply::Text(pieces.clone()));
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req_body = json!({"text": "go", "session": "http:b"}).to_string();
    let req = format!(
        "POST /api/chat HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{req_body}",
        gw.addr,
        req_body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(1500));
    let mut out = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let text = String::from_utf8_lossy(&out);
    let streamed: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d.get("usage").is_none())
        .filter_map(|d| d["text"].as_str().map(str::to_string))
        .collect();
    assert!(text.contains("event: final"), "final arrives");
    assert_eq!(streamed, whole, "every delta arrives, merged or not");
    // WebSocket read slowly.
    llm.push(Reply::Text(pieces));
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "web:slow", "text": "go"}));
    assert_eq!(r["ok"], true, "{r}");
    std::thread::sleep(Duration::from_millis(1500));
    let mut got = String::new();
    loop {
        let v = ws.read();
        std::thread::sleep(Duration::from_millis(2));
        match v["event"].as_str() {
            Some("chat.delta") => got.push_str(v["payload"]["text"].as_str().unwrap_or("")),
            Some("chat.final") => break,
            Some("chat.error") => panic!("{v}"),
            _ => {}
        }
    }
    assert_eq!(got, whole);
    assert_healthy(&gw);
}

#[test]
fn a_large_answer_and_its_history_reach_the_websocket() {
    let (home, llm) = setup("large", "");
    let gw = Gateway::start(&home, &[]);
    let pieces: Vec<String> = (0..60)
        .map(|i| format!("{i:02}{}", "x".repeat(9_998)))
        .collect();
    let whole = pieces.concat();
    llm.push(Reply::Text(pieces));
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "web:big", "text": "go"}));
    assert_eq!(r["ok"], true, "{r}");
    let events = ws.until_done();
    let fin = events.last().expect("final");
    assert_eq!(fin["event"], "chat.final", "{}", gw.log());
    assert_eq!(
        fin["payload"]["text"].as_str().map(str::len),
        Some(whole.len())
    );
    // History of a session with a 600 KB turn: bounded, marked, socket kept.
    let h = ws.call("chat.history", json!({"session": "web:big"}));
    assert_eq!(h["ok"], true, "{h}");
    assert_eq!(h["payload"]["complete"], false);
    let turns = h["payload"]["turns"].as_array().expect("turns");
    let last = turns.last().expect("a turn");
    assert_eq!(last["truncated"], true);
    assert!(last["text"].as_str().map(str::len).unwrap_or(0) <= 512 * 1024);
    assert_eq!(
        ws.call("sessions.list", json!({}))["ok"],
        true,
        "still open"
    );
}

#[test]
fn the_running_gateway_is_named_pinch() {
    let (home, _llm) = setup("comm", "");
    let gw = Gateway::start(&home, &[]);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", gw.child.id())).expect("comm");
    assert_eq!(comm.trim(), "pinch");
}

#[test]
fn an_oversized_chat_text_is_413() {
    let (home, _llm) = setup("big-text", "");
    let gw = Gateway::start(&home, &[]);
    let text = "y".repeat(40 * 1024);
    let (status, body) = http_post(
        &format!("{}/api/chat", gw.url()),
        None,
        &json!({"text": text, "stream": false}).to_string(),
    );
    assert_eq!(status, 413, "{body}");
}
