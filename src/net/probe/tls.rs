//! The TLS step: a rustls handshake over whatever stream the probe has
//! (TCP or a proxy tunnel), and how its errors read.

use super::{io_failure, Conn, Failure, Step, StepErr};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::sync::Arc;

/// Maps a rustls error to a failure: certificate problems are "untrusted"
/// (curl 60), everything else a TLS failure (curl 35).
pub fn classify_tls(err: &rustls::Error) -> Failure {
    match err {
        rustls::Error::InvalidCertificate(e) => Failure::CertUntrusted {
            detail: format!("{e:?}"),
        },
        other => Failure::Tls {
            detail: other.to_string(),
        },
    }
}

pub(crate) fn tls_handshake(
    conn: Box<dyn Conn>,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<(Box<dyn Conn>, String), StepErr> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        (
            Failure::Other(format!("'{host}' is not a valid TLS server name")),
            format!("'{host}' is not a valid TLS server name"),
        )
    })?;
    let client = ClientConnection::new(config, name).map_err(|e| {
        (
            Failure::Tls {
                detail: e.to_string(),
            },
            e.to_string(),
        )
    })?;
    let mut tls = StreamOwned::new(client, conn);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            return Err(io_failure(Step::Tls, &e));
        }
    }
    let version = tls
        .conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "TLS".to_string());
    let suite = tls
        .conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    Ok((
        Box::new(tls),
        format!("{version} {suite}, certificate of {host} trusted"),
    ))
}
