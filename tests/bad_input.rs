//! A corpus of hostile bytes thrown at the real gateway binary over raw TCP:
//! malformed HTTP heads, bad paths and escapes, oversized headers, bad
//! WebSocket handshakes and frames, malformed and deeply nested JSON. After
//! every case the gateway must still answer, must not have logged a panic,
//! and at the end `/healthz` answers 200 and a chat works.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const HOOK_TOKEN: &str = "0123456789abcdef-hook";

fn start(tag: &str) -> (TempHome, FakeLlm, Gateway) {
    let home = TempHome::new(tag);
    let llm = FakeLlm::openai();
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "hooks": {{"gh": {{"token": "{HOOK_TOKEN}", "message": "Push: {{{{body}}}}", "maxBodyBytes": 4096}}}}"#
        ),
    ));
    let gw = Gateway::start(&home, &[]);
    (home, llm, gw)
}

/// Sends `bytes` on a fresh connection, closes the writing side (so a
/// short body ends instead of waiting), and returns what came back.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before reading everything (413, 431).
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn status_of(response: &[u8]) -> Option<u16> {
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn healthz(addr: SocketAddr) -> Option<u16> {
    status_of(&exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ))
}

fn ws_upgrade(path_and_extra: &str) -> Vec<u8> {
    format!(
        "GET {path_and_extra}\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A masked client frame (RFC 6455 5.2) with any opcode and flags.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn ws_text(json: &str) -> Vec<u8> {
    let mut b = ws_upgrade("/ws HTTP/1.1");
    b.extend(frame(true, 1, json.as_bytes()));
    b
}

fn post(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    b.extend_from_slice(body);
    b
}

fn raw_path(method: &str, path: &[u8]) -> Vec<u8> {
    let mut b = format!("{method} ").into_bytes();
    b.extend_from_slice(path);
    b.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
    b
}

/// Each case: a name, the bytes, and the status it must get (None: any
/// answer or a silent close is acceptable; the gateway must only survive).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Option<u16>,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Option<u16>) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        expect,
    }
}

