//! The probe's SOCKS5 step: the handshake of `net::socks5` over the probe's
//! stream, its errors read as failures with a hint.

use super::{io_failure, Conn, Failure, Step, StepErr};
use crate::net::route::{ProxyScheme, ProxyUrl, RequestUrl};
use crate::net::socks5::{handshake, socks_reply_text, Credentials, SocksError, SocksTarget};
use std::net::SocketAddr;

/// The failure a SOCKS5 error stands for, and the line for the report.
pub fn classify_socks(e: &SocksError) -> StepErr {
    let failure = match e {
        SocksError::Io(e) => return io_failure(Step::ProxyHandshake, e),
        SocksError::NotSocks5(_) => Failure::ProxyRefused {
            detail: "not a SOCKS5 proxy".to_string(),
        },
        SocksError::AuthRequired | SocksError::AuthRejected => Failure::ProxyAuthRequired,
        SocksError::UnsupportedMethod(method) => Failure::ProxyRefused {
            detail: format!("SOCKS5 proxy chose unsupported auth method {method}"),
        },
        SocksError::Refused { target, code } => Failure::ProxyRefused {
            detail: format!("SOCKS5 CONNECT {target}: {}", socks_reply_text(*code)),
        },
        SocksError::BadAddressType(kind) => Failure::ProxyRefused {
            detail: format!("bad SOCKS5 address type {kind}"),
        },
        SocksError::TooLong(_) => Failure::Other(e.to_string()),
    };
    (failure, e.to_string())
}

/// The SOCKS5 handshake (greeting, optional user/password, CONNECT) for a
/// tunnel to `target`; returns what happened, for the report.
pub(crate) fn connect(
    conn: &mut Box<dyn Conn>,
    p: &ProxyUrl,
    target: &RequestUrl,
    socks_ip: Option<SocketAddr>,
) -> Result<String, StepErr> {
    let socks_target = match (p.scheme, socks_ip) {
        (ProxyScheme::Socks5, Some(ip)) => SocksTarget::Ip(ip),
        _ => SocksTarget::named(&target.host, target.port),
    };
    handshake(conn, Credentials::of(p).as_ref(), &socks_target).map_err(|e| classify_socks(&e))?;
    Ok(format!("SOCKS5 CONNECT {socks_target} succeeded"))
}
