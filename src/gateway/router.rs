//! The HTTP router: one accept thread and at most `gateway.maxConnections`
//! connection threads; each reads one request (`http.rs`) and routes it:
//! the web chat, `/healthz`, `/status`, `/api/...`, `/hooks/<name>`
//! (`proactive_http.rs`) and `/ws` (`ws.rs`).

use super::http::*;
use super::{ws, Shared, ToReactor};
use crate::gateway::auth;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Runs the accept loop until the listener fails or shutdown is flagged.
pub fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let unproven_cap = shared.max_conns - reserve_for(shared.max_conns);
    for stream in listener.incoming() {
        if shared.shutting_down.load(Ordering::Relaxed) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_nodelay(true);
        if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.max_conns {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            busy(stream);
            continue;
        }
        let in_reserve = shared.unproven.fetch_add(1, Ordering::SeqCst) >= unproven_cap;
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                let unproven = Unproven {
                    count: Some(&sh.unproven),
                };
                handle(stream, &sh, unproven, in_reserve);
                sh.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.unproven.fetch_sub(1, Ordering::SeqCst);
            shared.active.fetch_sub(1, Ordering::SeqCst);
            log::error!("cannot start a connection thread: {e}");
        }
    }
}

fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = respond(
        &mut stream,
        503,
        "text/plain",
        &[("Retry-After", "1".into())],
        b"busy: too many connections\n",
    );
}

