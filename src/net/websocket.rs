//! WebSocket clients along a route: TCP to the host (or to the route's
//! proxy, then HTTP CONNECT or SOCKS5 through it), TLS for `wss://`, then
//! the WebSocket handshake (tungstenite). The same steps as the doctor's
//! probe, which this reuses, so what `pinch doctor` checks is what runs.

use super::probe::{connect_any, proxy_handshake, resolve, tls_handshake, Conn};
use super::route::{parse_target, redact_url, ProxyScheme, Route};
use super::tls::client_config;
use std::net::TcpStream;
use std::time::Duration;

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
    let (socket, _) = tungstenite::client(url, conn).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => format!("{shown}: WebSocket handshake: {e}"),
        tungstenite::HandshakeError::Interrupted(_) => {
            format!("{shown}: WebSocket handshake timed out")
        }
    })?;
    Ok((socket, control))
}
