//! ureq's connector chain with our TCP step: SOCKS, HTTP CONNECT (whose
//! connection to the proxy runs this same chain), then [`eyeballs::connect`]
//! over the resolved addresses instead of ureq's one-address-after-another
//! attempt, then rustls. The TCP transport is ours because ureq's is not
//! public; it does what ureq's does (timeouts per read and write, an idle
//! check before a pooled connection is reused).

use super::eyeballs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, SocksConnector, Transport,
};
use ureq::Error;

/// The connector every agent uses.
pub fn connector() -> impl Connector<Out = impl Transport> {
    ().chain(SocksConnector::default())
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
        let timeout = details
            .timeout
            .not_zero()
            .map_or(std::time::Duration::from_secs(30), |d| *d);
        let stream = match eyeballs::connect(&details.addrs, timeout) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Error::Timeout(details.timeout.reason))
            }
            Err(e) => return Err(e.into()),
        };
        let _ = stream.set_nodelay(details.config.no_delay());
        let stream = Arc::new(stream);
        let weak = Arc::downgrade(&stream);
        (details.register_shutdown)(weak)?;
        let config = details.config;
        Ok(Some(Either::B(TcpTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
        })))
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
