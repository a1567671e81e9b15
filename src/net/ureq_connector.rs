//! ureq's connector chain with our TCP steps: SOCKS5 through
//! [`socks5::open`] (the connection to the proxy raced over its addresses,
//! and for `socks5://` the target's addresses raced through it), HTTP
//! CONNECT (whose connection to the proxy runs this same chain), then
//! [`eyeballs::connect`] over the resolved addresses instead of ureq's
//! one-address-after-another attempt, then rustls. The TCP transport is
//! ours because ureq's is not public; it does what ureq's does (timeouts per
//! read and write, an idle check before a pooled connection is reused).

use super::eyeballs;
use super::socks5::{self, Credentials, Destination, SocksTarget};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, Transport,
};
use ureq::{Error, ProxyProtocol};

/// The connector every agent uses.
pub fn connector() -> impl Connector<Out = impl Transport> {
    ().chain(SocksEyeballsConnector)
        .chain(ConnectProxyConnector::default())
        .chain(EyeballsConnector)
        .chain(RustlsConnector::default())
}

/// An agent with our connector and ureq's resolver.
pub fn new_agent(config: ureq::config::Config) -> ureq::Agent {
    ureq::Agent::with_parts(
        config,
        connector(),
        ureq::unversioned::resolver::DefaultResolver::default(),
    )
}

/// The connect budget of `details` (ureq's zero means none: 30 s then).
fn connect_timeout(details: &ConnectionDetails) -> Duration {
    details
        .timeout
        .not_zero()
        .map_or(Duration::from_secs(30), |d| *d)
}

fn connect_error(e: io::Error, details: &ConnectionDetails) -> Error {
    if e.kind() == io::ErrorKind::TimedOut {
        return Error::Timeout(details.timeout.reason);
    }
    e.into()
}

/// The transport over a connected stream, registered for shutdown.
fn transport(stream: TcpStream, details: &ConnectionDetails) -> Result<TcpTransport, Error> {
    let _ = stream.set_nodelay(details.config.no_delay());
    let stream = Arc::new(stream);
    let weak = Arc::downgrade(&stream);
    (details.register_shutdown)(weak)?;
    let config = details.config;
    Ok(TcpTransport {
        stream,
        buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
    })
}

/// SOCKS5 and SOCKS5h proxies (the only SOCKS versions a route can name).
#[derive(Debug)]
struct SocksEyeballsConnector;

impl<In: Transport> Connector<In> for SocksEyeballsConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        let proxy = match details.config.proxy() {
            Some(proxy) if chained.is_none() => proxy,
            _ => return Ok(chained.map(Either::A)),
        };
        if !matches!(
            proxy.protocol(),
            ProxyProtocol::Socks5 | ProxyProtocol::Socks5h
        ) || proxy.is_no_proxy(details.uri)
        {
            return Ok(None);
        }
        let destination = if proxy.resolve_target() {
            // socks5://: ureq resolved the target before the chain ran.
            Destination::Addresses(details.addrs.iter().copied().collect())
        } else {
            Destination::Name(uri_target(details.uri).ok_or(Error::HostNotFound)?)
        };
        let proxy_addrs = details
            .resolver
            .resolve(proxy.uri(), details.config, details.timeout)?;
        let stream = socks5::open(
            &proxy_addrs,
            Credentials::from_parts(proxy.username(), proxy.password()),
            destination,
            connect_timeout(details),
        )
        .map_err(|e| connect_error(e, details))?;
        Ok(Some(Either::B(transport(stream, details)?)))
    }
}

/// The request URI's host and port as the proxy is to be told them.
fn uri_target(uri: &ureq::http::Uri) -> Option<SocksTarget> {
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") | Some("wss") => 443,
        _ => 80,
    });
    Some(SocksTarget::named(host, port))
}

#[derive(Debug)]
struct EyeballsConnector;

impl<In: Transport> Connector<In> for EyeballsConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let stream = eyeballs::connect(&details.addrs, connect_timeout(details))
            .map_err(|e| connect_error(e, details))?;
        Ok(Some(Either::B(transport(stream, details)?)))
    }
}

struct TcpTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpTransport({:?})", self.stream.peer_addr().ok())
    }
}

/// The socket timeout for one read or write, or the timeout error when the
/// budget is spent.
fn socket_timeout(timeout: NextTimeout) -> Result<Option<std::time::Duration>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

fn io_error(e: io::Error, timeout: NextTimeout) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(timeout.reason),
        _ => e.into(),
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(socket_timeout(timeout)?)?;
        let output = self.buffers.output().get(..amount).unwrap_or_default();
        (&*self.stream)
            .write_all(output)
            .map_err(|e| io_error(e, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(socket_timeout(timeout)?)?;
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|e| io_error(e, timeout))?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open and idle: nothing to read and no end of stream.
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let idle = matches!(
            (&*self.stream).read(&mut [0u8]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        idle && self.stream.set_nonblocking(false).is_ok()
    }
}
