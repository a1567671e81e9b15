//! WebSocket clients along a route: TCP to the host (or to the route's
//! proxy, then HTTP CONNECT or SOCKS5 through it), TLS for `wss://`, then
//! the WebSocket handshake. The same steps as the doctor's probe, which
//! this reuses, so what `pinch doctor` checks is what runs.
//!
//! The client handshake is written here (a dozen header lines and one
//! check) rather than taken from tungstenite, whose client side brings the
//! `http` crate's request and URI types into the binary; tungstenite then
//! runs the connection in its client role.

use super::probe::{base64, connect_any, proxy_handshake, resolve, tls_handshake, Conn};
use super::route::{parse_target, redact_url, ProxyScheme, Route, Target};
use super::tls::client_config;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::protocol::Role;

/// A client WebSocket over whatever the route needed.
pub type Socket = tungstenite::WebSocket<Box<dyn Conn>>;

/// Opens `url` (ws:// or wss://). Every step is bounded by `timeout`, which
/// also stays the socket's read and write timeout; the returned `TcpStream`
/// is the same socket, for changing them later.
pub fn connect(url: &str, route: &Route, timeout: Duration) -> Result<(Socket, TcpStream), String> {
    let shown = redact_url(url);
    let fail = |(f, d): (super::probe::Failure, String)| format!("{shown}: {f}: {d}");
    let target = parse_target(url)?;
    let decision = route.decide(url)?;
    let proxy = decision.proxy();
    let addrs = match proxy {
        Some(p) => resolve(&p.host, p.port, timeout),
        None => resolve(&target.host, target.port, timeout),
    }
    .map_err(fail)?;
    let tcp = connect_any(&addrs, timeout).map_err(fail)?;
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
        tungstenite::WebSocket::from_partially_read(conn, rest, Role::Client, None),
        control,
    ))
}

/// The client's opening handshake (RFC 6455 §4.1) for `target`.
fn handshake_request(target: &Target, key: &str) -> String {
    let default_port = if target.is_tls() { 443 } else { 80 };
    let host = if target.port == default_port {
        if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        }
    } else {
        target.host_port()
    };
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
    if accept != Some(tungstenite::handshake::derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err("the server's Sec-WebSocket-Accept does not match our key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_request_and_answer_check() {
        let target = parse_target("wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1")
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
        let local = parse_target("ws://127.0.0.1:8080/x").unwrap_or_else(|e| panic!("{e}"));
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
}
