//! SOCKS5 (RFC 1928) with its user/password sub-negotiation (RFC 1929),
//! the one copy every path uses: ureq's connector chain, the WebSocket
//! client and the doctor's probe.
//!
//! The request bytes and reply texts are pure; [`handshake`] runs them over
//! any stream; [`open`] is the shell: the connection to the proxy is raced
//! over the proxy's addresses ([`eyeballs::connect`]), and for `socks5://`
//! (target resolved here) the CONNECT requests to the target's addresses are
//! raced the same way, one proxy connection each, so a target whose first
//! family the proxy cannot route does not stall the call either.

use super::eyeballs;
use super::route::ProxyUrl;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the SOCKS5 request names the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocksTarget {
    Ip(SocketAddr),
    Domain(String, u16),
}

impl fmt::Display for SocksTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocksTarget::Ip(address) => write!(f, "{address}"),
            SocksTarget::Domain(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl SocksTarget {
    /// `host` as the proxy is to be told it: an IP literal (IPv6 with or
    /// without brackets) as an address, anything else as a name.
    pub fn named(host: &str, port: u16) -> SocksTarget {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => SocksTarget::Ip(SocketAddr::new(ip, port)),
            Err(_) => SocksTarget::Domain(bare.to_string(), port),
        }
    }
}

/// The proxy's user name and password (RFC 1929).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// The proxy URL's credentials, if it has any (a missing half is empty).
    pub fn of(proxy: &ProxyUrl) -> Option<Credentials> {
        Credentials::from_parts(proxy.user.as_deref(), proxy.password.as_deref())
    }

    pub fn from_parts(user: Option<&str>, password: Option<&str>) -> Option<Credentials> {
        if user.is_none() && password.is_none() {
            return None;
        }
        Some(Credentials {
            user: user.unwrap_or_default().to_string(),
            password: password.unwrap_or_default().to_string(),
        })
    }
}

/// Why a SOCKS5 handshake failed.
#[derive(Debug)]
pub enum SocksError {
    Io(io::Error),
    /// The first byte of the answer was not 5.
    NotSocks5(u8),
    /// The proxy wants credentials and none were given.
    AuthRequired,
    /// The proxy refused the user name and password.
    AuthRejected,
    /// The proxy chose an authentication method that was not offered.
    UnsupportedMethod(u8),
    /// The CONNECT reply code was not 0.
    Refused {
        target: String,
        code: u8,
    },
    /// The CONNECT reply's address type is unknown.
    BadAddressType(u8),
    /// A name or credential is over SOCKS5's 255-byte field.
    TooLong(&'static str),
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocksError::Io(e) => write!(f, "{e}"),
            SocksError::NotSocks5(byte) => write!(f, "the proxy did not answer as SOCKS5 (first byte {byte:#04x}); is it an HTTP proxy? then use http://"),
            SocksError::AuthRequired => f.write_str("the SOCKS5 proxy requires authentication"),
            SocksError::AuthRejected => f.write_str("the SOCKS5 proxy rejected the user name/password"),
            SocksError::UnsupportedMethod(method) => write!(f, "the SOCKS5 proxy chose auth method {method}, which we did not offer"),
            SocksError::Refused { target, code } => write!(f, "SOCKS5 CONNECT {target} answered {code}: {}", socks_reply_text(*code)),
            SocksError::BadAddressType(kind) => write!(f, "the SOCKS5 reply is malformed (address type {kind})"),
            SocksError::TooLong(what) => write!(f, "{what} too long for SOCKS5 (max 255 bytes)"),
        }
    }
}

impl From<io::Error> for SocksError {
    fn from(e: io::Error) -> Self {
        SocksError::Io(e)
    }
}

impl std::error::Error for SocksError {}

