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
