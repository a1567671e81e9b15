//! `web_fetch`'s guard against reaching inside: loopback, private (RFC
//! 1918), link-local, CGNAT, unique-local, multicast, unspecified and cloud
//! metadata addresses are refused (IPv4-mapped, -compatible, NAT64 and 6to4
//! IPv6 forms included), on every hop of a redirect chain, unless
//! `tools.webFetch.allowPrivate` is set.
//!
//! Direct connections resolve the name once, check every address and
//! connect only to the checked addresses (the check sits in ureq's resolver,
//! so a DNS answer cannot change between check and connect). Through a
//! proxy that resolves names itself (HTTP, socks5h) the host is resolved and
//! checked locally first; the proxy's own answer is outside pinch's reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};

/// Redirects followed by `web_fetch`, each hop checked.
pub const MAX_REDIRECTS: usize = 5;

/// Why an address is not fetched, or `None` for a public address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    if [a, b, c, d] == [169, 254, 169, 254] {
        return Some("a cloud metadata address");
    }
    let why = match (a, b) {
        (0, _) => "an unspecified (\"this network\") address",
        (127, _) => "a loopback address",
        (10, _) | (172, 16..=31) | (192, 168) => "a private (RFC 1918) address",
        (169, 254) => "a link-local address",
        (100, 64..=127) => "a carrier-grade NAT (100.64/10) address",
        (192, 0) if c == 0 => "an IETF protocol address (192.0.0/24)",
        (198, 18..=19) => "a benchmarking network address",
        (224..=239, _) => "a multicast address",
        (240..=255, _) => "a reserved or broadcast address",
        _ => return None,
    };
    Some(why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some("a cloud metadata address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        if s[5] == 0xffff {
            return forbidden_v4(v4);
        }
        return forbidden_v4(v4).or(Some("a deprecated IPv4-compatible address"));
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address.
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4);
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return forbidden_v4(v4);
    }
    match s[0] {
        0xfc00..=0xfdff => Some("a unique-local (fc00::/7) address"),
        0xfe80..=0xfebf => Some("a link-local address"),
        0xfec0..=0xfeff => Some("a site-local address"),
        0xff00..=0xffff => Some("a multicast address"),
        _ => None,
    }
}

fn refusal(host: &str, ip: IpAddr, why: &str) -> String {
    format!("refusing to fetch {host}: it resolves to {ip}, {why}; web_fetch only reaches public addresses (set tools.webFetch.allowPrivate to allow this)")
}

/// Checks a host by its literal address or local resolution (the path used
/// when a proxy resolves names).
pub fn check_host(host: &str, port: u16) -> Result<(), String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match forbidden(ip) {
            Some(why) => Err(refusal(host, ip, why)),
            None => Ok(()),
        };
    }
    let addrs = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    for a in addrs.take(32) {
        if let Some(why) = forbidden(a.ip()) {
            return Err(refusal(host, a.ip(), why));
        }
    }
    Ok(())
}

/// ureq's resolver with the address check: the addresses returned are the
/// ones connected to. `exempt` is the proxy's `host:port`, which may well be
/// on loopback.
#[derive(Debug)]
pub struct GuardResolver {
    pub exempt: Option<String>,
}

impl Resolver for GuardResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or("");
        if let (Some(ex), Some(scheme)) = (&self.exempt, uri.scheme()) {
            let port = uri.port_u16().unwrap_or(match scheme.as_str() {
                "https" => 443,
                _ => 80,
            });
            if *ex == format!("{host}:{port}") || *ex == format!("[{host}]:{port}") {
                return Ok(addrs);
            }
        }
        for a in addrs.iter() {
            if let Some(why) = forbidden(a.ip()) {
                return Err(ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    refusal(host, a.ip(), why),
                )));
            }
        }
        Ok(addrs)
    }
}

/// The `web_fetch` HTTP client: built on first use (TLS roots cost memory),
/// redirects followed here so that every hop is checked.
pub struct FetchAgent {
    route: crate::net::Route,
    timeouts: crate::net::Timeouts,
    allow_private: bool,
    agent: std::sync::OnceLock<Result<Built, String>>,
}

struct Built {
    agent: ureq::Agent,
    /// The route goes through a proxy that resolves names itself.
    proxy_resolves: bool,
}

