//! HTTP primitives: request reading with deadlines and size limits,
//! responses, the token check, and one-shot calls to the reactor. The
//! accept loop and the routes are in `router.rs`.
//!
//! Requests are parsed with httparse (head ≤ 16 KiB within `HEAD_DEADLINE`,
//! body by Content-Length ≤ `gateway.maxBodyBytes` within a deadline that
//! grows with its length); every response closes the connection, which
//! keeps a connection thread's life short and bounded. A connection that
//! has not yet sent its head (or a WebSocket not yet authenticated) is
//! "unproven": those may fill all slots but a reserve, and a connection
//! admitted into the reserve gets a short head deadline and is served only
//! for `/healthz` or with the right token. `/ws` is handed to `ws.rs`.
//! Nothing here owns gateway state: calls go to the reactor.

use super::{Shared, ToReactor};
use crate::gateway::auth::{self, Check};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 16 * 1024;
/// The whole request head must arrive within this, however it trickles in.
pub(super) const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// The head deadline for a connection admitted into the reserve.
pub(super) const RESERVE_HEAD_DEADLINE: Duration = Duration::from_secs(3);
/// A body gets this much time plus one second per `BODY_BYTES_PER_SECOND`.
const BODY_BASE_DEADLINE: Duration = Duration::from_secs(10);
const BODY_BYTES_PER_SECOND: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(15);
pub(super) const CONN_STACK: usize = 256 * 1024;
/// Longest method name in the API (the same bound as a WebSocket request's).
pub(super) const MAX_METHOD: usize = 32;

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub remote: IpAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Slots kept free of unproven connections: a quarter of the connection
/// limit, at least one.
pub fn reserve_for(max_conns: usize) -> usize {
    (max_conns / 4).max(1).min(max_conns)
}

/// One unproven connection counted in `Shared::unproven`; `prove` (or
/// dropping it) takes it off the count.
pub struct Unproven<'a> {
    pub(super) count: Option<&'a std::sync::atomic::AtomicUsize>,
}

impl Unproven<'_> {
    pub fn prove(&mut self) {
        if let Some(c) = self.count.take() {
            c.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Unproven<'_> {
    fn drop(&mut self) {
        self.prove();
    }
}

pub(super) fn error_body(msg: &str) -> String {
    json!({"error": msg}).to_string()
}

/// One read that gives up at `deadline`; `None` when the peer went away or
/// the deadline passed.
fn read_until(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, bool> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(true);
    }
    let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
    match stream.read(buf) {
        Ok(0) => Err(false),
        Ok(n) => Ok(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(true),
        Err(_) => Err(false),
    }
}

/// Reads one request. `Err((0, _))` means the peer went away silently.
pub(super) fn read_request(
    stream: &mut TcpStream,
    remote: IpAddr,
    max_body: usize,
    head_deadline: Duration,
) -> Result<Request, (u16, String)> {
    let deadline = Instant::now() + head_deadline;
    let late = |timed_out: bool, what: &str| {
        if timed_out {
            (
                408,
                format!("the request {what} did not arrive in time; send it at once"),
            )
        } else {
            (0, String::new())
        }
    };
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let (head_len, method, target, headers) = loop {
        let n = read_until(stream, &mut chunk, deadline).map_err(|t| late(t, "head"))?;
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut hdrs);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (
                    len,
                    parsed.method.unwrap_or("").to_string(),
                    parsed.path.unwrap_or("/").to_string(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err((431, "request head too large".into()));
                }
            }
            Err(e) => return Err((400, format!("malformed request: {e}"))),
        }
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut req = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
        remote,
    };
    if req.header("transfer-encoding").is_some() {
        return Err((
            411,
            "chunked request bodies are not accepted; send Content-Length".into(),
        ));
    }
    let lengths = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .count();
    if lengths > 1 {
        return Err((400, "more than one Content-Length header".into()));
    }
    let len: usize = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| (400, "bad Content-Length".to_string()))?,
    };
    if len > max_body {
        return Err((
            413,
            format!("body of {len} bytes is over the limit of {max_body} (gateway.maxBodyBytes)"),
        ));
    }
    let body_time = BODY_BASE_DEADLINE
        .saturating_add(Duration::from_secs((len / BODY_BYTES_PER_SECOND) as u64));
    let deadline = Instant::now() + body_time;
    let mut body = buf.split_off(head_len.min(buf.len()));
    body.truncate(len);
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        let n = read_until(stream, &mut chunk[..want], deadline).map_err(|t| late(t, "body"))?;
        body.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
    req.body = body;
    Ok(req)
}

pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    ctype: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Checks the bearer token; on failure answers and returns false.
pub(super) fn authorized(stream: &mut TcpStream, req: &Request, shared: &Shared) -> bool {
    match shared.auth.check(
        req.remote,
        auth::bearer(req.header("authorization")),
        crate::util::now_ms(),
    ) {
        Check::Ok => true,
        Check::Denied { delay_ms } => {
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = respond(stream, 401, "application/json", &[("WWW-Authenticate", "Bearer".into())], error_body("missing or wrong gateway token: send Authorization: Bearer <gateway.auth.token>").as_bytes());
            false
        }
        Check::Locked { retry_after_s } => {
            respond_locked(stream, retry_after_s);
            false
        }
    }
}

/// The answer to an address locked out after failed tokens: 429 with its
/// `Retry-After`, after the lockout's fixed delay.
pub(super) fn respond_locked(stream: &mut TcpStream, retry_after_s: u64) {
    std::thread::sleep(Duration::from_millis(auth::LOCKED_DELAY_MS));
    let _ = respond(
        stream,
        429,
        "application/json",
        &[("Retry-After", retry_after_s.to_string())],
        error_body("too many failed attempts from this address; wait and retry").as_bytes(),
    );
}

pub(super) type Answer = Result<Value, crate::api_error::ApiError>;

/// One reactor call; `Err` carries the HTTP status when it got no answer.
pub(super) fn ask(
    shared: &Shared,
    method: &str,
    params: Value,
) -> Result<Answer, (u16, &'static str)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let msg = ToReactor::Query {
        method: method.to_string(),
        params,
        reply: tx,
    };
    if shared.to_reactor.blocking_send(msg).is_err() {
        return Err((503, "gateway is shutting down"));
    }
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| (504, "the gateway did not answer in time"))
}

/// The HTTP status for a reactor error code (unknown codes: 500).
pub(super) fn status_for(code: &str) -> u16 {
    crate::api_error::ErrorCode::from_wire(code)
        .map(crate::api_error::ErrorCode::http_status)
        .unwrap_or(500)
}

/// Sends a one-shot query to the reactor and writes its JSON answer.
pub(super) fn query(stream: &mut TcpStream, shared: &Shared, method: &str, params: Value) {
    let (status, body) = match ask(shared, method, params) {
        Ok(Ok(v)) => (200, v.to_string()),
        Ok(Err(e)) => (
            e.code.http_status(),
            json!({"error": e.message, "code": e.code.as_str()}).to_string(),
        ),
        Err((status, message)) => (status, error_body(message)),
    };
    let _ = respond(stream, status, "application/json", &[], body.as_bytes());
}