/// An I/O error as it was; any other inside an `io::Error` (refused by the
/// target as `ConnectionRefused`), so callers can still tell which it was.
impl From<SocksError> for io::Error {
    fn from(e: SocksError) -> Self {
        match e {
            SocksError::Io(e) => e,
            SocksError::Refused { code: 5, .. } => {
                io::Error::new(io::ErrorKind::ConnectionRefused, e)
            }
            other => io::Error::other(other),
        }
    }
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
pub fn socks_auth_request(user: &str, password: &str) -> Result<Vec<u8>, SocksError> {
    let (Ok(user_length), Ok(password_length)) =
        (u8::try_from(user.len()), u8::try_from(password.len()))
    else {
        return Err(SocksError::TooLong("the user name or password"));
    };
    let mut v = vec![1, user_length];
    v.extend_from_slice(user.as_bytes());
    v.push(password_length);
    v.extend_from_slice(password.as_bytes());
    Ok(v)
}

/// The SOCKS5 CONNECT request.
pub fn socks_connect_request(target: &SocksTarget) -> Result<Vec<u8>, SocksError> {
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
            let length = u8::try_from(name.len()).map_err(|_| SocksError::TooLong("host name"))?;
            v.push(3);
            v.push(length);
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

/// The SOCKS5 handshake over `stream`: greeting, user/password when given,
/// CONNECT to `target`, and the reply read to its end, so what follows on
/// the stream is the target's.
pub fn handshake<S: Read + Write + ?Sized>(
    stream: &mut S,
    credentials: Option<&Credentials>,
    target: &SocksTarget,
) -> Result<(), SocksError> {
    stream.write_all(&socks_greeting(credentials.is_some()))?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply)?;
    if reply[0] != 5 {
        return Err(SocksError::NotSocks5(reply[0]));
    }
    match (reply[1], credentials) {
        (0, _) => {}
        (2, Some(given)) => {
            stream.write_all(&socks_auth_request(&given.user, &given.password)?)?;
            let mut answer = [0u8; 2];
            stream.read_exact(&mut answer)?;
            if answer[1] != 0 {
                return Err(SocksError::AuthRejected);
            }
        }
        (0xff, None) => return Err(SocksError::AuthRequired),
        (method, _) => return Err(SocksError::UnsupportedMethod(method)),
    }
    stream.write_all(&socks_connect_request(target)?)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    if head[1] != 0 {
        return Err(SocksError::Refused {
            target: target.to_string(),
            code: head[1],
        });
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut length = [0u8; 1];
            stream.read_exact(&mut length)?;
            usize::from(length[0]) + 2
        }
        other => return Err(SocksError::BadAddressType(other)),
    };
    // At most 257 bytes: the bound address, unused for CONNECT.
    let mut bound = [0u8; 257];
    stream.read_exact(bound.get_mut(..rest).unwrap_or_default())?;
    Ok(())
}

/// Where the proxy is asked to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `socks5h://`: the proxy resolves the name (an IP literal is sent as
    /// an address).
    Name(SocksTarget),
    /// `socks5://`: the target's addresses, resolved here, in the
    /// resolver's order.
    Addresses(Vec<SocketAddr>),
}

/// A tunnel through the SOCKS5 proxy at `proxy_addrs` to `destination`,
/// all within `timeout`. The returned stream's read and write timeouts are
/// left at what remained of it.
pub fn open(
    proxy_addrs: &[SocketAddr],
    credentials: Option<Credentials>,
    destination: Destination,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let start = Instant::now();
    let stream = eyeballs::connect(proxy_addrs, timeout)?;
    let left = remaining(start, timeout)?;
    match destination {
        Destination::Name(target) => tunnel(stream, credentials.as_ref(), &target, left),
        Destination::Addresses(targets) => {
            race_through(stream, credentials, &targets, left).map(|won| won.stream)
        }
    }
}

/// A tunnel to one of a target's addresses, and which one.
#[derive(Debug)]
pub struct Tunnel {
    pub stream: TcpStream,
    pub target: SocketAddr,
}

/// CONNECTs through the proxy `stream` is connected to, racing `targets`
/// (Happy Eyeballs order and delays): the first attempt uses `stream`, each
/// later one a new connection to the same proxy address.
pub fn race_through(
    stream: TcpStream,
    credentials: Option<Credentials>,
    targets: &[SocketAddr],
    timeout: Duration,
) -> io::Result<Tunnel> {
    match targets {
        [] => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the target name has no address",
            ))
        }
        [only] => {
            let stream = tunnel(
                stream,
                credentials.as_ref(),
                &SocksTarget::Ip(*only),
                timeout,
            )?;
            return Ok(Tunnel {
                stream,
                target: *only,
            });
        }
        _ => {}
    }
    let proxy = stream.peer_addr()?;
    let first = Mutex::new(Some(stream));
    eyeballs::race(targets, timeout, move |target, left| {
        let taken = first.lock().ok().and_then(|mut slot| slot.take());
        let stream = match taken {
            Some(stream) => stream,
            None => TcpStream::connect_timeout(&proxy, left)?,
        };
        let stream = tunnel(stream, credentials.as_ref(), &SocksTarget::Ip(target), left)?;
        Ok(Tunnel { stream, target })
    })
}

