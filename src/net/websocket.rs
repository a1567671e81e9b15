//! WebSocket clients along a route: TCP to the host (or to the route's
//! proxy, then HTTP CONNECT or a SOCKS5 tunnel through it), TLS for
//! `wss://`, then the WebSocket handshake. Connections race the addresses
//! (`eyeballs`); the CONNECT and TLS steps are the doctor's probe's, which
//! this reuses, and SOCKS5 is `socks5`, the one the probe and ureq use, so
//! what `pinch doctor` checks is what runs.
//!
//! The protocol is written here: the client's handshake (a dozen header
//! lines and one check), the server's accept key, and the framing of both
//! roles, sans I/O and tested on bytes ([`parse_frame`], [`Receiver`],
//! [`encode_frame`], [`encode_server_frame`]). The gateway's server side
//! (`gateway/ws.rs`) uses the same framing. Client masks come from the
//! system random source the binary already uses (a general WebSocket
//! crate's client role brings its own ChaCha generator only for them).

use super::probe::{base64, proxy_handshake, resolve, tls_handshake, Conn};
use super::route::{parse_request_url, redact_url, ProxyScheme, RequestUrl, Route};
use super::socks5::{self, Credentials, Destination, SocksTarget};
use super::tls::client_config;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest message (after reassembly of fragments) accepted.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame off the wire, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    /// Whether the sender masked it (clients must, servers must not).
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Why a peer's bytes were refused; each maps to an RFC 6455 close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A breach of the framing rules (close code 1002).
    Protocol(String),
    /// A frame or message over the size limit (close code 1009).
    TooLarge(String),
    /// A text message or close reason that is not UTF-8 (close code 1007).
    NotUtf8,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Protocol(e) | FrameError::TooLarge(e) => f.write_str(e),
            FrameError::NotUtf8 => f.write_str("a text message that is not UTF-8"),
        }
    }
}

/// Parses the frame at the start of `buf`: `Ok(None)` until it is complete,
/// else the frame and the bytes it used. Masked frames are unmasked.
pub fn parse_frame(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let protocol = |e: &str| FrameError::Protocol(e.to_string());
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(protocol(
            "a frame uses an extension that was not negotiated",
        ));
    }
    let (fin, opcode, masked) = (b0 & 0x80 != 0, b0 & 0x0F, b1 & 0x80 != 0);
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4usize),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= CLOSE && (len > 125 || !fin) {
        return Err(protocol(
            "a control frame is fragmented or longer than 125 bytes",
        ));
    }
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(FrameError::Protocol(format!(
            "unknown frame opcode {opcode}"
        )));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| {
            FrameError::TooLarge(format!(
                "a frame of {len} bytes is over the {max}-byte limit"
            ))
        })?;
    let mask = if masked {
        let Some(m) = buf.get(at..at.saturating_add(4)) else {
            return Ok(None);
        };
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let Some(end) = at.checked_add(len) else {
        return Err(FrameError::TooLarge("a frame length that overflows".into()));
    };
    let Some(body) = buf.get(at..end) else {
        return Ok(None);
    };
    let mut payload = body.to_vec();
    if let Some(m) = mask {
        apply_mask(&mut payload, m);
    }
    Ok(Some((
        Frame {
            fin,
            opcode,
            masked,
            payload,
        },
        end,
    )))
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// One final frame; masked when `mask` is given (clients), else plain (servers).
fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len().saturating_add(14));
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len() + if mask.is_some() { 4 } else { 0 };
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
    out.extend_from_slice(payload);
    if let (Some(m), Some(body)) = (mask, out.get_mut(start..)) {
        apply_mask(body, m);
    }
    out
}

/// One final client frame: masked with `mask`, as RFC 6455 requires of clients.
pub fn encode_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    encode(opcode, payload, Some(mask))
}

/// One final server frame: never masked (RFC 6455 §5.1).
pub fn encode_server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode(opcode, payload, None)
}