/// A fetched response: final URL, status, content type and the body read
/// within the caps.
pub struct Fetched {
    pub url: String,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl FetchAgent {
    pub fn new(
        route: crate::net::Route,
        timeouts: crate::net::Timeouts,
        allow_private: bool,
    ) -> Result<FetchAgent, String> {
        route.decide("https://example.com/")?;
        Ok(FetchAgent {
            route,
            timeouts,
            allow_private,
            agent: std::sync::OnceLock::new(),
        })
    }

    fn built(&self) -> Result<&Built, String> {
        self.agent
            .get_or_init(|| {
                let (config, decision) = crate::net::agent_config(
                    &self.route,
                    "https://example.com/",
                    &self.timeouts,
                    0,
                )?;
                let proxy = decision.proxy();
                let proxy_resolves = proxy
                    .map(|p| p.scheme != crate::net::ProxyScheme::Socks5)
                    .unwrap_or(false);
                let agent = if self.allow_private {
                    crate::net::new_agent(config)
                } else {
                    let exempt = proxy.map(|p| p.host_port());
                    ureq::Agent::with_parts(
                        config,
                        crate::net::ureq_connector::connector(),
                        GuardResolver { exempt },
                    )
                };
                Ok(Built {
                    agent,
                    proxy_resolves,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// GETs `url`, following up to [`MAX_REDIRECTS`] redirects, each hop
    /// checked; reads at most `max` bytes within `timeout`.
    pub fn get(
        &self,
        url: &str,
        max: usize,
        timeout: std::time::Duration,
    ) -> Result<Fetched, String> {
        use std::io::Read;
        let built = self.built()?;
        let started = std::time::Instant::now();
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let target = crate::net::parse_request_url(&url)?;
            if target.scheme != "http" && target.scheme != "https" {
                return Err("only http:// and https:// URLs can be fetched".into());
            }
            if !self.allow_private && built.proxy_resolves {
                check_host(&target.host, target.port)?;
            }
            let resp = built
                .agent
                .get(&url)
                .header("User-Agent", "pinch/0.1")
                .call()
                .map_err(|e| format!("fetch failed: {e}"))?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                if let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) {
                    url = join_location(&url, loc)?;
                    continue;
                }
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let mut reader = resp.into_body().into_reader();
            let mut body = Vec::new();
            let mut chunk = [0u8; 8192];
            while body.len() < max && started.elapsed() <= timeout {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = max.saturating_sub(body.len());
                        body.extend_from_slice(chunk.get(..n.min(room)).unwrap_or(&[]));
                    }
                    Err(e) => return Err(format!("fetch broke: {e}")),
                }
            }
            return Ok(Fetched {
                url,
                status,
                content_type,
                body,
            });
        }
        Err(format!("more than {MAX_REDIRECTS} redirects; stopped"))
    }
}

/// Resolves a `Location` header against the URL it came from.
pub fn join_location(base: &str, location: &str) -> Result<String, String> {
    let loc = location.trim();
    let lower = loc.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(loc.to_string());
    }
    if lower.contains("://") {
        return Err(format!(
            "redirect to {loc:?}: only http and https are fetched"
        ));
    }
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("{base:?} is not a URL"))?;
    if let Some(net) = loc.strip_prefix("//") {
        return Ok(format!("{scheme}://{net}"));
    }
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..auth_end).unwrap_or(rest);
    if loc.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{loc}"));
    }
    let path = rest.get(auth_end..).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => path.get(..=i).unwrap_or("/"),
        None => "/",
    };
    Ok(format!("{scheme}://{authority}{dir}{loc}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_refused_public_ones_pass() {
        for bad in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = bad.parse().expect(bad);
            assert!(forbidden(ip).is_some(), "{bad} should be refused");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = good.parse().expect(good);
            assert_eq!(forbidden(ip), None, "{good} should pass");
        }
        assert_eq!(
            forbidden("169.254.169.254".parse().expect("ip")),
            Some("a cloud metadata address")
        );
    }

    #[test]
    fn literal_hosts_are_checked_without_dns() {
        assert!(check_host("127.0.0.1", 80).is_err());
        assert!(check_host("[::1]", 80).is_err());
        assert!(check_host("localhost", 80).is_err());
        assert!(check_host("1.1.1.1", 443).is_ok());
    }

    #[test]
    fn locations_join_like_a_browser() {
        let base = "http://a.example:8080/dir/page?q=1";
        assert_eq!(
            join_location(base, "https://b.example/x").expect("abs"),
            "https://b.example/x"
        );
        assert_eq!(
            join_location(base, "//c.example/y").expect("net"),
            "http://c.example/y"
        );
        assert_eq!(
            join_location(base, "/z").expect("root"),
            "http://a.example:8080/z"
        );
        assert_eq!(
            join_location(base, "w?x=1").expect("rel"),
            "http://a.example:8080/dir/w?x=1"
        );
        assert!(join_location(base, "file:///etc/passwd").is_err());
    }
}