fn handle(mut stream: TcpStream, shared: &Shared, unproven: Unproven, in_reserve: bool) {
    let remote = match stream.peer_addr() {
        Ok(a) => a.ip(),
        Err(_) => return,
    };
    let head_deadline = if in_reserve {
        RESERVE_HEAD_DEADLINE
    } else {
        HEAD_DEADLINE
    };
    let req = match read_request(&mut stream, remote, shared.max_body, head_deadline) {
        Ok(r) => r,
        Err((status, msg)) => {
            if status != 0 {
                let _ = respond(
                    &mut stream,
                    status,
                    "application/json",
                    &[],
                    error_body(&msg).as_bytes(),
                );
            }
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    if in_reserve
        && req.path != "/healthz"
        && !shared
            .auth
            .matches(auth::bearer(req.header("authorization")))
    {
        // The reserve is for health checks and clients with the token.
        busy(stream);
        return;
    }
    route(stream, req, shared, unproven);
}

const INDEX_HTML: &str = include_str!("webui.html");

/// The browser rules (see `origin.rs`): a foreign `Host` or `Origin` gets
/// 403, a state-changing API call without a JSON body type gets 415. On
/// refusal it answers and returns false.
fn browser_safe(stream: &mut TcpStream, req: &Request, shared: &Shared) -> bool {
    let hook = req.path.starts_with("/hooks/");
    // Webhooks are server-to-server and may come through a proxy under any
    // name; their own token guards them. A browser page still may not.
    let host = if hook { None } else { req.header("host") };
    if let Err(refusal) = shared.origin.check(host, req.header("origin")) {
        let _ = respond(
            stream,
            403,
            "application/json",
            &[],
            json!({"error": refusal.message, "code": "FORBIDDEN_ORIGIN"})
                .to_string()
                .as_bytes(),
        );
        return false;
    }
    // DELETE needs a CORS preflight, which the gateway never grants.
    let changes_state = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
    if changes_state && !hook && req.path.starts_with("/api/") {
        let json_body = req
            .header("content-type")
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().eq_ignore_ascii_case("application/json"))
            .unwrap_or(false);
        if !json_body {
            let _ = respond(
                stream,
                415,
                "application/json",
                &[],
                error_body("send Content-Type: application/json").as_bytes(),
            );
            return false;
        }
    }
    true
}

fn route(mut stream: TcpStream, req: Request, shared: &Shared, mut unproven: Unproven) {
    if req.path != "/healthz" && !browser_safe(&mut stream, &req, shared) {
        return;
    }
    let m = req.method.as_str();
    let p = req.path.as_str();
    if p != "/ws" {
        // The whole request is in; what follows is bounded by the reactor.
        unproven.prove();
    }
    match (m, p) {
        ("GET", "/") | ("GET", "/index.html") => {
            let _ = respond(&mut stream, 200, "text/html; charset=utf-8", &[("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'".into())], INDEX_HTML.as_bytes());
        }
        ("GET", "/healthz") => {
            if shared.ready.load(Ordering::SeqCst) {
                let _ = respond(&mut stream, 200, "text/plain", &[], b"ok\n");
            } else {
                let _ = respond(&mut stream, 503, "text/plain", &[], b"starting\n");
            }
        }
        ("GET", "/ws") => {
            ws::serve(stream, &req, shared, unproven);
        }
        ("GET", "/status") => {
            if authorized(&mut stream, &req, shared) {
                query(&mut stream, shared, "status", Value::Null);
            }
        }
        ("GET", "/api/sessions") => {
            if authorized(&mut stream, &req, shared) {
                query(&mut stream, shared, "sessions.list", json!({}));
            }
        }
        ("POST", "/api/call") => {
            if authorized(&mut stream, &req, shared) {
                match serde_json::from_slice::<Value>(&req.body) {
                    Ok(v) if v["method"].as_str().map(str::len).unwrap_or(0) > MAX_METHOD => {
                        let _ = respond(
                            &mut stream,
                            404,
                            "application/json",
                            &[],
                            error_body(
                                "unknown method (names are at most 32 bytes); see docs/protocol.md",
                            )
                            .as_bytes(),
                        );
                    }
                    Ok(v) if v["method"].is_string() && v["method"] != "chat.send" => {
                        let method = v["method"].as_str().unwrap_or("").to_string();
                        query(
                            &mut stream,
                            shared,
                            &method,
                            v.get("params").cloned().unwrap_or(json!({})),
                        );
                    }
                    _ => {
                        let _ = respond(&mut stream, 400, "application/json", &[], error_body("body must be {\"method\": \"…\", \"params\": {…}} (chat.send: use /api/chat)").as_bytes());
                    }
                }
            }
        }
        ("POST", "/api/chat") => {
            if authorized(&mut stream, &req, shared) {
                http_chat(stream, &req, shared);
            }
        }
        (_, path) if path.starts_with("/api/cron") || path == "/api/heartbeat/run" => {
            if authorized(&mut stream, &req, shared) {
                super::proactive_http::api(&mut stream, &req, shared);
            }
        }
        (_, path) if path.starts_with("/hooks/") => {
            super::proactive_http::hook(&mut stream, &req, shared);
        }
        (_, path) if path.starts_with("/api/sessions/") => {
            if !authorized(&mut stream, &req, shared) {
                return;
            }
            let key = crate::net::percent::decode_lossy(
                path.strip_prefix("/api/sessions/").unwrap_or(""),
            );
            match m {
                "GET" => query(
                    &mut stream,
                    shared,
                    "sessions.show",
                    json!({"session": key}),
                ),
                "DELETE" => query(
                    &mut stream,
                    shared,
                    "sessions.reset",
                    json!({"session": key}),
                ),
                _ => {
                    let _ = respond(
                        &mut stream,
                        405,
                        "application/json",
                        &[],
                        error_body("use GET or DELETE").as_bytes(),
                    );
                }
            }
        }
        _ => {
            let _ = respond(
                &mut stream,
                404,
                "application/json",
                &[],
                error_body("no such endpoint; see docs/protocol.md").as_bytes(),
            );
        }
    }
}

/// `POST /api/chat {"session": "...", "text": "..."}`: streams the run as
/// server-sent events (`event: delta|tool|final|error`), or, with
/// `"stream": false`, answers one JSON object when the run ends.
fn http_chat(mut stream: TcpStream, req: &Request, shared: &Shared) {
    let params: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let _ = respond(&mut stream, 400, "application/json", &[], error_body("body must be a JSON object like {\"text\": \"hello\", \"session\": \"http:me\"}").as_bytes());
            return;
        }
    };
    let streaming = params
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut params = params;
    if params.get("session").is_none() {
        params["session"] = json!("http:default");
    }
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    // A non-streaming request is sent the answer only.
    let (outbox, rx) = crate::gateway::outbox::channel(256, None, !streaming);
    if shared
        .to_reactor
        .blocking_send(ToReactor::Open { conn, outbox })
        .is_err()
        || shared
            .to_reactor
            .blocking_send(ToReactor::Call {
                conn,
                id: "http".into(),
                method: "chat.send".into(),
                params,
            })
            .is_err()
    {
        let _ = respond(
            &mut stream,
            503,
            "application/json",
            &[],
            error_body("gateway is shutting down").as_bytes(),
        );
        return;
    }
    let mut started = false;
    loop {
        let frame =
            match rx.recv_timeout(Duration::from_secs(shared.run_timeout_s.saturating_add(30))) {
                Ok(f) => f,
                Err(_) => break,
            };
        let v: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
        if v["type"] == "res" {
            if v["ok"] != true {
                let msg = v["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_string();
                let code = v["error"]["code"].as_str().unwrap_or("ERROR");
                let status = match status_for(code) {
                    500 => 400,
                    other => other,
                };
                let _ = respond(
                    &mut stream,
                    status,
                    "application/json",
                    &[],
                    json!({"error": msg, "code": code}).to_string().as_bytes(),
                );
                break;
            }
            if streaming {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
                if stream.write_all(head.as_bytes()).is_err() {
                    break;
                }
                started = true;
            }
            continue;
        }
        let event = v["event"].as_str().unwrap_or("");
        let done = event == "chat.final" || event == "chat.error";
        if streaming && started {
            let name = event.strip_prefix("chat.").unwrap_or(event);
            let line = format!("event: {name}\ndata: {}\n\n", v["payload"]);
            if stream
                .write_all(line.as_bytes())
                .and_then(|_| stream.flush())
                .is_err()
            {
                break;
            }
        } else if done {
            let status = if event == "chat.final" { 200 } else { 502 };
            let _ = respond(
                &mut stream,
                status,
                "application/json",
                &[],
                v["payload"].to_string().as_bytes(),
            );
        }
        if done {
            break;
        }
    }
    let _ = shared.to_reactor.blocking_send(ToReactor::Closed { conn });
}
