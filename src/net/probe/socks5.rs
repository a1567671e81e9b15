//! SOCKS5 (RFC 1928) and its user/password sub-negotiation (RFC 1929):
//! the request bytes, reply texts, and the handshake step itself.

use super::{io_failure, Conn, Failure, Step, StepErr};
use crate::net::route::{ProxyScheme, ProxyUrl, RequestUrl};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

/// How the SOCKS5 request names the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocksTarget {
    Ip(SocketAddr),
    Domain(String, u16),
}

/// SOCKS5 greeting (RFC 1928): offer user/password only when we have it.
pub fn socks_greeting(with_credentials: bool) -> Vec<u8> {
    if with_credentials {
        vec![5, 2, 0, 2]
    } else {
        vec![5, 1, 0]
    }
}

/// RFC 1929 username/password sub-negotiation.
pub fn socks_auth_request(user: &str, password: &str) -> Result<Vec<u8>, Failure> {
    if user.len() > 255 || password.len() > 255 {
        return Err(Failure::Other(
            "SOCKS5 user name and password must each be at most 255 bytes".to_string(),
        ));
    }
    let mut v = vec![1, user.len() as u8];
    v.extend_from_slice(user.as_bytes());
    v.push(password.len() as u8);
    v.extend_from_slice(password.as_bytes());
    Ok(v)
}

/// The SOCKS5 CONNECT request.
pub fn socks_connect_request(target: &SocksTarget) -> Result<Vec<u8>, Failure> {
    let mut v = vec![5, 1, 0];
    let port = match target {
        SocksTarget::Ip(SocketAddr::V4(a)) => {
            v.push(1);
            v.extend_from_slice(&a.ip().octets());
            a.port()
        }
        SocksTarget::Ip(SocketAddr::V6(a)) => {
            v.push(4);
            v.extend_from_slice(&a.ip().octets());
            a.port()
        }
        SocksTarget::Domain(name, port) => {
            if name.len() > 255 {
                return Err(Failure::Other(
                    "host name too long for SOCKS5 (max 255 bytes)".to_string(),
                ));
            }
            v.push(3);
            v.push(name.len() as u8);
            v.extend_from_slice(name.as_bytes());
            *port
        }
    };
    v.extend_from_slice(&port.to_be_bytes());
    Ok(v)
}

/// Text for a SOCKS5 reply code.
pub fn socks_reply_text(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the target",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

/// The SOCKS5 handshake (greeting, optional user/password, CONNECT) for a
/// tunnel to `target`; returns what happened, for the report.
pub(crate) fn connect(
    conn: &mut Box<dyn Conn>,
    p: &ProxyUrl,
    target: &RequestUrl,
    socks_ip: Option<SocketAddr>,
) -> Result<String, StepErr> {
    let io_err = |e: io::Error| io_failure(Step::ProxyHandshake, &e);
    let creds = p.has_credentials();
    conn.write_all(&socks_greeting(creds)).map_err(io_err)?;
    let mut reply = [0u8; 2];
    conn.read_exact(&mut reply).map_err(io_err)?;
    if reply[0] != 5 {
        return Err((
                Failure::ProxyRefused {
                    detail: "not a SOCKS5 proxy".to_string(),
                },
                format!("the proxy did not answer as SOCKS5 (first byte {:#04x}); is it an HTTP proxy? then use http://", reply[0]),
            ));
    }
    match reply[1] {
        0 => {}
        2 if creds => {
            let user = p.user.as_deref().unwrap_or_default();
            let pass = p.password.as_deref().unwrap_or_default();
            let req = socks_auth_request(user, pass)
                .map_err(|f| (f, "credentials too long".to_string()))?;
            conn.write_all(&req).map_err(io_err)?;
            let mut r = [0u8; 2];
            conn.read_exact(&mut r).map_err(io_err)?;
            if r[1] != 0 {
                return Err((
                    Failure::ProxyAuthRequired,
                    "the SOCKS5 proxy rejected the user name/password".to_string(),
                ));
            }
        }
        0xff if !creds => {
            return Err((
                Failure::ProxyAuthRequired,
                "the SOCKS5 proxy requires authentication".to_string(),
            ))
        }
        m => {
            return Err((
                Failure::ProxyRefused {
                    detail: format!("SOCKS5 proxy chose unsupported auth method {m}"),
                },
                format!("the SOCKS5 proxy chose auth method {m}, which we did not offer"),
            ))
        }
    }
    let socks_target = match (p.scheme, socks_ip) {
        (ProxyScheme::Socks5, Some(ip)) => SocksTarget::Ip(ip),
        _ => match target.host.parse::<IpAddr>() {
            Ok(ip) => SocksTarget::Ip(SocketAddr::new(ip, target.port)),
            Err(_) => SocksTarget::Domain(target.host.clone(), target.port),
        },
    };
    let shown = match &socks_target {
        SocksTarget::Ip(a) => a.to_string(),
        SocksTarget::Domain(h, port) => format!("{h}:{port}"),
    };
    let req = socks_connect_request(&socks_target)
        .map_err(|f| (f, "cannot build the SOCKS5 request".to_string()))?;
    conn.write_all(&req).map_err(io_err)?;
    let mut head = [0u8; 4];
    conn.read_exact(&mut head).map_err(io_err)?;
    if head[1] != 0 {
        let why = socks_reply_text(head[1]);
        return Err((
            Failure::ProxyRefused {
                detail: format!("SOCKS5 CONNECT {shown}: {why}"),
            },
            format!("SOCKS5 CONNECT {shown} answered {}: {why}", head[1]),
        ));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            conn.read_exact(&mut len).map_err(io_err)?;
            usize::from(len[0]) + 2
        }
        other => {
            return Err((
                Failure::ProxyRefused {
                    detail: format!("bad SOCKS5 address type {other}"),
                },
                "the SOCKS5 reply is malformed".to_string(),
            ))
        }
    };
    let mut skip = vec![0u8; rest];
    conn.read_exact(&mut skip).map_err(io_err)?;
    Ok(format!("SOCKS5 CONNECT {shown} succeeded"))
}