fn remaining(start: Instant, timeout: Duration) -> io::Result<Duration> {
    match timeout.checked_sub(start.elapsed()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the SOCKS5 proxy took longer than {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

fn tunnel(
    mut stream: TcpStream,
    credentials: Option<&Credentials>,
    target: &SocksTarget,
    left: Duration,
) -> io::Result<TcpStream> {
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    handshake(&mut stream, credentials, target)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        assert_eq!(socks_greeting(false), vec![5, 1, 0]);
        assert_eq!(socks_greeting(true), vec![5, 2, 0, 2]);
        assert_eq!(
            socks_auth_request("ab", "c").ok(),
            Some(vec![1, 2, b'a', b'b', 1, b'c'])
        );
        assert!(socks_auth_request(&"x".repeat(256), "").is_err());
        let v4 = SocksTarget::Ip(SocketAddr::from(([127, 0, 0, 1], 443)));
        assert_eq!(
            socks_connect_request(&v4).ok(),
            Some(vec![5, 1, 0, 1, 127, 0, 0, 1, 1, 187])
        );
        let name = SocksTarget::Domain("ab.c".into(), 80);
        assert_eq!(
            socks_connect_request(&name).ok(),
            Some(vec![5, 1, 0, 3, 4, b'a', b'b', b'.', b'c', 0, 80])
        );
        assert!(socks_connect_request(&SocksTarget::Domain("x".repeat(256), 1)).is_err());
        let v6 = SocksTarget::Ip("[::1]:80".parse().unwrap_or_else(|e| panic!("{e}")));
        let request = socks_connect_request(&v6).unwrap_or_default();
        assert_eq!(request.len(), 3 + 1 + 16 + 2);
        assert_eq!(request[3], 4);
        assert_eq!(socks_reply_text(2), "connection not allowed by ruleset");
    }

    /// A stream fed recorded proxy bytes that keeps what the client wrote.
    struct Recorded {
        input: io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Recorded {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.input.read(buffer)
        }
    }

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(
        answer: &[u8],
        credentials: Option<&Credentials>,
    ) -> (Result<(), SocksError>, Vec<u8>, u64) {
        let mut stream = Recorded {
            input: io::Cursor::new(answer.to_vec()),
            written: Vec::new(),
        };
        let target = SocksTarget::Domain("ab.c".into(), 80);
        let result = handshake(&mut stream, credentials, &target);
        (result, stream.written, stream.input.position())
    }

    #[test]
    fn handshake_on_recorded_answers() {
        let connect = [5, 1, 0, 3, 4, b'a', b'b', b'.', b'c', 0, 80];
        // no auth, reply with a domain bound address, then target bytes
        let answer = [&[5, 0, 5, 0, 0, 3, 2, b'x', b'y', 0, 1][..], b"HTTP"].concat();
        let (result, written, read) = run(&answer, None);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(written, [&[5, 1, 0][..], &connect].concat());
        assert_eq!(
            read, 11,
            "the reply is read to its end, not into the target's bytes"
        );

        let credentials = Credentials {
            user: "u".into(),
            password: "p".into(),
        };
        let answer = [5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let (result, written, _) = run(&answer, Some(&credentials));
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            written,
            [&[5, 2, 0, 2, 1, 1, b'u', 1, b'p'][..], &connect].concat()
        );

        let failures: [(&[u8], Option<&Credentials>, &str); 6] = [
            (b"HTTP/1.1 400", None, "NotSocks5(72)"),
            (&[5, 0xff], None, "AuthRequired"),
            (&[5, 2, 1, 1], Some(&credentials), "AuthRejected"),
            (&[5, 2], None, "UnsupportedMethod(2)"),
            (&[5, 0, 5, 4, 0, 1], None, "Refused"),
            (&[5, 0, 5, 0, 0, 9], None, "BadAddressType(9)"),
        ];
        for (answer, given, want) in failures {
            let (result, _, _) = run(answer, given);
            let shown = format!("{:?}", result.err());
            assert!(shown.contains(want), "{shown} for {answer:?}");
        }
        let (result, _, _) = run(&[5, 0, 5, 0, 0], None);
        assert!(matches!(result, Err(SocksError::Io(_))), "cut short");
        let refused: io::Error = SocksError::Refused {
            target: "t".into(),
            code: 5,
        }
        .into();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        assert!(refused
            .to_string()
            .contains("connection refused by the target"));
    }
}
