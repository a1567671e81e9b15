//! One WebSocket connection, on its connection thread.
//!
//! After the upgrade the socket is non-blocking and the thread sleeps in
//! `poll(2)` on two descriptors: the socket (frames from the client) and the
//! wake pipe of its outbox (frames from the reactor). So a streamed delta
//! goes out the moment the reactor pushes it, and one thread serves both
//! directions. Silent peers get pings; a peer silent past the idle limit, one
//! that has not authenticated within `AUTH_DEADLINE` when a token is asked
//! for, or one that stops taking bytes for 10 s while frames wait, is
//! dropped. (Streamed text behind a slow reader is merged in the outbox.)

use super::{Shared, ToReactor};
use crate::gateway::auth::{self, Check};
use crate::gateway::http::{respond, Request, Unproven};
use crate::gateway::outbox::{self, Inbox};
use crate::gateway::protocol;
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};
use tungstenite::protocol::{
    frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig, WebSocketContext,
};
use tungstenite::Message;

const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// A client the gateway asks for a token must send `connect` within this.
const AUTH_DEADLINE: Duration = Duration::from_secs(5);
/// Frames queued for one client before it counts as gone (deltas of one
/// run merge into one frame, so only a client that stopped reading gets here).
const OUTBOX_FRAMES: usize = 512;
/// Hard cap on client messages at the framing layer; larger ones close the
/// connection. (Server messages are bounded by the outbox's `MAX_BYTES`.)
const HARD_MAX: usize = 1024 * 1024;

/// Whether `key` is what RFC 6455 asks for: 16 bytes in base64 (24 chars).
fn valid_key(key: &str) -> bool {
    let b = key.trim().as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b.iter()
            .take(22)
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

fn refuse(stream: &mut TcpStream, status: u16, extra: &[(&str, String)], msg: &str) {
    let body = json!({"error": msg}).to_string();
    let _ = respond(stream, status, "application/json", extra, body.as_bytes());
}

pub fn serve(mut stream: TcpStream, req: &Request, shared: &Shared, mut unproven: Unproven) {
    let has_token = |name: &str, token: &str| {
        req.header(name)
            .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return refuse(
            &mut stream,
            400,
            &[],
            "this endpoint speaks WebSocket only (Upgrade: websocket, Connection: Upgrade)",
        );
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return refuse(
            &mut stream,
            426,
            &[("Sec-WebSocket-Version", "13".into())],
            "only WebSocket version 13 is spoken",
        );
    }
    let Some(key) = req.header("sec-websocket-key").filter(|k| valid_key(k)) else {
        return refuse(
            &mut stream,
            400,
            &[],
            "Sec-WebSocket-Key must be 16 bytes in base64",
        );
    };
    let key = key.trim();
    // A token in the Authorization header authenticates at once; otherwise the
    // first frame must be a `connect` request carrying it, within AUTH_DEADLINE.
    let mut authed = !shared.auth.required();
    if let Some(t) = auth::bearer(req.header("authorization")) {
        match shared
            .auth
            .check(req.remote, Some(t), crate::util::now_ms())
        {
            Check::Ok => authed = true,
            Check::Denied { delay_ms } => {
                std::thread::sleep(Duration::from_millis(delay_ms));
                return refuse(&mut stream, 401, &[], "wrong gateway token");
            }
            Check::Locked { retry_after_s } => {
                std::thread::sleep(Duration::from_millis(auth::LOCKED_DELAY_MS));
                return refuse(
                    &mut stream,
                    429,
                    &[("Retry-After", retry_after_s.to_string())],
                    "too many failed attempts from this address; wait and retry",
                );
            }
        }
    }
    if authed {
        unproven.prove();
    }
    let accept = crate::net::websocket::accept_key(key.as_bytes());
    let head = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (wake_r, wake_w) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            log::error!("ws: cannot create wake pipe: {e}");
            return;
        }
    };
    let (outbox, rx) = outbox::channel(OUTBOX_FRAMES, Some(wake_w), false);
    if shared
        .to_reactor
        .blocking_send(ToReactor::Open { conn, outbox })
        .is_err()
    {
        return;
    }
    let _ = wake_r.set_nonblocking(true);
    let _ = stream.set_nonblocking(true);
    let cfg = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        // Any frame the outbox accepted can be sent whole.
        .max_write_buffer_size(outbox::MAX_BYTES + 64 * 1024)
        .max_message_size(Some(HARD_MAX))
        .max_frame_size(Some(HARD_MAX));
    let mut c = Conn {
        ctx: WebSocketContext::new(Role::Server, Some(cfg)),
        stream,
        conn,
        authed,
        remote: req.remote,
        unproven,
    };
    let reason = c.run(shared, &wake_r, &rx);
    log::debug!("ws {conn}: closed ({reason})");
    let _ = shared.to_reactor.blocking_send(ToReactor::Closed { conn });
}