/// A server close frame: the status code, then a reason cut to fit the
/// 125 bytes of a control frame on a character boundary.
pub fn encode_server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(reason.get(..cut).unwrap_or("").as_bytes());
    encode_server_frame(CLOSE, &payload)
}

/// A whole message, after reassembly of its fragments.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// A close frame's payload: empty, or a status code and a UTF-8 reason.
    Close(Vec<u8>),
}

/// The receiving half of one end of a connection, sans I/O: bytes are fed
/// in as they arrive, whole messages come out. Holds at most one frame in
/// progress (bounded by the message limit) and one fragmented message.
pub struct Receiver {
    buf: Vec<u8>,
    /// A fragmented message being reassembled: its opcode and data so far.
    partial: Option<(u8, Vec<u8>)>,
    /// Largest frame, and message after reassembly, accepted.
    max_message: usize,
    /// A server's receiver: frames must come masked (RFC 6455 §5.1).
    require_mask: bool,
}

impl Receiver {
    pub fn new(max_message: usize, require_mask: bool) -> Receiver {
        Receiver {
            buf: Vec::new(),
            partial: None,
            max_message,
            require_mask,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// The next whole message in what was fed, if there is one yet.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        loop {
            let Some((frame, used)) = parse_frame(&self.buf, self.max_message)? else {
                return Ok(None);
            };
            self.buf.drain(..used);
            if self.require_mask && !frame.masked {
                return Err(FrameError::Protocol(
                    "an unmasked frame from a client".into(),
                ));
            }
            if let Some(message) = self.take(frame)? {
                return Ok(Some(message));
            }
        }
    }

    fn take(&mut self, frame: Frame) -> Result<Option<Message>, FrameError> {
        let (opcode, data) = match frame.opcode {
            PING => return Ok(Some(Message::Ping(frame.payload))),
            PONG => return Ok(Some(Message::Pong)),
            CLOSE => return Ok(Some(Message::Close(frame.payload))),
            CONTINUATION => {
                let Some((opcode, mut data)) = self.partial.take() else {
                    return Err(FrameError::Protocol(
                        "a continuation frame without a start".into(),
                    ));
                };
                if data.len().saturating_add(frame.payload.len()) > self.max_message {
                    return Err(FrameError::TooLarge(format!(
                        "a message over the {}-byte limit",
                        self.max_message
                    )));
                }
                data.extend_from_slice(&frame.payload);
                if !frame.fin {
                    self.partial = Some((opcode, data));
                    return Ok(None);
                }
                (opcode, data)
            }
            opcode => {
                if self.partial.is_some() {
                    return Err(FrameError::Protocol(
                        "a new message inside a fragmented one".into(),
                    ));
                }
                if !frame.fin {
                    self.partial = Some((opcode, frame.payload));
                    return Ok(None);
                }
                (opcode, frame.payload)
            }
        };
        if opcode == TEXT {
            String::from_utf8(data)
                .map(|t| Some(Message::Text(t)))
                .map_err(|_| FrameError::NotUtf8)
        } else {
            Ok(Some(Message::Binary(data)))
        }
    }
}

/// Checks a close frame's payload from a peer (RFC 6455 §5.5.1, §7.4):
/// empty, or a code a peer may send and a UTF-8 reason. Returns the code.
pub fn check_close(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    let Some(code) = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])) else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(FrameError::Protocol("a close frame of one byte".into()))
        };
    };
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(FrameError::Protocol(format!(
            "close code {code} may not be sent"
        )));
    }
    match std::str::from_utf8(payload.get(2..).unwrap_or(&[])) {
        Ok(_) => Ok(Some(code)),
        Err(_) => Err(FrameError::NotUtf8),
    }
}

/// What a read brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    /// A ping (already answered), pong or binary message: proof of life only.
    Other,
}

/// Why a read returned nothing.
#[derive(Debug)]
pub enum ReadError {
    /// The socket's read timeout passed with no complete message.
    Timeout,
    /// The server closed the connection (a close frame or end of stream).
    Closed(String),
    Failed(String),
}

