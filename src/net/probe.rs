//! Step-by-step connectivity probe for `pinch doctor`: DNS, TCP connect,
//! proxy handshake (HTTP CONNECT or SOCKS5), TLS, then one HTTP request.
//!
//! The I/O shell is [`probe`] (blocking std sockets, every step bounded by
//! the given timeout). Everything that can be decided without a socket —
//! error classification, request bytes, response parsing — is in small pure
//! functions tested on their own. Proxy credentials are sent on the wire
//! but never written into a report.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::route::{parse_request_url, redact_url, Decision, ProxyScheme, ProxyUrl, RequestUrl};
use super::tls::client_config;

/// The stages of a probe, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Dns,
    Connect,
    ProxyHandshake,
    Tls,
    Http,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dns => "dns",
            Step::Connect => "connect",
            Step::ProxyHandshake => "proxy",
            Step::Tls => "tls",
            Step::Http => "http",
        })
    }
}

/// Why a probe failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A name did not resolve.
    Dns,
    /// Nothing listens (TCP RST on connect).
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// The connection was reset or closed after it was established.
    ResetAfterConnect,
    /// TLS failed for a reason other than trust.
    Tls {
        detail: String,
    },
    /// The server certificate is not trusted (unknown CA, wrong name, expired...).
    CertUntrusted {
        detail: String,
    },
    /// The proxy wants (other) credentials.
    ProxyAuthRequired,
    /// The proxy would not open the tunnel.
    ProxyRefused {
        detail: String,
    },
    /// The server answered with a 5xx status.
    HttpStatus(u16),
    Other(String),
}

impl Failure {
    /// The exit code curl would give for the same problem.
    pub fn curl_code(&self) -> u8 {
        match self {
            Failure::Dns => 6,
            Failure::Refused => 7,
            Failure::Timeout => 28,
            Failure::ResetAfterConnect => 56,
            Failure::Tls { .. } => 35,
            Failure::CertUntrusted { .. } => 60,
            // curl: "CONNECT tunnel failed, response 407"
            Failure::ProxyAuthRequired => 56,
            // curl: CURLE_PROXY, proxy handshake error
            Failure::ProxyRefused { .. } => 97,
            // what `curl --fail` gives for an error status
            Failure::HttpStatus(_) => 22,
            Failure::Other(_) => 7,
        }
    }

