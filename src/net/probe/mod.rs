//! Step-by-step connectivity probe for `pinch doctor`: DNS, TCP connect,
//! proxy handshake (HTTP CONNECT or SOCKS5), TLS, then one HTTP request.
//!
//! The I/O shell is [`probe`] (blocking std sockets, every step bounded by
//! the given timeout). Everything that can be decided without a socket —
//! error classification, request bytes, response parsing — is in small pure
//! functions tested on their own. Proxy credentials are sent on the wire
//! but never written into a report.
//!
//! Here: the steps and their failures; `http_proxy` (CONNECT), `socks5`,
//! `tls` and `response` (response heads, via httparse) hold the rest.

mod http_proxy;
mod response;
mod socks5;
mod tls;

pub use http_proxy::{base64, classify_connect_status, connect_request};
pub use response::parse_response_head;
use response::read_head;
pub use socks5::classify_socks;
pub use tls::classify_tls;
pub(crate) use tls::tls_handshake;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::eyeballs;
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
    let (addrs, socks_targets) = step(report, Step::Dns, || match proxy {
        None => {
            let a = resolve(&target.host, target.port, timeout)?;
            let d = describe_lookup(&target.host, &a);
            Ok(((a, Vec::new()), d))
        }
        Some(p) => {
            let a = resolve(&p.host, p.port, timeout)?;
            let mut d = format!("proxy {}", describe_lookup(&p.host, &a));
            let mut local = Vec::new();
            if p.scheme == ProxyScheme::Socks5 {
                let t = resolve(&target.host, target.port, timeout)?;
                d.push_str(&format!(
                    "; {} (socks5 sends the IP)",
                    describe_lookup(&target.host, &t)
                ));
                local = t;
            } else {
                d.push_str(&format!("; the proxy resolves {}", target.host));
            }
            Ok(((a, local), d))
        }
    })?;

    // TCP connect
    let tcp = step(report, Step::Connect, || {
        let s = connect_any(&addrs, timeout)?;
        let peer = match s.peer_addr() {
            Ok(peer) => format!("{peer} ({})", eyeballs::describe_winner(peer, &addrs)),
            Err(_) => "?".to_string(),
        };
        let what = if proxy.is_some() { "proxy " } else { "" };
        Ok((s, format!("connected to {what}{peer}")))
    })?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);

    // Proxy handshake
    let mut conn: Box<dyn Conn> = match proxy {
        Some(p) => {
            let config = match client_config(ca_file) {
                Ok(c) => c,
                Err(e) => return Err(Failure::Other(e)),
            };
            let socks_targets = socks_targets.as_slice();
            step(report, Step::ProxyHandshake, move || {
                proxy_handshake(tcp, p, target, socks_targets, config, timeout)
            })?
        }
        None => Box::new(tcp),
    };

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

/// Connects to the first of `addrs` that answers, racing them (Happy
/// Eyeballs) as every other outbound connection does.
pub(crate) fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, StepErr> {
    let shown = match addrs {
        [] => return Err((Failure::Dns, "no address to connect to".to_string())),
        [only] => only.to_string(),
        more => {
            let list: Vec<String> = more.iter().map(SocketAddr::to_string).collect();
            list.join(", ")
        }
    };
    eyeballs::connect(addrs, timeout).map_err(|e| {
        (
            classify_io(Step::Connect, e.kind(), &e.to_string()),
            format!("{shown}: {e}"),
        )
    })
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

/// The proxy's handshake over `tcp`, connected to the proxy: CONNECT (after
/// TLS to an https:// proxy) or SOCKS5, whose `socks5://` form races
/// `socks_targets` (the target's addresses, resolved here) through it.
pub(crate) fn proxy_handshake(
    tcp: TcpStream,
    p: &ProxyUrl,
    target: &RequestUrl,
    socks_targets: &[SocketAddr],
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<(Box<dyn Conn>, String), StepErr> {
    if matches!(p.scheme, ProxyScheme::Socks5 | ProxyScheme::Socks5h) {
        return socks5::connect(tcp, p, target, socks_targets, timeout);
    }
    let mut conn: Box<dyn Conn> = Box::new(tcp);
    let mut prefix = String::new();
    if p.scheme == ProxyScheme::Https {
        let (c, d) = tls_handshake(conn, &p.host, config)?;
        conn = c;
        prefix = format!("TLS to proxy ({d}); ");
    }
    let done = http_proxy::connect(&mut conn, p, target)?;
    Ok((conn, format!("{prefix}{done}")))
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

#[cfg(test)]
mod tests;