/// A client WebSocket over whatever the route needed.
pub struct Socket {
    conn: Box<dyn Conn>,
    /// Frames from the server (unmasked), reassembled; the limit is
    /// [`MAX_MESSAGE_BYTES`] unless raised.
    receiver: Receiver,
    /// The code of the server's close frame, once one came.
    close_code: Option<u16>,
}

impl Socket {
    fn new(conn: Box<dyn Conn>, buffered: &[u8]) -> Socket {
        let mut receiver = Receiver::new(MAX_MESSAGE_BYTES, false);
        receiver.feed(buffered);
        Socket {
            conn,
            receiver,
            close_code: None,
        }
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mask = (crate::util::random_u64() as u32).to_le_bytes();
        self.conn.write_all(&encode_frame(opcode, payload, mask))?;
        self.conn.flush()
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(TEXT, text.as_bytes())
    }

    pub fn send_ping(&mut self) -> io::Result<()> {
        self.send(PING, b"")
    }

    /// Sends a normal close frame (best effort) and ends the connection.
    pub fn close(self) {
        self.close_with(Some(1000));
    }

    /// Sends a close frame with `code` (none: an empty close), best effort,
    /// and ends the connection. A code other than 1000 tells servers such
    /// as Discord's Gateway that the session may be resumed.
    pub fn close_with(mut self, code: Option<u16>) {
        let payload = code.map(u16::to_be_bytes);
        let _ = self.send(CLOSE, payload.as_ref().map_or(&[][..], |p| &p[..]));
    }

    /// Accepts messages up to `bytes` long (after reassembly).
    pub fn set_max_message(&mut self, bytes: usize) {
        self.receiver.set_max_message(bytes);
    }

    /// The status code of the server's close frame, after a read returned
    /// [`ReadError::Closed`] for one; `None` for an end of stream or a
    /// close frame without a code.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The next message. Pings are answered here.
    pub fn read(&mut self) -> Result<Incoming, ReadError> {
        loop {
            let next = self
                .receiver
                .next_message()
                .map_err(|e| ReadError::Failed(e.to_string()))?;
            if let Some(message) = next {
                return self.take(message);
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed("the connection ended".into())),
                Ok(n) => self.receiver.feed(chunk.get(..n).unwrap_or(&[])),
                // A signal (e.g. SIGHUP) interrupted the wait: not a failure.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadError::Timeout)
                }
                Err(e) => return Err(ReadError::Failed(e.to_string())),
            }
        }
    }

    fn take(&mut self, message: Message) -> Result<Incoming, ReadError> {
        match message {
            Message::Text(text) => Ok(Incoming::Text(text)),
            Message::Ping(payload) => {
                self.send(PONG, &payload)
                    .map_err(|e| ReadError::Failed(e.to_string()))?;
                Ok(Incoming::Other)
            }
            Message::Pong | Message::Binary(_) => Ok(Incoming::Other),
            Message::Close(payload) => {
                let code = payload.get(..2);
                self.close_code = code.map(|c| u16::from_be_bytes([c[0], c[1]]));
                let _ = self.send(CLOSE, code.unwrap_or(&[]));
                Err(ReadError::Closed("the server closed the socket".into()))
            }
        }
    }
}