struct Conn<'a> {
    ctx: WebSocketContext,
    stream: TcpStream,
    conn: u64,
    authed: bool,
    remote: std::net::IpAddr,
    /// Counted as unproven until authenticated.
    unproven: Unproven<'a>,
}

impl Conn<'_> {
    fn run(&mut self, shared: &Shared, mut wake: &UnixStream, rx: &Inbox) -> &'static str {
        let opened = Instant::now();
        let mut last_seen = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            if !self.authed && opened.elapsed() > AUTH_DEADLINE {
                let f = protocol::error_frame(
                    &Value::Null,
                    "UNAUTHORIZED",
                    "no connect with the gateway token in time; closing",
                );
                let _ = self.send(Message::text(f));
                let _ = self.close(CloseCode::Policy, "authenticate first");
                return "not authenticated in time";
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd structs for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                return "poll failed";
            }
            if fds[1].revents != 0 {
                let mut sink = [0u8; 64];
                while let Ok(k) = wake.read(&mut sink) {
                    if k == 0 {
                        break;
                    }
                }
            }
            // Frames from the reactor.
            loop {
                match rx.try_recv() {
                    Ok(frame) => {
                        if self.send(Message::text(frame)).is_err() {
                            return "write failed";
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = self.close(CloseCode::Away, "gateway shutting down");
                        return "gateway shutdown";
                    }
                }
            }
            // Frames from the client.
            if fds[0].revents != 0 {
                last_seen = Instant::now();
                loop {
                    match self.ctx.read(&mut self.stream) {
                        Ok(Message::Text(t)) => {
                            if !self.on_text(shared, t.as_str()) {
                                return "unauthorized";
                            }
                        }
                        Ok(Message::Binary(_)) => {
                            let f = protocol::error_frame(
                                &Value::Null,
                                "INVALID_REQUEST",
                                "binary frames are not supported; send JSON text frames",
                            );
                            if self.send(Message::text(f)).is_err() {
                                return "write failed";
                            }
                        }
                        Ok(Message::Close(_)) => {
                            let _ = self.flush();
                            return "client closed";
                        }
                        Ok(_) => {} // ping/pong handled inside tungstenite
                        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                            break
                        }
                        Err(tungstenite::Error::Capacity(e)) => {
                            let f = protocol::error_frame(
                                &Value::Null,
                                "TOO_LARGE",
                                &format!("frame rejected: {e}; the limit is {HARD_MAX} bytes"),
                            );
                            let _ = self.send(Message::text(f));
                            let _ = self.close(CloseCode::Size, "message too big");
                            self.drain();
                            return "oversized frame";
                        }
                        Err(tungstenite::Error::Protocol(e)) => {
                            let f = protocol::error_frame(
                                &Value::Null,
                                "PROTOCOL",
                                &format!("WebSocket protocol error: {e}"),
                            );
                            let _ = self.send(Message::text(f));
                            let _ = self.close(CloseCode::Protocol, "protocol error");
                            return "protocol error";
                        }
                        Err(tungstenite::Error::Utf8(_)) => {
                            let f = protocol::error_frame(
                                &Value::Null,
                                "INVALID_REQUEST",
                                "text frame is not valid UTF-8",
                            );
                            let _ = self.send(Message::text(f));
                            let _ = self.close(CloseCode::Invalid, "invalid utf-8");
                            return "invalid utf-8";
                        }
                        Err(_) => return "connection lost",
                    }
                }
                // A pong queued by tungstenite goes out now.
                if self.flush().is_err() {
                    return "write failed";
                }
            }
            if last_seen.elapsed() > IDLE_LIMIT {
                let _ = self.close(CloseCode::Away, "idle");
                return "idle";
            }
            if last_ping.elapsed() > PING_EVERY && last_seen.elapsed() > PING_EVERY {
                last_ping = Instant::now();
                if self.send(Message::Ping(Vec::new().into())).is_err() {
                    return "write failed";
                }
            }
        }
    }

    /// Handles one text frame; `false` closes the connection.
    fn on_text(&mut self, shared: &Shared, text: &str) -> bool {
        if text.len() > shared.max_body {
            let f = protocol::error_frame(
                &Value::Null,
                "TOO_LARGE",
                &format!(
                    "frame of {} bytes is over gateway.maxBodyBytes ({})",
                    text.len(),
                    shared.max_body
                ),
            );
            return self.send(Message::text(f)).is_ok();
        }
        let req = match protocol::parse(text) {
            Ok(r) => r,
            Err(frame) => return self.send(Message::text(frame)).is_ok(),
        };
        let id = json!(req.id.as_str());
        if req.method.as_str() == "connect" {
            let token = req.params.get("token").and_then(Value::as_str);
            return match shared.auth.check(self.remote, token, crate::util::now_ms()) {
                Check::Ok => {
                    self.authed = true;
                    self.unproven.prove();
                    let payload = json!({"server": "pinch", "version": env!("CARGO_PKG_VERSION"), "protocol": 1, "conn": self.conn});
                    self.send(Message::text(protocol::ok_frame(req.id.as_str(), payload)))
                        .is_ok()
                }
                Check::Denied { delay_ms } => {
                    std::thread::sleep(Duration::from_millis(delay_ms));
                    self.send(Message::text(protocol::error_frame(
                        &id,
                        "UNAUTHORIZED",
                        "wrong gateway token",
                    )))
                    .is_ok()
                }
                Check::Locked { retry_after_s } => {
                    std::thread::sleep(Duration::from_millis(auth::LOCKED_DELAY_MS));
                    let msg = format!("too many failed attempts; retry in {retry_after_s} s");
                    let _ = self.send(Message::text(protocol::error_frame(&id, "LOCKED", &msg)));
                    let _ = self.close(CloseCode::Policy, "locked out");
                    false
                }
            };
        }
        if !self.authed {
            let f = protocol::error_frame(&id, "UNAUTHORIZED", "send {\"type\":\"req\",\"id\":\"…\",\"method\":\"connect\",\"params\":{\"token\":\"…\"}} first");
            return self.send(Message::text(f)).is_ok();
        }
        let call = ToReactor::Call {
            conn: self.conn,
            id: req.id.as_str().to_string(),
            method: req.method.as_str().to_string(),
            params: req.params,
        };
        shared.to_reactor.blocking_send(call).is_ok()
    }

    fn send(&mut self, m: Message) -> Result<(), ()> {
        match self.ctx.write(&mut self.stream, m) {
            Ok(()) => self.flush(),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => self.flush(),
            Err(_) => Err(()),
        }
    }

    /// Flushes, waiting (bounded) for the socket to take the bytes.
    fn flush(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.ctx.flush(&mut self.stream) {
                Ok(()) => return Ok(()),
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(());
                    }
                    let mut fds = [libc::pollfd {
                        fd: self.stream.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    // SAFETY: one valid pollfd for the duration of the call.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, 1000) };
                }
                Err(_) => return Err(()),
            }
        }
    }

    /// After closing on a bad peer: stop writing and swallow what it is
    /// still sending (bounded), so the kernel does not answer its pending
    /// bytes with a reset that would destroy our error frame in flight.
    fn drain(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut sink = [0u8; 16 * 1024];
        let mut total = 0usize;
        while Instant::now() < deadline && total < 8 * HARD_MAX {
            match self.stream.read(&mut sink) {
                Ok(0) => return,
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut fds = [libc::pollfd {
                        fd: self.stream.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    // SAFETY: one valid pollfd for the duration of the call.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, 200) };
                }
                Err(_) => return,
            }
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), ()> {
        let frame = CloseFrame {
            code,
            reason: reason.to_string().into(),
        };
        let _ = self.ctx.close(&mut self.stream, Some(frame));
        self.flush()
    }
}