    /// One line telling what to fix, given the route that was taken.
    pub fn hint(&self, decision: &Decision) -> String {
        let proxy = decision.proxy();
        let via = |p: &ProxyUrl| p.host_port();
        match (self, proxy) {
            (Failure::Dns, None) => "the name does not resolve: check the URL's host name and this machine's DNS (/etc/resolv.conf); if only a proxy can resolve it, set network.proxy to a socks5h:// or http:// proxy".to_string(),
            (Failure::Dns, Some(p)) if p.scheme == ProxyScheme::Socks5 => format!("a name does not resolve locally: check the proxy host {} and DNS, or use socks5h:// so the proxy resolves target names", p.host),
            (Failure::Dns, Some(p)) => format!("the proxy host {} does not resolve: fix the proxy address in network.proxy (or the *_proxy variable) or this machine's DNS", p.host),
            (Failure::Refused, None) => "connection refused: nothing listens on that port; check the URL's port, or whether this network requires a proxy (network.proxy)".to_string(),
            (Failure::Refused, Some(p)) => format!("the proxy {} refused the connection: is the proxy running, and is the port right?", via(p)),
            (Failure::Timeout, None) => "no answer in time: a firewall may drop the traffic; if this network needs a proxy, set network.proxy (or https_proxy)".to_string(),
            (Failure::Timeout, Some(p)) => format!("no answer in time via the proxy {}: check that the proxy is reachable from this machine and can reach the target", via(p)),
            (Failure::ResetAfterConnect, None) => "the connection was cut after it opened: a firewall, captive portal or filter is interfering, or the port expects another protocol; try a proxy (network.proxy)".to_string(),
            (Failure::ResetAfterConnect, Some(p)) => format!("the proxy {} dropped the connection: check its logs and allow-list, and that its type matches the URL scheme (http:// vs socks5://)", via(p)),
            (Failure::Tls { .. }, _) => "the TLS handshake failed: the port may not speak TLS (http vs https?) or a middlebox interferes; check the URL scheme and port".to_string(),
            (Failure::CertUntrusted { .. }, _) => "the server certificate is not trusted: if a proxy or firewall inspects TLS, set network.caFile to its CA certificate (PEM); also check the host name in the URL".to_string(),
            (Failure::ProxyAuthRequired, Some(p)) if p.has_credentials() => format!("the proxy {} rejected the credentials: check the user and password in the proxy URL", via(p)),
            (Failure::ProxyAuthRequired, Some(p)) => format!("the proxy {} requires credentials: write them into the proxy URL, e.g. {}://user:password@{}", via(p), p.scheme.as_str(), via(p)),
            (Failure::ProxyAuthRequired, None) => "a proxy asked for credentials: write them into the proxy URL (scheme://user:password@host:port)".to_string(),
            (Failure::ProxyRefused { .. }, _) => "the proxy would not connect to the target: check the proxy's allow-list and type (http:// vs socks5://), or add the host to noProxy if it should go direct".to_string(),
            (Failure::HttpStatus(code), _) => format!("the server answered HTTP {code}: the network path works; the service itself has a problem, try again later"),
            (Failure::Other(_), _) => "unexpected failure: check the URL and the network settings shown by `pinch config explain-route`".to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Dns => f.write_str("could not resolve host"),
            Failure::Refused => f.write_str("connection refused"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::ResetAfterConnect => f.write_str("connection reset after connect"),
            Failure::Tls { detail } => write!(f, "TLS handshake failed: {detail}"),
            Failure::CertUntrusted { detail } => write!(f, "certificate not trusted: {detail}"),
            Failure::ProxyAuthRequired => f.write_str("proxy authentication required"),
            Failure::ProxyRefused { detail } => write!(f, "proxy refused: {detail}"),
            Failure::HttpStatus(code) => write!(f, "HTTP status {code}"),
            Failure::Other(m) => f.write_str(m),
        }
    }
}

/// The outcome of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    pub step: Step,
    pub ok: bool,
    pub detail: String,
    pub millis: u64,
}

/// Everything a probe found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub target: String,
    /// The route decision's reason.
    pub route: String,
    pub steps: Vec<StepResult>,
    pub failure: Option<Failure>,
    /// The server's `Date` header, for clock checks.
    pub http_date: Option<String>,
}

impl ProbeReport {
    /// True when every step passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// Multi-line text for the doctor, ending with the curl code and a hint
    /// on failure.
    pub fn render(&self, decision: &Decision) -> String {
        let mut out = format!("probe {}\nroute: {}\n", self.target, self.route);
        for s in &self.steps {
            out.push_str(&format!(
                "  {} {:<8} {:>5} ms  {}\n",
                if s.ok { "ok  " } else { "FAIL" },
                s.step.to_string(),
                s.millis,
                s.detail
            ));
        }
        match &self.failure {
            None => out.push_str("result: ok\n"),
            Some(f) => {
                out.push_str(&format!("result: {f} (curl exit {})\n", f.curl_code()));
                out.push_str(&format!("hint: {}\n", f.hint(decision)));
            }
        }
        out
    }
}

/// Maps an I/O error seen during `step` to a failure.
pub fn classify_io(step: Step, kind: io::ErrorKind, detail: &str) -> Failure {
    use io::ErrorKind as K;
    match (step, kind) {
        (Step::Dns, K::TimedOut) | (Step::Dns, K::WouldBlock) => Failure::Timeout,
        (Step::Dns, _) => Failure::Dns,
        (_, K::TimedOut) | (_, K::WouldBlock) => Failure::Timeout,
        (_, K::ConnectionRefused) => Failure::Refused,
        (Step::Connect, K::ConnectionReset) | (Step::Connect, K::ConnectionAborted) => {
            Failure::Refused
        }
        (_, K::ConnectionReset)
        | (_, K::ConnectionAborted)
        | (_, K::UnexpectedEof)
        | (_, K::BrokenPipe) => Failure::ResetAfterConnect,
        _ => Failure::Other(format!("{step} failed: {detail}")),
    }
}

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