/// Opens `url` (ws:// or wss://). Every step is bounded by `timeout`, which
/// also stays the socket's read and write timeout; the returned `TcpStream`
/// is the same socket, for changing them later.
pub fn connect(url: &str, route: &Route, timeout: Duration) -> Result<(Socket, TcpStream), String> {
    let shown = redact_url(url);
    let fail = |(f, d): (super::probe::Failure, String)| format!("{shown}: {f}: {d}");
    let target = parse_request_url(url)?;
    let decision = route.decide(url)?;
    let proxy = decision.proxy();
    let tcp = match proxy {
        Some(p) if matches!(p.scheme, ProxyScheme::Socks5 | ProxyScheme::Socks5h) => {
            let proxy_addrs = resolve(&p.host, p.port, timeout).map_err(fail)?;
            let destination = if p.scheme == ProxyScheme::Socks5 {
                Destination::Addresses(resolve(&target.host, target.port, timeout).map_err(fail)?)
            } else {
                Destination::Name(SocksTarget::named(&target.host, target.port))
            };
            socks5::open(&proxy_addrs, Credentials::of(p), destination, timeout)
                .map_err(|e| format!("{shown}: through the SOCKS5 proxy {p}: {e}"))?
        }
        _ => {
            let addrs = match proxy {
                Some(p) => resolve(&p.host, p.port, timeout),
                None => resolve(&target.host, target.port, timeout),
            }
            .map_err(fail)?;
            super::eyeballs::connect(&addrs, timeout).map_err(|e| format!("{shown}: {e}"))?
        }
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let control = tcp.try_clone().map_err(|e| format!("{shown}: {e}"))?;
    let config = client_config(route.ca_file.as_deref())?;
    // An HTTP(S) proxy's CONNECT; a SOCKS5 tunnel is open already.
    let mut conn: Box<dyn Conn> = match proxy {
        Some(p) if matches!(p.scheme, ProxyScheme::Http | ProxyScheme::Https) => {
            proxy_handshake(tcp, p, &target, &[], config.clone(), timeout)
                .map_err(fail)?
                .0
        }
        _ => Box::new(tcp),
    };
    if target.is_tls() {
        conn = tls_handshake(conn, &target.host, config).map_err(fail)?.0;
    }
    let key = base64(
        &[crate::util::random_u64(), crate::util::random_u64()]
            .map(u64::to_le_bytes)
            .concat(),
    );
    let request = handshake_request(&target, &key);
    conn.write_all(request.as_bytes())
        .and_then(|_| conn.flush())
        .map_err(|e| format!("{shown}: WebSocket handshake: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = match conn.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.map_err(|e| format!("{shown}: WebSocket handshake: {e}"))?,
        };
        if n == 0 {
            return Err(format!(
                "{shown}: the server closed the connection during the WebSocket handshake"
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(format!("{shown}: WebSocket handshake answer over 16 KiB"));
        }
    };
    check_response(&buf[..end], &key).map_err(|e| format!("{shown}: {e}"))?;
    // Frames the server sent right behind its answer stay for the socket.
    let rest = buf.split_off(end);
    Ok((Socket::new(conn, &rest), control))
}

/// The client's opening handshake (RFC 6455 §4.1) for `target`.
fn handshake_request(target: &RequestUrl, key: &str) -> String {
    let host = target.host_header();
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: pinch\r\n\r\n",
        target.path
    )
}

/// Checks the server's answer: 101 and the accept key that proves it read ours.
fn check_response(head: &[u8], key: &str) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("the WebSocket handshake answer is not HTTP".into()),
    }
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(format!(
            "the server answered HTTP {code} instead of switching to WebSocket (an expired or reused URL?)"
        ));
    }
    let accept = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    if accept != Some(accept_key(key.as_bytes()).as_bytes()) {
        return Err("the server's Sec-WebSocket-Accept does not match our key".into());
    }
    Ok(())
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455
/// §4.2.2): base64 of the SHA-1 of the key and the protocol's GUID. Shared
/// with the gateway's server side.
pub fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    base64(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn handshake_request_and_answer_check() {
        let target = parse_request_url("wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1")
            .unwrap_or_else(|e| panic!("{e}"));
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let req = handshake_request(&target, key);
        assert!(
            req.starts_with(
                "GET /link/?ticket=abc&app_id=A1 HTTP/1.1\r\nHost: wss-primary.slack.com\r\n"
            ),
            "{req}"
        );
        assert!(
            req.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
                && req.ends_with("\r\n\r\n")
        );
        let local = parse_request_url("ws://127.0.0.1:8080/x").unwrap_or_else(|e| panic!("{e}"));
        assert!(handshake_request(&local, key).contains("Host: 127.0.0.1:8080\r\n"));
        // RFC 6455's example key and accept value.
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_response(ok, key), Ok(()));
        let wrong = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAA\r\n\r\n";
        assert!(check_response(wrong, key).is_err());
        let refused = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        assert!(check_response(refused, key).unwrap_err().contains("401"));
        assert!(check_response(b"\x16\x03\x01", key).is_err());
    }

    #[test]
    fn frames_parse_and_encode() {
        // RFC 6455 §5.7 examples.
        let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (f, used) = parse_frame(&hello, 100).ok().flatten().expect("frame");
        assert_eq!(
            (f.fin, f.opcode, f.payload.as_slice(), used),
            (true, TEXT, &b"Hello"[..], 7)
        );
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            encode_frame(TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d]),
            masked
        );
        assert_eq!(
            parse_frame(&masked, 100)
                .ok()
                .flatten()
                .map(|(f, _)| f.payload),
            Some(b"Hello".to_vec())
        );
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        assert_eq!(
            parse_frame(&first, 100).ok().flatten().map(|(f, _)| f.fin),
            Some(false)
        );
        for cut in 0..hello.len() {
            assert_eq!(
                parse_frame(&hello[..cut], 100),
                Ok(None),
                "incomplete at {cut}"
            );
        }
        // 16- and 64-bit lengths, both ways.
        for n in [125usize, 126, 300, 70_000] {
            let data = vec![b'x'; n];
            let frame = encode_frame(BINARY, &data, [1, 2, 3, 4]);
            let (f, used) = parse_frame(&frame, 1 << 20).ok().flatten().expect("frame");
            assert_eq!((f.payload.len(), used), (n, frame.len()));
        }
        let big = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x10, 0, 1];
        assert!(
            parse_frame(&big, 1 << 20).is_err(),
            "over the limit before any payload"
        );
        let huge = [0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(parse_frame(&huge, 1 << 20).is_err());
        assert!(
            parse_frame(&[0x89, 0x7E, 0, 200], 1 << 20).is_err(),
            "long ping"
        );
        assert!(parse_frame(&[0x09, 0x00], 100).is_err(), "fragmented ping");
        assert!(parse_frame(&[0xC1, 0x00], 100).is_err(), "RSV bit");
        assert!(parse_frame(&[0x83, 0x00], 100).is_err(), "reserved opcode");
    }

    #[test]
    fn server_frames_follow_the_rfc_examples() {
        // RFC 6455 §5.7: unmasked "Hello", an unmasked pong, 256 bytes and 64 KiB.
        assert_eq!(
            encode_server_frame(TEXT, b"Hello"),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            encode_server_frame(PONG, b"Hello"),
            [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            encode_server_frame(BINARY, &[0; 256]).get(..4),
            Some(&[0x82, 0x7E, 0x01, 0x00][..])
        );
        assert_eq!(
            encode_server_frame(BINARY, &[0; 65536]).get(..10),
            Some(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0][..])
        );
        assert_eq!(
            encode_server_close(1002, "protocol error"),
            [&[0x88, 16, 0x03, 0xEA][..], b"protocol error"].concat()
        );
        // A long reason is cut on a character boundary to fit 125 bytes.
        let close = encode_server_close(1000, &"é".repeat(100));
        assert_eq!(close.len(), 2 + 125 - 1);
        assert_eq!(check_close(close.get(2..).unwrap_or(&[])), Ok(Some(1000)));
    }

    #[test]
    fn server_receiver_takes_masked_frames_only() {
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut r = Receiver::new(100, true);
        for byte in masked {
            assert_eq!(r.next_message(), Ok(None));
            r.feed(&[byte]);
        }
        assert_eq!(r.next_message(), Ok(Some(Message::Text("Hello".into()))));
        assert_eq!(r.next_message(), Ok(None));
        // The same frame unmasked is a protocol error for a server.
        let mut r = Receiver::new(100, true);
        r.feed(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));
        // "Hel" + a ping + "lo" (masked with zeros): one message, the ping between.
        let mut r = Receiver::new(100, true);
        r.feed(&[0x01, 0x83, 0, 0, 0, 0, 0x48, 0x65, 0x6c]);
        r.feed(&[0x89, 0x85, 0, 0, 0, 0, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        r.feed(&[0x80, 0x82, 0, 0, 0, 0, 0x6c, 0x6f]);
        assert_eq!(r.next_message(), Ok(Some(Message::Ping(b"Hello".to_vec()))));
        assert_eq!(r.next_message(), Ok(Some(Message::Text("Hello".into()))));
        // Close frames: the code comes back; bad ones are refused.
        let mut r = Receiver::new(100, true);
        r.feed(&encode_frame(
            CLOSE,
            &[0x03, 0xE8, b'o', b'k'],
            [9, 8, 7, 6],
        ));
        assert_eq!(
            r.next_message(),
            Ok(Some(Message::Close(vec![0x03, 0xE8, b'o', b'k'])))
        );
        assert_eq!(check_close(&[0x03, 0xE8, b'o', b'k']), Ok(Some(1000)));
        assert_eq!(check_close(&[]), Ok(None));
        assert!(matches!(check_close(&[0x03]), Err(FrameError::Protocol(_))));
        assert!(matches!(
            check_close(&[0x00, 0x01]),
            Err(FrameError::Protocol(_))
        ));
        assert!(matches!(
            check_close(&[0x03, 0xED]),
            Err(FrameError::Protocol(_))
        ));
        assert_eq!(check_close(&[0x03, 0xE8, 0xFF]), Err(FrameError::NotUtf8));
    }

    #[test]
    fn server_receiver_refuses_bad_messages() {
        let masked = |first: u8, payload: &[u8]| {
            let mut f = encode_frame(0, payload, [1, 2, 3, 4]);
            f[0] = first;
            f
        };
        // Invalid UTF-8 in a text message, even when split across fragments.
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x81, b"{\"a\":\"\xff\"}"));
        assert_eq!(r.next_message(), Err(FrameError::NotUtf8));
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x01, b"\xe2\x82"));
        r.feed(&masked(0x80, b"\xac"));
        assert_eq!(r.next_message(), Ok(Some(Message::Text("€".into()))));
        // A frame over the limit is refused from its header alone.
        let mut r = Receiver::new(100, true);
        r.feed(&[0x81, 0xFE, 0x00, 101]);
        assert!(matches!(r.next_message(), Err(FrameError::TooLarge(_))));
        let mut r = Receiver::new(100, true);
        r.feed(&[0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(r.next_message(), Err(FrameError::TooLarge(_))));
        // Fragments that add up to more than the limit.
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x01, &[b'a'; 60]));
        r.feed(&masked(0x80, &[b'a'; 60]));
        assert!(matches!(r.next_message(), Err(FrameError::TooLarge(_))));
        // A continuation without a start; a new message inside a fragmented one.
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x80, b"{}"));
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x01, b"{"));
        r.feed(&masked(0x81, b"}"));
        assert!(matches!(r.next_message(), Err(FrameError::Protocol(_))));
        // Binary messages come out whole.
        let mut r = Receiver::new(100, true);
        r.feed(&masked(0x82, &[0, 1]));
        assert_eq!(r.next_message(), Ok(Some(Message::Binary(vec![0, 1]))));
    }

    /// A Read + Write over fixed input that records what is written.
    struct Wire {
        input: std::io::Cursor<Vec<u8>>,
        written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }
    impl Read for Wire {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            match self.input.read(b)? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }
    impl Write for Wire {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            crate::util::lock(&self.written).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Reads that a signal interrupts once before each piece of input.
    struct Interrupted {
        wire: Wire,
        interrupt: bool,
    }
    impl Read for Interrupted {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.wire.read(b)
        }
    }
    impl Write for Interrupted {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.wire.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_interrupted_read_is_retried_not_a_lost_connection() {
        let wire = Wire {
            input: std::io::Cursor::new(vec![0x81, 0x02, b'o', b'k']),
            written: Default::default(),
        };
        let conn = Interrupted {
            wire,
            interrupt: false,
        };
        let mut s = Socket::new(Box::new(conn), &[]);
        assert_eq!(s.read().ok(), Some(Incoming::Text("ok".into())));
    }

    #[test]
    fn socket_reassembles_answers_pings_and_sees_the_close() {
        let mut input = vec![0x89, 0x02, b'h', b'i']; // ping "hi"
        input.extend([0x01, 0x02, b'{', b'"']); // text, not final
        input.extend([0x89, 0x00]); // a ping between fragments
        input.extend([0x80, 0x02, b'a', b'"']); // final continuation
        input.extend([0x88, 0x02, 0x03, 0xE8]); // close 1000
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let wire = Wire {
            input: std::io::Cursor::new(input[..3].to_vec()),
            written: written.clone(),
        };
        let mut s = Socket::new(Box::new(wire), &[]);
        assert!(
            matches!(s.read(), Err(ReadError::Timeout)),
            "half a frame: wait"
        );
        s.receiver.feed(&input[3..]);
        assert_eq!(s.read().ok(), Some(Incoming::Other));
        assert_eq!(
            s.read().ok(),
            Some(Incoming::Other),
            "the ping inside the message"
        );
        assert_eq!(s.read().ok(), Some(Incoming::Text("{\"a\"".into())));
        assert!(matches!(s.read(), Err(ReadError::Closed(_))));
        assert_eq!(s.close_code(), Some(1000));
        let out = crate::util::lock(&written).clone();
        let (pong, used) = parse_frame(&out, 100).ok().flatten().expect("pong");
        assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, &b"hi"[..]));
        assert_eq!(out[1] & 0x80, 0x80, "client frames are masked");
        let rest = &out[used..];
        let (pong2, used2) = parse_frame(rest, 100).ok().flatten().expect("pong");
        assert_eq!(pong2.opcode, PONG);
        let (close, _) = parse_frame(&rest[used2..], 100)
            .ok()
            .flatten()
            .expect("close");
        assert_eq!(
            (close.opcode, close.payload.as_slice()),
            (CLOSE, &[0x03, 0xE8][..])
        );
    }

    #[test]
    fn close_codes_out_and_the_message_limit() {
        let socket = |input: Vec<u8>, written: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
            let wire = Wire {
                input: std::io::Cursor::new(input),
                written: written.clone(),
            };
            Socket::new(Box::new(wire), &[])
        };
        for (code, payload) in [(Some(4000u16), vec![0x0F, 0xA0]), (None, Vec::new())] {
            let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            socket(Vec::new(), &written).close_with(code);
            let out = crate::util::lock(&written).clone();
            let (close, _) = parse_frame(&out, 100).ok().flatten().expect("close");
            assert_eq!((close.opcode, close.payload), (CLOSE, payload));
        }
        // A 200-byte message: over a 100-byte limit, within the default.
        let mut big = vec![0x81, 126, 0, 200];
        big.extend(vec![b'x'; 200]);
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut small = socket(big.clone(), &written);
        small.set_max_message(100);
        assert!(matches!(small.read(), Err(ReadError::Failed(_))));
        let mut s = socket(big, &written);
        assert!(matches!(s.read(), Ok(Incoming::Text(t)) if t.len() == 200));
        // A close frame without a code.
        let mut s = socket(vec![0x88, 0x00], &written);
        assert!(matches!(s.read(), Err(ReadError::Closed(_))));
        assert_eq!(s.close_code(), None);
    }
}
