//! Builds ureq agents that follow a [`Route`]: direct or through the decided
//! proxy, trusting the Mozilla roots plus the route's `caFile`.
//!
//! The proxy decision is ours (see `route.rs`); ureq is always given an
//! explicit proxy setting so its own environment lookup never applies.

use std::sync::Arc;
use std::time::Duration;

use super::route::{redact_url, Decision, ProxyScheme, ProxyUrl, Route};
use super::tls::ureq_root_certs;

/// Timeouts applied to an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect (to the target or the proxy).
    pub connect: Duration,
    /// From request sent until the response head has arrived.
    pub recv_response: Duration,
    /// Longest silence on any single read, including streamed bodies.
    pub per_read: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            recv_response: Duration::from_secs(60),
            per_read: None,
        }
    }
}

/// Each connection's read buffer (a response head must fit in it) and write
/// buffer. ureq's default, 128 KiB each, stays resident for every open or
/// pooled connection (a long poll, an idle keep-alive one); response heads
/// are a few KB, and bodies stream through the buffers in pieces.
const READ_BUFFER: usize = 32 * 1024;
const WRITE_BUFFER: usize = 16 * 1024;

/// A response header's value as text (`None` when absent or not visible
/// ASCII), e.g. `Retry-After` for the caller's error classification.
pub fn header_text(headers: &ureq::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An agent for requests to `url` (and URLs that route the same way).
///
/// 4xx/5xx responses are returned as responses, not errors.
pub fn agent_for(route: &Route, url: &str, timeouts: &Timeouts) -> Result<ureq::Agent, String> {
    let (config, _) = agent_config(route, url, timeouts, 10)?;
    Ok(super::new_agent(config))
}

/// The ureq configuration [`agent_for`] uses, and the route's decision, for
/// callers that add their own resolver (`web_fetch`'s address guard).
pub fn agent_config(
    route: &Route,
    url: &str,
    timeouts: &Timeouts,
    max_redirects: u32,
) -> Result<(ureq::config::Config, Decision), String> {
    let decision = route.decide(url)?;
    let proxy = match &decision {
        Decision::Direct { .. } => None,
        Decision::Proxy { proxy, .. } => Some(ureq_proxy(proxy)?),
    };
    let roots = ureq_root_certs(route.ca_file.as_deref())?;
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(roots)
        .build();
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.recv_response))
        .timeout_per_read(timeouts.per_read)
        .max_redirects(max_redirects)
        .input_buffer_size(READ_BUFFER)
        .output_buffer_size(WRITE_BUFFER)
        .build();
    log::debug!("agent for {}: {}", redact_url(url), decision.why());
    Ok((config, decision))
}

/// Converts our proxy into ureq's, with credentials and the DNS behaviour
/// of the scheme (socks5 resolves locally, socks5h and HTTP let the proxy
/// resolve).
pub fn ureq_proxy(p: &ProxyUrl) -> Result<ureq::Proxy, String> {
    let protocol = match p.scheme {
        ProxyScheme::Http => ureq::ProxyProtocol::Http,
        ProxyScheme::Https => ureq::ProxyProtocol::Https,
        ProxyScheme::Socks5 => ureq::ProxyProtocol::Socks5,
        ProxyScheme::Socks5h => ureq::ProxyProtocol::Socks5h,
    };
    let host = if p.host.contains(':') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    let mut b = ureq::Proxy::builder(protocol)
        .host(&host)
        .port(p.port)
        .resolve_target(p.scheme == ProxyScheme::Socks5);
    match (&p.user, &p.password) {
        (Some(u), Some(pw)) => b = b.username(u).password(pw),
        (Some(u), None) => b = b.username(u),
        // ureq needs a username to carry a password
        (None, Some(pw)) => b = b.username("").password(pw),
        (None, None) => {}
    }
    // ureq's error could echo the URL it built, so it is not included
    b.build().map_err(|_| {
        format!("proxy {p} is not accepted by the HTTP client: check the host name and port")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::route::{resolve, EnvProxy, NetworkConfig};

    #[test]
    fn ureq_proxy_keeps_protocol_credentials_and_resolution() {
        let cases = [
            (
                "http://u:p%40ss@127.0.0.1:3128",
                ureq::ProxyProtocol::Http,
                false,
            ),
            (
                "socks5://u:pw@127.0.0.1:1080",
                ureq::ProxyProtocol::Socks5,
                true,
            ),
            (
                "socks5h://127.0.0.1:1080",
                ureq::ProxyProtocol::Socks5h,
                false,
            ),
            ("https://[::1]:8443", ureq::ProxyProtocol::Https, false),
        ];
        for (text, proto, resolve_local) in cases {
            let p = match ProxyUrl::parse(text) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            let u = match ureq_proxy(&p) {
                Ok(u) => u,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(u.protocol(), proto, "{text}");
            assert_eq!(u.resolve_target(), resolve_local, "{text}");
            assert_eq!(u.port(), p.port);
            assert_eq!(u.username(), p.user.as_deref());
            assert_eq!(u.password(), p.password.as_deref());
        }
    }

    #[test]
    fn agent_gets_explicit_proxy_setting() {
        let cfg = NetworkConfig {
            proxy: Some("socks5h://127.0.0.1:9".into()),
            no_proxy: Some(vec!["localhost".into()]),
            ca_file: None,
        };
        let route = match resolve(&[("network", &cfg)], &EnvProxy::default()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let t = Timeouts::default();
        let proxied = match agent_for(&route, "https://api.example.com/", &t) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert!(proxied.config().proxy().is_some());
        assert!(!proxied.config().http_status_as_error());
        let direct = match agent_for(&route, "http://localhost:1/", &t) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        assert!(direct.config().proxy().is_none());
    }
}

/// An agent built on first use: parsing the trust roots and building a TLS
/// config costs memory and start-up time, so a provider nobody calls never
/// pays it. The route is checked up front so mistakes still surface at start.
pub struct LazyAgent {
    route: Route,
    url: String,
    timeouts: Timeouts,
    agent: std::sync::OnceLock<Result<ureq::Agent, String>>,
}

impl LazyAgent {
    pub fn new(route: Route, url: &str, timeouts: Timeouts) -> Result<LazyAgent, String> {
        route.decide(url)?;
        Ok(LazyAgent {
            route,
            url: url.to_string(),
            timeouts,
            agent: std::sync::OnceLock::new(),
        })
    }

    pub fn get(&self) -> Result<&ureq::Agent, String> {
        self.agent
            .get_or_init(|| agent_for(&self.route, &self.url, &self.timeouts))
            .as_ref()
            .map_err(Clone::clone)
    }
}