/// Parses an HTTP/1.x response head: status code and `Date` header.
pub fn parse_response_head(head: &[u8]) -> Result<(u16, Option<String>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        let shown: String = status_line.chars().take(40).collect();
        return Err(format!("not an HTTP/1.x response: '{shown}'"));
    }
    let code = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(|| format!("bad HTTP status line: '{status_line}'"))?;
    let mut date = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("date") {
                date = Some(value.trim().to_string());
            }
        }
    }
    Ok((code, date))
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
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

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

/// A byte stream to a peer: TCP, possibly through a proxy, possibly TLS.
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

pub(crate) type StepErr = (Failure, String);

/// Runs the probe for `url` along `decision`. Each step is bounded by
/// `timeout`; the first failing step ends the probe.
pub fn probe(
    url: &str,
    decision: &Decision,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> ProbeReport {
    let mut report = ProbeReport {
        target: redact_url(url),
        route: decision.why().to_string(),
        steps: Vec::new(),
        failure: None,
        http_date: None,
    };
    let target = match parse_request_url(url) {
        Ok(t) => t,
        Err(e) => {
            report.failure = Some(Failure::Other(e));
            return report;
        }
    };
    if let Err(f) = run(&target, decision, ca_file, timeout, &mut report) {
        report.failure = Some(f);
    }
    report
}

fn run(
    target: &RequestUrl,
    decision: &Decision,
    ca_file: Option<&Path>,
    timeout: Duration,
    report: &mut ProbeReport,
) -> Result<(), Failure> {
    let proxy = decision.proxy();

    // DNS
    let (addrs, socks_ip) = step(report, Step::Dns, || match proxy {
        None => {
            let a = resolve(&target.host, target.port, timeout)?;
            let d = describe_lookup(&target.host, &a);
            Ok(((a, None), d))
        }
        Some(p) => {
            let a = resolve(&p.host, p.port, timeout)?;
            let mut d = format!("proxy {}", describe_lookup(&p.host, &a));
            let mut local = None;
            if p.scheme == ProxyScheme::Socks5 {
                let t = resolve(&target.host, target.port, timeout)?;
                d.push_str(&format!(
                    "; {} (socks5 sends the IP)",
                    describe_lookup(&target.host, &t)
                ));
                local = t.first().copied();
            } else {
                d.push_str(&format!("; the proxy resolves {}", target.host));
            }
            Ok(((a, local), d))
        }
    })?;

    // TCP connect
    let tcp = step(report, Step::Connect, || {
        let s = connect_any(&addrs, timeout)?;
        let peer = s
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".to_string());
        let what = if proxy.is_some() { "proxy " } else { "" };
        Ok((s, format!("connected to {what}{peer}")))
    })?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let mut conn: Box<dyn Conn> = Box::new(tcp);

    // Proxy handshake
    if let Some(p) = proxy {
        let config = match client_config(ca_file) {
            Ok(c) => c,
            Err(e) => return Err(Failure::Other(e)),
        };
        conn = step(report, Step::ProxyHandshake, move || {
            proxy_handshake(conn, p, target, socks_ip, config)
        })?;
    }

    // TLS
    if target.is_tls() {
        let config = match client_config(ca_file) {
            Ok(c) => c,
            Err(e) => return Err(Failure::Other(e)),
        };
        conn = step(report, Step::Tls, move || {
            tls_handshake(conn, &target.host, config)
        })?;
    }

    // HTTP
    let (status, date) = step(report, Step::Http, || {
        let (status, date) = http_head(&mut conn, target)?;
        if status >= 500 {
            return Err((
                Failure::HttpStatus(status),
                format!("HEAD {} answered {status}", target.path),
            ));
        }
        Ok((
            (status, date),
            format!("HEAD {} answered {status}", target.path),
        ))
    })?;
    let _ = status;
    report.http_date = date;
    Ok(())
}

/// Times `f`, records a step result and passes the value or failure on.
fn step<T>(
    report: &mut ProbeReport,
    which: Step,
    f: impl FnOnce() -> Result<(T, String), StepErr>,
) -> Result<T, Failure> {
    let start = Instant::now();
    let result = f();
    let millis = start.elapsed().as_millis() as u64;
    match result {
        Ok((v, detail)) => {
            report.steps.push(StepResult {
                step: which,
                ok: true,
                detail,
                millis,
            });
            Ok(v)
        }
        Err((failure, detail)) => {
            report.steps.push(StepResult {
                step: which,
                ok: false,
                detail,
                millis,
            });
            Err(failure)
        }
    }
}

fn describe_lookup(host: &str, addrs: &[SocketAddr]) -> String {
    if host.parse::<IpAddr>().is_ok() {
        return format!("{host} (address, no lookup)");
    }
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    format!("{host} -> {}", ips.join(", "))
}

/// Resolves with a deadline (getaddrinfo has none of its own).
pub(crate) fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, StepErr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let r = (name.as_str(), port)
            .to_socket_addrs()
            .map(|it| it.collect::<Vec<_>>());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err((Failure::Dns, format!("{host} has no addresses"))),
        Ok(Err(e)) => Err((
            classify_io(Step::Dns, e.kind(), &e.to_string()),
            format!("cannot resolve {host}: {e}"),
        )),
        Err(_) => Err((
            Failure::Timeout,
            format!(
                "resolving {host} took longer than {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

pub(crate) fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, StepErr> {
    let mut last: Option<(io::Error, SocketAddr)> = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((e, *addr)),
        }
    }
    match last {
        Some((e, addr)) => Err((
            classify_io(Step::Connect, e.kind(), &e.to_string()),
            format!("{addr}: {e}"),
        )),
        None => Err((Failure::Dns, "no address to connect to".to_string())),
    }
}

/// Classifies an I/O error, looking inside for a rustls error first.
fn io_failure(step: Step, e: &io::Error) -> StepErr {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return (classify_tls(tls), tls.to_string());
    }
    let failure = classify_io(step, e.kind(), &e.to_string());
    let detail = match failure {
        Failure::Timeout => format!("no answer before the timeout ({e})"),
        _ => e.to_string(),
    };
    (failure, detail)
}

pub(crate) fn proxy_handshake(
    mut conn: Box<dyn Conn>,
    p: &ProxyUrl,
    target: &RequestUrl,
    socks_ip: Option<SocketAddr>,
    config: Arc<ClientConfig>,
) -> Result<(Box<dyn Conn>, String), StepErr> {
    let step = Step::ProxyHandshake;
    let io_err = |e: io::Error| io_failure(step, &e);
    let mut prefix = String::new();
    if p.scheme == ProxyScheme::Https {
        let (c, d) = tls_handshake(conn, &p.host, config)?;
        conn = c;
        prefix = format!("TLS to proxy ({d}); ");
    }
    match p.scheme {
        ProxyScheme::Http | ProxyScheme::Https => {
            let hp = target.host_port();
            conn.write_all(connect_request(&hp, p).as_bytes())
                .map_err(io_err)?;
            conn.flush().map_err(io_err)?;
            let head = read_head(&mut conn).map_err(io_err)?;
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
            Ok((conn, format!("{prefix}CONNECT {hp} answered {status}")))
        }
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
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
            Ok((conn, format!("{prefix}SOCKS5 CONNECT {shown} succeeded")))
        }
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

fn http_head(
    conn: &mut Box<dyn Conn>,
    target: &RequestUrl,
) -> Result<(u16, Option<String>), StepErr> {
    let host_header = target.host_header();
    let req = format!(
        "HEAD {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: pinch-doctor\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path
    );
    let io_err = |e: io::Error| io_failure(Step::Http, &e);
    conn.write_all(req.as_bytes()).map_err(io_err)?;
    conn.flush().map_err(io_err)?;
    let head = read_head(conn).map_err(io_err)?;
    if head.is_empty() {
        return Err((
            Failure::ResetAfterConnect,
            "the server closed the connection without answering".to_string(),
        ));
    }
    parse_response_head(&head).map_err(|e| (Failure::Other(e.clone()), e))
}

/// Reads up to the end of a response head (or EOF), at most 64 KiB.
fn read_head(conn: &mut Box<dyn Conn>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(n) => n,
            // a TLS peer that closes without close_notify after answering
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head larger than 64 KiB",
            ));
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use io::ErrorKind as K;

    fn proxy(text: &str) -> ProxyUrl {
        match ProxyUrl::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn io_classification() {
        assert_eq!(classify_io(Step::Dns, K::Other, "x"), Failure::Dns);
        assert_eq!(classify_io(Step::Dns, K::TimedOut, "x"), Failure::Timeout);
        assert_eq!(
            classify_io(Step::Connect, K::ConnectionRefused, "x"),
            Failure::Refused
        );
        assert_eq!(
            classify_io(Step::Connect, K::TimedOut, "x"),
            Failure::Timeout
        );
        assert_eq!(
            classify_io(Step::Connect, K::ConnectionReset, "x"),
            Failure::Refused
        );
        for step in [Step::ProxyHandshake, Step::Tls, Step::Http] {
            assert_eq!(classify_io(step, K::WouldBlock, "x"), Failure::Timeout);
            assert_eq!(classify_io(step, K::TimedOut, "x"), Failure::Timeout);
            for k in [
                K::ConnectionReset,
                K::ConnectionAborted,
                K::UnexpectedEof,
                K::BrokenPipe,
            ] {
                assert_eq!(
                    classify_io(step, k, "x"),
                    Failure::ResetAfterConnect,
                    "{step} {k:?}"
                );
            }
        }
        match classify_io(Step::Connect, K::PermissionDenied, "denied") {
            Failure::Other(m) => assert!(m.contains("denied")),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn tls_classification() {
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            classify_tls(&untrusted),
            Failure::CertUntrusted { .. }
        ));
        assert_eq!(classify_tls(&untrusted).curl_code(), 60);
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(classify_tls(&expired).curl_code(), 60);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(matches!(classify_tls(&alert), Failure::Tls { .. }));
        assert_eq!(classify_tls(&alert).curl_code(), 35);
    }

    #[test]
    fn curl_codes() {
        assert_eq!(Failure::Dns.curl_code(), 6);
        assert_eq!(Failure::Refused.curl_code(), 7);
        assert_eq!(Failure::Timeout.curl_code(), 28);
        assert_eq!(Failure::ResetAfterConnect.curl_code(), 56);
        assert_eq!(Failure::ProxyAuthRequired.curl_code(), 56);
        assert_eq!(Failure::HttpStatus(503).curl_code(), 22);
    }

    #[test]
    fn connect_status_classification() {
        assert_eq!(classify_connect_status(200, "h:443"), Ok(()));
        assert_eq!(
            classify_connect_status(407, "h:443"),
            Err(Failure::ProxyAuthRequired)
        );
        match classify_connect_status(403, "h:443") {
            Err(Failure::ProxyRefused { detail }) => assert!(detail.contains("403")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_head_parsing() {
        let head =
            b"HTTP/1.1 204 No Content\r\nServer: x\r\ndate: Tue, 01 Jul 2025 10:00:00 GMT\r\n\r\n";
        assert_eq!(
            parse_response_head(head),
            Ok((204, Some("Tue, 01 Jul 2025 10:00:00 GMT".to_string())))
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.0 200\r\n\r\n"),
            Ok((200, None))
        );
        assert!(parse_response_head(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert_eq!(find_head_end(b"a\r\n\r\nbody"), Some(5));
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"user:p\xffss"), "dXNlcjpw/3Nz");
    }

    #[test]
    fn connect_request_bytes() {
        let plain = connect_request("api.example.com:443", &proxy("http://10.0.0.1:3128"));
        assert_eq!(
            plain,
            "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\nUser-Agent: pinch-doctor\r\n\r\n"
        );
        let auth = connect_request("h:443", &proxy("http://Aladdin:open%20sesame@p:1"));
        assert!(auth.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    }

    #[test]
    fn socks_bytes() {
        assert_eq!(socks_greeting(false), vec![5, 1, 0]);
        assert_eq!(socks_greeting(true), vec![5, 2, 0, 2]);
        assert_eq!(
            socks_auth_request("ab", "c"),
            Ok(vec![1, 2, b'a', b'b', 1, b'c'])
        );
        assert!(socks_auth_request(&"x".repeat(256), "").is_err());
        let v4 = SocksTarget::Ip(SocketAddr::from(([127, 0, 0, 1], 443)));
        assert_eq!(
            socks_connect_request(&v4),
            Ok(vec![5, 1, 0, 1, 127, 0, 0, 1, 1, 187])
        );
        let name = SocksTarget::Domain("ab.c".into(), 80);
        assert_eq!(
            socks_connect_request(&name),
            Ok(vec![5, 1, 0, 3, 4, b'a', b'b', b'.', b'c', 0, 80])
        );
        let v6 = SocksTarget::Ip("[::1]:80".parse().unwrap_or_else(|e| panic!("{e}")));
        let req = match socks_connect_request(&v6) {
            Ok(r) => r,
            Err(f) => panic!("{f:?}"),
        };
        assert_eq!(req.len(), 3 + 1 + 16 + 2);
        assert_eq!(req[3], 4);
        assert_eq!(socks_reply_text(2), "connection not allowed by ruleset");
    }

    #[test]
    fn hints_depend_on_route_and_hide_secrets() {
        let direct = Decision::Direct {
            why: "direct".into(),
        };
        let p = proxy("http://alice:hunter2@10.0.0.1:3128");
        let via = Decision::Proxy {
            proxy: p.clone(),
            why: "via proxy".into(),
        };
        let all = [
            Failure::Dns,
            Failure::Refused,
            Failure::Timeout,
            Failure::ResetAfterConnect,
            Failure::Tls { detail: "x".into() },
            Failure::CertUntrusted { detail: "x".into() },
            Failure::ProxyAuthRequired,
            Failure::ProxyRefused { detail: "x".into() },
            Failure::HttpStatus(502),
            Failure::Other("x".into()),
        ];
        for f in &all {
            for d in [&direct, &via] {
                let h = f.hint(d);
                assert!(!h.is_empty());
                assert!(!h.contains('\n'));
                assert!(!h.contains("hunter2"), "{h}");
            }
        }
        assert!(Failure::Refused.hint(&via).contains("10.0.0.1:3128"));
        assert!(!Failure::Refused.hint(&direct).contains("10.0.0.1"));
        assert!(Failure::CertUntrusted { detail: "x".into() }
            .hint(&direct)
            .contains("caFile"));
        assert!(Failure::ProxyAuthRequired.hint(&via).contains("rejected"));
        let no_creds = Decision::Proxy {
            proxy: proxy("http://10.0.0.1:3128"),
            why: "via".into(),
        };
        assert!(Failure::ProxyAuthRequired
            .hint(&no_creds)
            .contains("user:password@"));
        let socks = Decision::Proxy {
            proxy: proxy("socks5://10.0.0.1:1080"),
            why: "via".into(),
        };
        assert!(Failure::Dns.hint(&socks).contains("socks5h"));
    }

    #[test]
    fn bad_url_is_reported_without_io() {
        let d = Decision::Direct {
            why: "direct".into(),
        };
        let r = probe("gopher://x", &d, None, Duration::from_millis(10));
        assert!(r.steps.is_empty());
        assert!(matches!(r.failure, Some(Failure::Other(_))));
        assert!(r.render(&d).contains("hint:"));
    }
}
