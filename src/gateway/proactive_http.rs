//! The HTTP edge of proactivity: the cron API (`/api/cron…`, what
//! `pinch cron` uses), `POST /api/heartbeat/run`, and webhooks
//! (`POST /hooks/<name>`). Requests become reactor calls; the reactor checks
//! a hook's name, token and body size and starts the runs, so it stays the
//! only writer.

use super::auth::{self, Check};
use super::http::{ask, error_body, query, respond, respond_locked, Request};
use super::Shared;
use crate::net::percent::decode_lossy;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;

/// `/api/cron[/<name>[/run]]` and `/api/heartbeat/run` (token already checked).
pub fn api(stream: &mut TcpStream, req: &Request, shared: &Shared) {
    let m = req.method.as_str();
    if req.path == "/api/heartbeat/run" {
        if m == "POST" {
            query(stream, shared, "heartbeat.run", json!({}));
        } else {
            not_allowed(stream, "use POST");
        }
        return;
    }
    let Some(rest) = req.path.strip_prefix("/api/cron") else {
        return not_found(stream);
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return not_found(stream);
    }
    let parts: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_lossy)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match (m, parts.as_slice()) {
        ("GET", []) => query(stream, shared, "cron.list", json!({})),
        ("POST", []) => {
            if let Some(p) = body_object(stream, req) {
                query(stream, shared, "cron.add", p);
            }
        }
        ("GET", [name]) => query(stream, shared, "cron.get", json!({"name": name})),
        ("POST", [name]) | ("PATCH", [name]) => {
            if let Some(mut p) = body_object(stream, req) {
                p["name"] = json!(name);
                query(stream, shared, "cron.edit", p);
            }
        }
        ("DELETE", [name]) => query(stream, shared, "cron.remove", json!({"name": name})),
        ("POST", [name, "run"]) => query(stream, shared, "cron.run", json!({"name": name})),
        (_, [] | [_] | [_, "run"]) => not_allowed(stream, "see docs/protocol.md for the cron API"),
        _ => not_found(stream),
    }
}

/// `POST /hooks/<name>`: 202 with the run id; 404 for an unknown hook, 401
/// for a wrong token (counted toward the address's lockout; 429 while it is
/// locked out, though the right token still passes), 413 for a body
/// over the hook's `maxBodyBytes`. Nothing runs unless all checks pass.
pub fn hook(stream: &mut TcpStream, req: &Request, shared: &Shared) {
    if req.method != "POST" {
        return not_allowed(stream, "use POST");
    }
    let name = decode_lossy(req.path.strip_prefix("/hooks/").unwrap_or(""));
    let now = crate::util::now_ms();
    let token = auth::bearer(req.header("authorization"))
        .or_else(|| req.header("x-pinch-token").map(str::trim));
    let params = json!({
        "name": name,
        "token": token,
        "body": String::from_utf8_lossy(&req.body),
        "bytes": req.body.len(),
    });
    let answer = match ask(shared, "hook.run", params) {
        Ok(a) => a,
        Err((status, msg)) => {
            let _ = respond(
                stream,
                status,
                "application/json",
                &[],
                error_body(msg).as_bytes(),
            );
            return;
        }
    };
    let crate::api_error::ApiError { code, message } = match answer {
        Ok(v) => {
            let _ = respond(
                stream,
                202,
                "application/json",
                &[],
                v.to_string().as_bytes(),
            );
            return;
        }
        Err(e) => e,
    };
    let status = match code {
        crate::api_error::ErrorCode::Unauthorized => {
            match shared.auth.record_failure(req.remote, now) {
                Check::Locked { retry_after_s } => {
                    return respond_locked(stream, retry_after_s);
                }
                Check::Denied { delay_ms } => {
                    std::thread::sleep(Duration::from_millis(delay_ms));
                    401
                }
                Check::Ok => 401,
            }
        }
        other => other.http_status(),
    };
    let body = json!({"error": message, "code": code.as_str()}).to_string();
    let _ = respond(stream, status, "application/json", &[], body.as_bytes());
}

/// The request body as a JSON object (empty body: `{}`); answers 400 if not.
fn body_object(stream: &mut TcpStream, req: &Request) -> Option<Value> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Some(json!({}));
    }
    match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => {
            let msg = "body must be a JSON object like {\"name\": \"digest\", \"every\": \"1h\", \"message\": \"...\"}";
            let _ = respond(
                stream,
                400,
                "application/json",
                &[],
                error_body(msg).as_bytes(),
            );
            None
        }
    }
}

fn not_found(stream: &mut TcpStream) {
    let _ = respond(
        stream,
        404,
        "application/json",
        &[],
        error_body("no such endpoint; see docs/protocol.md").as_bytes(),
    );
}

fn not_allowed(stream: &mut TcpStream, msg: &str) {
    let _ = respond(
        stream,
        405,
        "application/json",
        &[],
        error_body(msg).as_bytes(),
    );
}
