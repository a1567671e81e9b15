//! The probe's SOCKS5 step: the handshake of `net::socks5` over the probe's
//! connection to the proxy (for `socks5://` the target's addresses raced
//! through it, as every other path does), its errors read as failures.

use super::{io_failure, Conn, Failure, Step, StepErr};
use crate::net::eyeballs::describe_winner;
use crate::net::route::{ProxyScheme, ProxyUrl, RequestUrl};
use crate::net::socks5::{
    handshake, race_through, socks_reply_text, Credentials, SocksError, SocksTarget,
};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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

/// A SOCKS5 error that reached us inside an `io::Error` (from a race),
/// or the I/O error itself.
fn classify_socks_io(e: &io::Error) -> StepErr {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SocksError>())
    {
        Some(socks) => classify_socks(socks),
        None => io_failure(Step::ProxyHandshake, e),
    }
}

/// The SOCKS5 handshake (greeting, optional user/password, CONNECT) over
/// `tcp`, connected to the proxy; for `socks5://` the target's addresses
/// are raced through the proxy as on every other path. Returns the tunnel
/// and what happened, for the report.
pub(crate) fn connect(
    mut tcp: TcpStream,
    p: &ProxyUrl,
    target: &RequestUrl,
    socks_targets: &[SocketAddr],
    timeout: Duration,
) -> Result<(Box<dyn Conn>, String), StepErr> {
    if p.scheme == ProxyScheme::Socks5 && !socks_targets.is_empty() {
        let won = race_through(tcp, Credentials::of(p), socks_targets, timeout)
            .map_err(|e| classify_socks_io(&e))?;
        let detail = format!(
            "SOCKS5 CONNECT {} succeeded ({})",
            won.target,
            describe_winner(won.target, socks_targets)
        );
        return Ok((Box::new(won.stream), detail));
    }
    let socks_target = SocksTarget::named(&target.host, target.port);
    handshake(&mut tcp, Credentials::of(p).as_ref(), &socks_target)
        .map_err(|e| classify_socks(&e))?;
    Ok((
        Box::new(tcp),
        format!("SOCKS5 CONNECT {socks_target} succeeded"),
    ))
}
