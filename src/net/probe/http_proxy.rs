//! HTTP proxies: the CONNECT request (Basic credentials when the proxy has
//! them), the status of its answer, and the handshake step itself.

use super::response::{parse_response_head, read_head};
use super::{io_failure, Conn, Failure, Step, StepErr};
use crate::net::route::{ProxyUrl, RequestUrl};
use std::io::{self, Write};

/// Maps a CONNECT response status to success or a failure.
pub fn classify_connect_status(status: u16, target: &str) -> Result<(), Failure> {
    match status {
        200..=299 => Ok(()),
        407 => Err(Failure::ProxyAuthRequired),
        other => Err(Failure::ProxyRefused {
            detail: format!("the proxy answered HTTP {other} to CONNECT {target}"),
        }),
    }
}

/// The CONNECT request for `target` (host:port), with Basic credentials
/// when the proxy has them.
pub fn connect_request(target: &str, proxy: &ProxyUrl) -> String {
    let mut req =
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: pinch-doctor\r\n");
    if proxy.has_credentials() {
        let user = proxy.user.as_deref().unwrap_or_default();
        let pass = proxy.password.as_deref().unwrap_or_default();
        req.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64(format!("{user}:{pass}").as_bytes())
        ));
    }
    req.push_str("\r\n");
    req
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Asks an HTTP proxy for a tunnel to `target` (CONNECT) and reads its
/// answer; returns what happened, for the report.
pub(crate) fn connect(
    conn: &mut Box<dyn Conn>,
    p: &ProxyUrl,
    target: &RequestUrl,
) -> Result<String, StepErr> {
    let io_err = |e: io::Error| io_failure(Step::ProxyHandshake, &e);
    let hp = target.host_port();
    conn.write_all(connect_request(&hp, p).as_bytes())
        .map_err(io_err)?;
    conn.flush().map_err(io_err)?;
    let head = read_head(conn).map_err(io_err)?;
    if head.is_empty() {
        return Err((
            Failure::ResetAfterConnect,
            format!("the proxy closed the connection without answering CONNECT {hp}"),
        ));
    }
    let (status, _) = parse_response_head(&head).map_err(|e| {
        (
            Failure::ProxyRefused {
                detail: format!("not an HTTP proxy? {e}"),
            },
            format!("CONNECT {hp}: {e}"),
        )
    })?;
    classify_connect_status(status, &hp)
        .map_err(|f| (f, format!("CONNECT {hp} answered {status}")))?;
    Ok(format!("CONNECT {hp} answered {status}"))
}
