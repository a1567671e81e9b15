//! WebSocket clients along a route: TCP to the host (or to the route's
//! proxy, then HTTP CONNECT or SOCKS5 through it), TLS for `wss://`, then
//! the WebSocket handshake. The same steps as the doctor's probe, which
//! this reuses, so what `pinch doctor` checks is what runs.
//!
//! The client side of the protocol is written here: the handshake (a dozen
//! header lines and one check) and the framing ([`parse_frame`],
//! [`encode_frame`]: pure, tested on bytes). tungstenite's client role
//! would bring the `rand` crate's ChaCha generator (about 45 KB of the
//! x86_64 binary) only to mask outgoing frames; masks here come from the
//! system random source the binary already uses.

use super::probe::{base64, proxy_handshake, resolve, tls_handshake, Conn};
use super::route::{parse_request_url, redact_url, ProxyScheme, RequestUrl, Route};
use super::tls::client_config;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest message (after reassembly of fragments) accepted.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Parses the frame at the start of `buf`: `Ok(None)` until it is complete,
/// else the frame and the bytes it used. Masked frames are unmasked.
pub fn parse_frame(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, String> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("a frame uses an extension that was not negotiated".into());
    }
    let (fin, opcode, masked) = (b0 & 0x80 != 0, b0 & 0x0F, b1 & 0x80 != 0);
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= CLOSE && (len > 125 || !fin) {
        return Err("a control frame is fragmented or longer than 125 bytes".into());
    }
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(format!("unknown frame opcode {opcode}"));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("a frame of {len} bytes is over the {max}-byte limit"))?;
    let mask = if masked {
        let Some(m) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let end = at + len;
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

/// One final client frame: masked with `mask`, as RFC 6455 requires of clients.
pub fn encode_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
    out
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
    buf: Vec<u8>,
    /// A fragmented message being reassembled: its opcode and data so far.
    partial: Option<(u8, Vec<u8>)>,
    /// Largest message accepted: [`MAX_MESSAGE_BYTES`] unless raised.
    max_message: usize,
    /// The code of the server's close frame, once one came.
    close_code: Option<u16>,
}

impl Socket {
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
        self.max_message = bytes;
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
            let parsed = parse_frame(&self.buf, self.max_message).map_err(ReadError::Failed)?;
            if let Some((frame, used)) = parsed {
                self.buf.drain(..used);
                if let Some(message) = self.take(frame)? {
                    return Ok(message);
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed("the connection ended".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
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

    fn take(&mut self, frame: Frame) -> Result<Option<Incoming>, ReadError> {
        let failed = |e: io::Error| ReadError::Failed(e.to_string());
        let data = match frame.opcode {
            PING => {
                self.send(PONG, &frame.payload).map_err(failed)?;
                return Ok(Some(Incoming::Other));
            }
            PONG => return Ok(Some(Incoming::Other)),
            CLOSE => {
                self.close_code = frame
                    .payload
                    .get(..2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]));
                let _ = self.send(CLOSE, frame.payload.get(..2).unwrap_or(&[]));
                return Err(ReadError::Closed("the server closed the socket".into()));
            }
            CONTINUATION => {
                let Some((opcode, mut data)) = self.partial.take() else {
                    return Err(ReadError::Failed(
                        "a continuation frame without a start".into(),
                    ));
                };
                if data.len().saturating_add(frame.payload.len()) > self.max_message {
                    return Err(ReadError::Failed("a message over the size limit".into()));
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
                    return Err(ReadError::Failed(
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
        match data {
            (TEXT, bytes) => String::from_utf8(bytes)
                .map(|t| Some(Incoming::Text(t)))
                .map_err(|_| ReadError::Failed("a text message that is not UTF-8".into())),
            _ => Ok(Some(Incoming::Other)),
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
    let addrs = match proxy {
        Some(p) => resolve(&p.host, p.port, timeout),
        None => resolve(&target.host, target.port, timeout),
    }
    .map_err(fail)?;
    let tcp = super::eyeballs::connect(&addrs, timeout).map_err(|e| format!("{shown}: {e}"))?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let control = tcp.try_clone().map_err(|e| format!("{shown}: {e}"))?;
    let mut conn: Box<dyn Conn> = Box::new(tcp);
    let config = client_config(route.ca_file.as_deref())?;
    if let Some(p) = proxy {
        let socks_ip = if p.scheme == ProxyScheme::Socks5 {
            resolve(&target.host, target.port, timeout)
                .map_err(fail)?
                .first()
                .copied()
        } else {
            None
        };
        conn = proxy_handshake(conn, p, &target, socks_ip, config.clone())
            .map_err(fail)?
            .0;
    }
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
        let n = conn
            .read(&mut chunk)
            .map_err(|e| format!("{shown}: WebSocket handshake: {e}"))?;
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
    Ok((
        Socket {
            conn,
            buf: rest,
            partial: None,
            max_message: MAX_MESSAGE_BYTES,
            close_code: None,
        },
        control,
    ))
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
        let mut s = Socket {
            conn: Box::new(wire),
            buf: Vec::new(),
            partial: None,
            max_message: MAX_MESSAGE_BYTES,
            close_code: None,
        };
        assert!(
            matches!(s.read(), Err(ReadError::Timeout)),
            "half a frame: wait"
        );
        s.buf.extend_from_slice(&input[3..]);
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
        let socket = |input: Vec<u8>, written: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| Socket {
            conn: Box::new(Wire {
                input: std::io::Cursor::new(input),
                written: written.clone(),
            }),
            buf: Vec::new(),
            partial: None,
            max_message: MAX_MESSAGE_BYTES,
            close_code: None,
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
