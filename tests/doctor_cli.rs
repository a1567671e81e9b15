//! `pinch doctor` as a user runs it: each provider probed along its own
//! route, each failure classified with curl's code and a hint, exposure and
//! permission checks, `--json`, and a non-zero exit when anything fails.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;

fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().expect("addr").port();
    drop(l);
    p
}

/// Accepts, reads the request, then closes with a reset.
fn resetting_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            reset(&s);
        }
    });
    port
}

/// Answers every request with 200 and a Date header.
fn ok_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = fake_server::read_request(&mut s, &mut Vec::new());
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

/// The status `pinch doctor --json` gives the gateway exposure check.
fn exposure_status(home: &TempHome) -> String {
    let out = home.run(&["doctor", "--json", "--timeout", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let check = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "gateway exposure")
        .cloned()
        .expect("exposure");
    check["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn doctor_classifies_each_failure_and_exits_non_zero() {
    let home = TempHome::new("doctor");
    let (refused, reset, ok) = (dead_port(), resetting_server(), ok_server());
    home.write_config(&format!(
        r#"{{"models": {{"providers": {{
  "refused": {{"baseUrl": "http://127.0.0.1:{refused}/v1", "models": [{{"id": "m"}}]}},
  "reset": {{"baseUrl": "http://127.0.0.1:{reset}/v1", "models": [{{"id": "m"}}]}},
  "nodns": {{"baseUrl": "http://no-such-host.invalid/v1", "models": [{{"id": "m"}}]}},
  "good": {{"baseUrl": "http://127.0.0.1:{ok}/v1", "models": [{{"id": "m"}}]}}
}}}}, "agents": {{"defaults": {{"model": "good/m"}}}}}}"#
    ));
    let out = home.run(&["doctor", "--json", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1), "failures give a non-zero exit");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    assert_eq!(check("provider refused")["probe"]["curlCode"], 7);
    assert_eq!(check("provider reset")["probe"]["curlCode"], 56);
    assert_eq!(check("provider nodns")["probe"]["curlCode"], 6);
    assert_eq!(check("provider good")["status"], "ok");
    assert!(
        check("provider refused")["hint"]
            .as_str()
            .unwrap_or("")
            .len()
            > 10,
        "a hint per failure"
    );
    assert!(check("provider good")["probe"]["route"]
        .as_str()
        .unwrap_or("")
        .starts_with("direct"));
    assert_eq!(check("gateway exposure")["status"], "ok");
    assert_eq!(check("config permissions")["status"], "ok");
    assert_eq!(check("free disk")["status"], "ok");
    assert_ne!(
        check("clock")["status"],
        "",
        "clock checked against the Date header"
    );
    // Human output names the route and the curl code.
    let out = home.run(&["doctor", "--timeout", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL provider refused") && text.contains("curl exit 7"),
        "{text}"
    );
    // A non-loopback bind without a token is an error; with one, a warning.
    home.write_config(r#"{"gateway": {"bind": "lan"}}"#);
    let exposure = exposure_status(&home);
    assert_eq!(exposure, "fail");
    home.write_config(r#"{"gateway": {"bind": "lan", "auth": {"token": "long-random-token"}}}"#);
    let exposure = exposure_status(&home);
    assert_eq!(exposure, "warn");
}