fn corpus() -> Vec<Case> {
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(50_000);
    let hook_auth = format!("Authorization: Bearer {HOOK_TOKEN}\r\n");
    let mut many_headers = b"GET /healthz HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        many_headers.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut huge_header = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
    huge_header.extend(std::iter::repeat(b'a').take(64 * 1024));
    huge_header.extend_from_slice(b"\r\n\r\n");
    let mut long_path = b"GET /".to_vec();
    long_path.extend(std::iter::repeat(b'p').take(15_000));
    long_path.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    vec![
        // Heads that are not HTTP.
        case("empty", b"".to_vec(), None),
        case("only CRLFs", b"\r\n\r\n\r\n\r\n".to_vec(), None),
        case("binary garbage", (0..=255u8).cycle().take(4096).collect::<Vec<u8>>(), Some(400)),
        case("TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), None),
        case("no version", b"GET /healthz\r\n\r\n".to_vec(), None),
        case("HTTP/9.9", b"GET /healthz HTTP/9.9\r\n\r\n".to_vec(), Some(400)),
        case("NUL in method", b"G\0T /healthz HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
        case("header without colon", b"GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n".to_vec(), Some(400)),
        case("space in header name", b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n".to_vec(), Some(400)),
        case("obsolete line folding", b"GET /healthz HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n".to_vec(), None),
        case("bare LF line ends", b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec(), None),
        case("head cut short", b"GET /healthz HTTP/1.1\r\nHost: loc".to_vec(), None),
        case("200 headers", many_headers, Some(400)),
        case("64 KiB header", huge_header, Some(431)),
        case("15 KB path", long_path, None),
        case("invalid UTF-8 in header value", b"GET /healthz HTTP/1.1\r\nX-A: \xff\xfe\xc3\r\n\r\n".to_vec(), None),
        // Paths and escapes (the percent-decoding cases that panic today are in
        // `percent_escapes_off_a_char_boundary`, below).
        case("raw invalid UTF-8 path", raw_path("GET", b"/api/sessions/\xff\xfe"), None),
        case("raw UTF-8 path", raw_path("GET", "/api/sessions/é€😀".as_bytes()), None),
        case("lone percent", raw_path("GET", b"/api/sessions/%"), None),
        case("percent and one hex digit", raw_path("GET", b"/api/sessions/%4"), None),
        case("percent non-hex", raw_path("DELETE", b"/api/sessions/%zz%"), None),
        case("percent NUL", raw_path("GET", b"/api/sessions/%00"), None),
        case("percent-encoded invalid UTF-8", raw_path("GET", b"/api/sessions/%ff%fe%c3"), None),
        case("percent-encoded traversal", raw_path("GET", b"/api/sessions/..%2f..%2fetc%2fpasswd"), None),
        case("absolute URI", b"GET http://evil.example/healthz HTTP/1.1\r\n\r\n".to_vec(), None),
        case("asterisk target", b"OPTIONS * HTTP/1.1\r\n\r\n".to_vec(), None),
        case("query only", b"GET ?a=%ff HTTP/1.1\r\n\r\n".to_vec(), None),
        case("cron path junk", raw_path("GET", b"/api/cron/%ff%"), None),
        case("hook with empty name", post("/hooks/", &hook_auth, b"x"), None),
        case("hook traversal", post("/hooks/../../gh", &hook_auth, b"x"), None),
        // Bodies.
        case("Content-Length negative", b"POST /api/chat HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(), Some(400)),
        case("Content-Length 2^64", b"POST /api/chat HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n".to_vec(), Some(400)),
        case("Content-Length 2^64-1", b"POST /api/chat HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n".to_vec(), Some(413)),
        case("Content-Length hex", b"POST /api/chat HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n".to_vec(), Some(400)),
        case("two Content-Lengths", b"POST /api/chat HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}".to_vec(), None),
        case("chunked", b"POST /api/chat HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), Some(411)),
        case("body shorter than its length", b"POST /api/chat HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"text\"".to_vec(), None),
        case("chat: not JSON", post("/api/chat", "", b"not json"), Some(400)),
        case("chat: invalid UTF-8", post("/api/chat", "", b"{\"text\": \"\xff\xfe\"}"), Some(400)),
        case("chat: lone surrogate", post("/api/chat", "", br#"{"session":"http:x","text":"\ud800","stream":false}"#), None),
        case("chat: deep array", post("/api/chat", "", deep_array.as_bytes()), None),
        case("chat: deep object", post("/api/chat", "", deep_object.as_bytes()), None),
        case("chat: wrong types", post("/api/chat", "", br#"{"session":[1],"text":{"a":1},"stream":"yes"}"#), None),
        case("chat: NUL in session", post("/api/chat", "", br#"{"session":"web:\u0000","text":"hi","stream":false}"#), None),
        case("call: method not a string", post("/api/call", "", br#"{"method":1}"#), Some(400)),
        case("call: unknown method", post("/api/call", "", br#"{"method":"x.y","params":[]}"#), None),
        case("call: deep params", post("/api/call", "", format!("{{\"method\":\"status\",\"params\":{deep_array}").as_bytes()), None),
        case("cron: huge interval", post("/api/cron", "", br#"{"name":"a","every":"99999999999999d","message":"m"}"#), None),
        case("cron: eight fields", post("/api/cron", "", br#"{"name":"b","cron":"* * * * * * * *","message":"m"}"#), None),
        case("cron: zone traversal", post("/api/cron", "", br#"{"name":"c","cron":"0 9 * * *","tz":"../../../etc/passwd","message":"m"}"#), None),
        case("cron: bad date", post("/api/cron", "", br#"{"name":"d","at":"2026-13-45T99:99:99Z","message":"m"}"#), None),
        case("cron: negative jitter", post("/api/cron", "", br#"{"name":"e","every":"1h","message":"m","jitterMs":-1}"#), None),
        case("cron: name with multibyte", post("/api/cron", "", "{\"name\":\"é€😀\",\"every\":\"1h\",\"message\":\"m\"}".as_bytes()), None),
        case("hook: wrong token", post("/hooks/gh", "Authorization: Bearer wrong-wrong-wrong\r\n", b"x"), Some(401)),
        case("hook: binary body", post("/hooks/gh", &hook_auth, b"\xff\x00\xfe{{body}}\xc3"), None),
        case("hook: body over its cap", post("/hooks/gh", &hook_auth, &[b'x'; 5000]), None),
        // WebSocket handshakes.
        case("ws: no key", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(), Some(400)),
        case("ws: not an upgrade", b"GET /ws HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
        case("ws: version 99", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 99\r\n\r\n".to_vec(), None),
        case("ws: empty key", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(), None),
        case("ws: key of invalid UTF-8", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \xff\xfe\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(), None),
        case("ws: garbage after upgrade", [ws_upgrade("/ws HTTP/1.1"), (0..=255u8).collect()].concat(), None),
        // WebSocket frames.
        case("ws: unmasked frame", [ws_upgrade("/ws HTTP/1.1"), b"\x81\x02{}".to_vec()].concat(), None),
        case("ws: 2^63 length", [ws_upgrade("/ws HTTP/1.1"), b"\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff\0\0\0\0".to_vec()].concat(), None),
        case("ws: reserved bits and opcode", [ws_upgrade("/ws HTTP/1.1"), frame(true, 0x73, b"x")].concat(), None),
        case("ws: fragmented ping", [ws_upgrade("/ws HTTP/1.1"), frame(false, 9, b"p"), frame(true, 0, b"q")].concat(), None),
        case("ws: 200-byte ping", [ws_upgrade("/ws HTTP/1.1"), frame(true, 9, &[b'p'; 200])].concat(), None),
        case("ws: continuation first", [ws_upgrade("/ws HTTP/1.1"), frame(true, 0, b"{}")].concat(), None),
        case("ws: close with bad code", [ws_upgrade("/ws HTTP/1.1"), frame(true, 8, b"\x00\x01bye")].concat(), None),
        case("ws: close with invalid UTF-8 reason", [ws_upgrade("/ws HTTP/1.1"), frame(true, 8, b"\x03\xe8\xff")].concat(), None),
        case("ws: invalid UTF-8 text", [ws_upgrade("/ws HTTP/1.1"), frame(true, 1, b"{\"a\":\"\xff\"}")].concat(), None),
        case("ws: binary frame", [ws_upgrade("/ws HTTP/1.1"), frame(true, 2, b"\x00\x01")].concat(), None),
        case("ws: frame over 1 MiB", [ws_upgrade("/ws HTTP/1.1"), frame(true, 1, &vec![b' '; 1_100_000])].concat(), None),
        // JSON protocol frames.
        case("frame: not JSON", ws_text("hello"), None),
        case("frame: deep array", ws_text(&deep_array), None),
        case("frame: deep object", ws_text(&deep_object), None),
        case("frame: 65-byte id", ws_text(&format!(r#"{{"type":"req","id":"{}","method":"status"}}"#, "i".repeat(65))), None),
        case("frame: 64 multibyte id", ws_text(&format!(r#"{{"type":"req","id":"{}","method":"status"}}"#, "€".repeat(64))), None),
        case("frame: 33-char method", ws_text(&format!(r#"{{"type":"req","id":"1","method":"{}"}}"#, "m".repeat(33))), None),
        case("frame: unknown field", ws_text(r#"{"type":"req","id":"1","method":"status","extra":1}"#), None),
        case("frame: lone surrogate", ws_text(r#"{"type":"req","id":"\ud800","method":"status"}"#), None),
        case("frame: chat with wrong types", ws_text(r#"{"type":"req","id":"1","method":"chat.send","params":{"session":7,"text":["x"]}}"#), None),
        case("frame: history with huge limit", ws_text(r#"{"type":"req","id":"1","method":"chat.history","params":{"session":"web:x","limit":18446744073709551615}}"#), None),
        case("frame: history with negative limit", ws_text(r#"{"type":"req","id":"1","method":"chat.history","params":{"session":"web:x","limit":-1}}"#), None),
        case("frame: cron.add bad spec", ws_text(r#"{"type":"req","id":"1","method":"cron.add","params":{"name":"","cron":"61 25 32 13 8","tz":"Mars/Olympus","message":""}}"#), None),
    ]
}

/// Panics the gateway log shows (the debug binary unwinds and logs them;
/// a release binary would have exited).
fn panics_in(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("panicked"))
        .map(str::to_string)
        .collect()
}

fn wait_healthy(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if healthz(addr) == Some(200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn chat_works(gw: &Gateway) {
    let (status, body) = http_post(
        &format!("{}/api/chat", gw.url()),
        None,
        r#"{"session": "http:after", "text": "still there?", "stream": false}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["text"], "Hello from fake: still there?", "{v}");
}

fn run_cases(gw: &Gateway, cases: Vec<Case>) -> Vec<String> {
    let mut problems = Vec::new();
    for c in cases {
        let before = gw.log().len();
        let response = exchange(gw.addr, &c.bytes);
        let status = status_of(&response);
        if let Some(want) = c.expect {
            if status != Some(want) {
                problems.push(format!("{}: status {status:?}, expected {want}", c.name));
            }
        }
        if !wait_healthy(gw.addr) {
            problems.push(format!("{}: /healthz stopped answering", c.name));
            break;
        }
        let log = gw.log();
        let new = panics_in(&log[before.min(log.len())..]);
        if !new.is_empty() {
            problems.push(format!(
                "{}: the gateway panicked: {}",
                c.name,
                new.join(" | ")
            ));
        }
    }
    problems
}

#[test]
fn bad_input_corpus_leaves_the_gateway_healthy_and_chatting() {
    let (_home, _llm, gw) = start("badinput");
    let cases = corpus();
    let n = cases.len();
    let problems = run_cases(&gw, cases);
    assert!(
        problems.is_empty(),
        "{} of {n} cases:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(healthz(gw.addr), Some(200));
    chat_works(&gw);
    assert!(panics_in(&gw.log()).is_empty(), "{}", gw.log());
    assert!(gw.child.id() > 0);
    let mut gw = gw;
    assert!(
        gw.child.try_wait().expect("wait").is_none(),
        "gateway exited"
    );
}

/// Percent escapes cut off a multibyte character: the path decoder once
/// panicked on these (one request ended a release build).
#[test]
fn percent_escapes_off_a_char_boundary() {
    let (_home, _llm, gw) = start("badpercent");
    let hook_auth = format!("Authorization: Bearer {HOOK_TOKEN}\r\n");
    let cases = vec![
        case("POST /hooks/%€", post("/hooks/%€", &hook_auth, b"x"), None),
        case(
            "POST /hooks/x%1é",
            post("/hooks/x%1é", &hook_auth, b"x"),
            None,
        ),
        case(
            "GET /api/sessions/%1é",
            raw_path("GET", "/api/sessions/%1é".as_bytes()),
            None,
        ),
        case(
            "DELETE /api/sessions/%1é",
            raw_path("DELETE", "/api/sessions/%1é".as_bytes()),
            None,
        ),
        case(
            "GET /api/cron/%1é",
            raw_path("GET", "/api/cron/%1é".as_bytes()),
            None,
        ),
    ];
    let problems = run_cases(&gw, cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    chat_works(&gw);
}
