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
use crate::net::websocket::{
    check_close, encode_server_close, encode_server_frame, FrameError, Message, Receiver, PING,
    PONG, TEXT,
};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

const PING_EVERY: Duration = Duration::from_secs(25);
const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// A client the gateway asks for a token must send `connect` within this.
const AUTH_DEADLINE: Duration = Duration::from_secs(5);
/// Frames queued for one client before it counts as gone (deltas of one
/// run merge into one frame, so only a client that stopped reading gets here).
const OUTBOX_FRAMES: usize = 512;
/// Hard cap on client frames and messages at the framing layer; larger ones
/// close the connection. (Server messages are bounded by the outbox's `MAX_BYTES`.)
const HARD_MAX: usize = 1024 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// RFC 6455 §7.4.1 status codes the server closes with.
struct CloseCode;
impl CloseCode {
    const AWAY: u16 = 1001;
    const PROTOCOL: u16 = 1002;
    const INVALID: u16 = 1007;
    const POLICY: u16 = 1008;
    const SIZE: u16 = 1009;
}

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
    let mut c = Conn {
        receiver: Receiver::new(HARD_MAX, true),
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
    /// Frames from the client: masked, at most `HARD_MAX` bytes a message.
    receiver: Receiver,
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
                let _ = self.send(text_frame(f));
                let _ = self.close(CloseCode::POLICY, "authenticate first");
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
                        if self.send(text_frame(frame)).is_err() {
                            return "write failed";
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = self.close(CloseCode::AWAY, "gateway shutting down");
                        return "gateway shutdown";
                    }
                }
            }
            // Frames from the client.
            if fds[0].revents != 0 {
                last_seen = Instant::now();
                if let Err(reason) = self.receive(shared) {
                    return reason;
                }
            }
            if last_seen.elapsed() > IDLE_LIMIT {
                let _ = self.close(CloseCode::AWAY, "idle");
                return "idle";
            }
            if last_ping.elapsed() > PING_EVERY && last_seen.elapsed() > PING_EVERY {
                last_ping = Instant::now();
                if self.write(&encode_server_frame(PING, b"")).is_err() {
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
            return self.send(text_frame(f)).is_ok();
        }
        let req = match protocol::parse(text) {
            Ok(r) => r,
            Err(frame) => return self.send(text_frame(frame)).is_ok(),
        };
        let id = json!(req.id.as_str());
        if req.method.as_str() == "connect" {
            let token = req.params.get("token").and_then(Value::as_str);
            return match shared.auth.check(self.remote, token, crate::util::now_ms()) {
                Check::Ok => {
                    self.authed = true;
                    self.unproven.prove();
                    let payload = json!({"server": "pinch", "version": env!("CARGO_PKG_VERSION"), "protocol": 1, "conn": self.conn});
                    self.send(text_frame(protocol::ok_frame(req.id.as_str(), payload)))
                        .is_ok()
                }
                Check::Denied { delay_ms } => {
                    std::thread::sleep(Duration::from_millis(delay_ms));
                    self.send(text_frame(protocol::error_frame(
                        &id,
                        "UNAUTHORIZED",
                        "wrong gateway token",
                    )))
                    .is_ok()
                }
                Check::Locked { retry_after_s } => {
                    std::thread::sleep(Duration::from_millis(auth::LOCKED_DELAY_MS));
                    let msg = format!("too many failed attempts; retry in {retry_after_s} s");
                    let _ = self.send(text_frame(protocol::error_frame(&id, "LOCKED", &msg)));
                    let _ = self.close(CloseCode::POLICY, "locked out");
                    false
                }
            };
        }
        if !self.authed {
            let f = protocol::error_frame(&id, "UNAUTHORIZED", "send {\"type\":\"req\",\"id\":\"…\",\"method\":\"connect\",\"params\":{\"token\":\"…\"}} first");
            return self.send(text_frame(f)).is_ok();
        }
        let call = ToReactor::Call {
            conn: self.conn,
            id: req.id.as_str().to_string(),
            method: req.method.as_str().to_string(),
            params: req.params,
        };
        shared.to_reactor.blocking_send(call).is_ok()
    }

    /// Reads what the socket has (until it would block) and handles every
    /// whole message in it; `Err` carries why the connection ends.
    fn receive(&mut self, shared: &Shared) -> Result<(), &'static str> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection lost"),
                Ok(n) => self.receiver.feed(chunk.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err("connection lost"),
            }
            loop {
                match self.receiver.next_message() {
                    Ok(Some(message)) => self.on_message(shared, message)?,
                    Ok(None) => break,
                    Err(e) => return Err(self.refuse_frames(e)),
                }
            }
        }
    }

    fn on_message(&mut self, shared: &Shared, message: Message) -> Result<(), &'static str> {
        match message {
            Message::Text(t) => {
                if !self.on_text(shared, t.as_str()) {
                    return Err("unauthorized");
                }
            }
            Message::Binary(_) => {
                let f = protocol::error_frame(
                    &Value::Null,
                    "INVALID_REQUEST",
                    "binary frames are not supported; send JSON text frames",
                );
                if self.send(text_frame(f)).is_err() {
                    return Err("write failed");
                }
            }
            Message::Ping(payload) => {
                if self.write(&encode_server_frame(PONG, &payload)).is_err() {
                    return Err("write failed");
                }
            }
            Message::Pong => {}
            Message::Close(payload) => {
                // The closing handshake: answer with the client's code.
                let reply = match check_close(&payload) {
                    Ok(Some(code)) => encode_server_close(code, ""),
                    Ok(None) => encode_server_frame(crate::net::websocket::CLOSE, b""),
                    Err(e) => return Err(self.refuse_frames(e)),
                };
                let _ = self.write(&reply);
                return Err("client closed");
            }
        }
        Ok(())
    }

    /// Answers frames that break the rules with an error frame and the
    /// close code that names the breach; returns why the connection ends.
    fn refuse_frames(&mut self, error: FrameError) -> &'static str {
        match error {
            FrameError::TooLarge(e) => {
                let f = protocol::error_frame(
                    &Value::Null,
                    "TOO_LARGE",
                    &format!("frame rejected: {e}; the limit is {HARD_MAX} bytes"),
                );
                let _ = self.send(text_frame(f));
                let _ = self.close(CloseCode::SIZE, "message too big");
                self.drain();
                "oversized frame"
            }
            FrameError::Protocol(e) => {
                let f = protocol::error_frame(
                    &Value::Null,
                    "PROTOCOL",
                    &format!("WebSocket protocol error: {e}"),
                );
                let _ = self.send(text_frame(f));
                let _ = self.close(CloseCode::PROTOCOL, "protocol error");
                "protocol error"
            }
            FrameError::NotUtf8 => {
                let f = protocol::error_frame(
                    &Value::Null,
                    "INVALID_REQUEST",
                    "text frame is not valid UTF-8",
                );
                let _ = self.send(text_frame(f));
                let _ = self.close(CloseCode::INVALID, "invalid utf-8");
                "invalid utf-8"
            }
        }
    }

    /// Sends one text frame.
    fn send(&mut self, frame: Vec<u8>) -> Result<(), ()> {
        self.write(&frame)
    }

    /// Writes `bytes` whole, waiting (bounded) for the socket to take them.
    fn write(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(()),
                Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
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
        Ok(())
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

    fn close(&mut self, code: u16, reason: &str) -> Result<(), ()> {
        self.write(&encode_server_close(code, reason))
    }
}

/// A server text frame.
fn text_frame(text: String) -> Vec<u8> {
    encode_server_frame(TEXT, text.as_bytes())
}
