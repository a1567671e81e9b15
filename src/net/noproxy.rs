//! `noProxy` / `NO_PROXY` matching with curl's documented semantics.
//!
//! Pure logic: an entry list is parsed once into [`NoProxy`], then
//! [`NoProxy::matches`] answers "does this host:port bypass the proxy, and
//! because of which entry?". No name resolution happens here: names match
//! names, address literals match addresses and CIDR ranges.

use std::fmt;
use std::net::IpAddr;

/// A parsed list of proxy-bypass entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The entry as the user wrote it (trimmed), used in explanations.
    raw: String,
    pattern: Pattern,
    /// When set, the entry only applies to this destination port.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// `*`: every host.
    All,
    /// A domain, lowercase, without leading or trailing dot: matches itself
    /// and every subdomain.
    Domain(String),
    /// An address literal.
    Ip(IpAddr),
    /// An address range: network address and prefix length.
    Cidr(IpAddr, u8),
}

impl NoProxy {
    /// Parses config entries. Empty entries are skipped; anything that is not a
    /// host name, address, CIDR range or `*` (optionally with `:port`) is an error.
    pub fn parse(entries: &[String]) -> Result<NoProxy, String> {
        let mut out = Vec::new();
        for raw in entries {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            out.push(parse_entry(trimmed)?);
        }
        Ok(NoProxy { entries: out })
    }

    /// Parses a comma-separated `NO_PROXY` value such as `"a, b,.c"`; entries
    /// are trimmed and empty ones skipped.
    pub fn from_env_str(value: &str) -> Result<NoProxy, String> {
        let entries: Vec<String> = value.split(',').map(|s| s.to_string()).collect();
        NoProxy::parse(&entries)
    }

    /// Like [`NoProxy::from_env_str`] but keeps the valid entries and returns
    /// one message per rejected entry (for environment values, which should
    /// warn rather than stop the program).
    pub fn from_env_str_lenient(value: &str) -> (NoProxy, Vec<String>) {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for part in value.split(',') {
            let trimmed = part.trim();
            if trimmed.is_empty() {
                continue;
            }
            match parse_entry(trimmed) {
                Ok(e) => entries.push(e),
                Err(e) => errors.push(e),
            }
        }
        (NoProxy { entries }, errors)
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written (trimmed), in order.
    pub fn entries(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.raw.as_str()).collect()
    }

    /// Returns the first entry that makes `host:port` bypass the proxy.
    ///
    /// `host` may be a name (case and a trailing dot are ignored) or an IP
    /// literal, IPv6 with or without brackets.
    pub fn matches(&self, host: &str, port: u16) -> Option<String> {
        let host = normalize_host(host);
        let host_ip: Option<IpAddr> = host.parse().ok();
        for entry in &self.entries {
            if let Some(p) = entry.port {
                if p != port {
                    continue;
                }
            }
            let hit = match &entry.pattern {
                Pattern::All => true,
                Pattern::Domain(d) => {
                    host_ip.is_none() && (host == *d || host.ends_with(&format!(".{d}")))
                }
                Pattern::Ip(a) => host_ip == Some(*a),
                Pattern::Cidr(net, len) => match host_ip {
                    Some(ip) => in_cidr(ip, *net, *len),
                    None => false,
                },
            };
            if hit {
                return Some(entry.raw.clone());
            }
        }
        None
    }
}

impl fmt::Display for NoProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&self.entries().join(", "))
    }
}

/// Lowercases, strips IPv6 brackets and a trailing dot.
fn normalize_host(host: &str) -> String {
    let mut h = host.trim();
    if h.starts_with('[') && h.ends_with(']') && h.len() >= 2 {
        h = &h[1..h.len() - 1];
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    h.to_ascii_lowercase()
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    let bad = |why: &str| {
        format!("noProxy entry '{raw}' is not valid: {why}; use a host name (example.com, .example.com), an IP address, a CIDR range (10.0.0.0/8) or '*', optionally followed by :port")
    };
    if raw.contains("://") {
        return Err(bad("it looks like a URL, write only the host name"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(bad("it contains a space or '@'"));
    }
    if raw == "*" {
        return Ok(Entry {
            raw: raw.to_string(),
            pattern: Pattern::All,
            port: None,
        });
    }

    // Bracketed IPv6, optionally with /prefix and/or :port after the bracket.
    if let Some(rest) = raw.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| bad("'[' without matching ']'"))?;
        let inner = &rest[..close];
        let after = &rest[close + 1..];
        let (inner_addr, inner_prefix) = match inner.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (inner, None),
        };
        let ip: IpAddr = inner_addr
            .parse()
            .map_err(|_| bad("the text inside [] is not an IP address"))?;
        let (prefix_text, port_text) = if let Some(p) = after.strip_prefix('/') {
            match p.split_once(':') {
                Some((pre, port)) => (Some(pre), Some(port)),
                None => (Some(p), None),
            }
        } else if let Some(port) = after.strip_prefix(':') {
            (None, Some(port))
        } else if after.is_empty() {
            (None, None)
        } else {
            return Err(bad("unexpected text after ']'"));
        };
        if inner_prefix.is_some() && prefix_text.is_some() {
            return Err(bad("two prefix lengths"));
        }
        let port = match port_text {
            Some(p) => Some(parse_port(p).map_err(|e| bad(&e))?),
            None => None,
        };
        let pattern = match inner_prefix.or(prefix_text) {
            Some(p) => cidr(ip, p).map_err(|e| bad(&e))?,
            None => Pattern::Ip(ip),
        };
        return Ok(Entry {
            raw: raw.to_string(),
            pattern,
            port,
        });
    }

    // CIDR: address/prefix, optionally followed by :port.
    if let Some((addr, rest)) = raw.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| bad("the part before '/' is not an IP address"))?;
        let (prefix, port) = match rest.split_once(':') {
            Some((pre, p)) => (pre, Some(parse_port(p).map_err(|e| bad(&e))?)),
            None => (rest, None),
        };
        let pattern = cidr(ip, prefix).map_err(|e| bad(&e))?;
        return Ok(Entry {
            raw: raw.to_string(),
            pattern,
            port,
        });
    }

    // A bare IP literal (IPv6 without brackets cannot carry a port).
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Ok(Entry {
            raw: raw.to_string(),
            pattern: Pattern::Ip(ip),
            port: None,
        });
    }

    // host:port
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p).map_err(|e| bad(&e))?)),
        None => (raw, None),
    };
    if host.contains(':') {
        return Err(bad(
            "IPv6 addresses with a port need brackets, like [fd00::1]:443",
        ));
    }
    if host == "*" {
        return Ok(Entry {
            raw: raw.to_string(),
            pattern: Pattern::All,
            port,
        });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Entry {
            raw: raw.to_string(),
            pattern: Pattern::Ip(ip),
            port,
        });
    }
    let domain = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(bad("the host name is empty"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(bad("the host name has an empty label ('..')"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "a host name may only contain letters, digits, '-', '_' and '.'",
            ));
        }
    }
    Ok(Entry {
        raw: raw.to_string(),
        pattern: Pattern::Domain(domain.to_ascii_lowercase()),
        port,
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{text}' is not a port number (1-65535)")),
    }
}

fn cidr(ip: IpAddr, prefix: &str) -> Result<Pattern, String> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(len) if len <= max => Ok(Pattern::Cidr(ip, len)),
        _ => Err(format!("'{prefix}' is not a prefix length (0-{max})")),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np(entries: &[&str]) -> NoProxy {
        let v: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        match NoProxy::parse(&v) {
            Ok(n) => n,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    #[test]
    fn star_matches_everything() {
        let n = np(&["*"]);
        assert_eq!(n.matches("anything.example", 443), Some("*".into()));
        assert_eq!(n.matches("10.1.2.3", 80), Some("*".into()));
        assert_eq!(n.matches("[::1]", 80), Some("*".into()));
    }

    #[test]
    fn empty_list_matches_nothing() {
        let n = np(&[]);
        assert!(n.is_empty());
        assert_eq!(n.matches("example.com", 443), None);
        assert_eq!(n.to_string(), "(none)");
    }

    #[test]
    fn exact_host() {
        let n = np(&["localhost"]);
        assert_eq!(n.matches("localhost", 80), Some("localhost".into()));
        assert_eq!(n.matches("notlocalhost", 80), None);
    }

    #[test]
    fn domain_without_dot_matches_apex_and_subdomains() {
        let n = np(&["example.com"]);
        assert_eq!(n.matches("example.com", 443), Some("example.com".into()));
        assert_eq!(n.matches("a.example.com", 443), Some("example.com".into()));
        assert_eq!(
            n.matches("x.y.example.com", 443),
            Some("example.com".into())
        );
        assert_eq!(n.matches("badexample.com", 443), None);
        assert_eq!(n.matches("example.com.evil.net", 443), None);
        assert_eq!(n.matches("com", 443), None);
    }

    #[test]
    fn leading_dot_matches_apex_and_subdomains() {
        let n = np(&[".example.com"]);
        assert_eq!(n.matches("example.com", 443), Some(".example.com".into()));
        assert_eq!(
            n.matches("api.example.com", 443),
            Some(".example.com".into())
        );
        assert_eq!(n.matches("badexample.com", 443), None);
    }

    #[test]
    fn star_dot_prefix_is_like_leading_dot() {
        let n = np(&["*.internal"]);
        assert_eq!(n.matches("svc.internal", 80), Some("*.internal".into()));
        assert_eq!(n.matches("internal", 80), Some("*.internal".into()));
        assert_eq!(n.matches("xinternal", 80), None);
    }

    #[test]
    fn case_and_trailing_dot_are_ignored() {
        let n = np(&["Example.COM."]);
        assert_eq!(
            n.matches("API.example.com", 443),
            Some("Example.COM.".into())
        );
        assert_eq!(
            n.matches("api.example.com.", 443),
            Some("Example.COM.".into())
        );
        assert_eq!(n.matches("EXAMPLE.com.", 443), Some("Example.COM.".into()));
    }

    #[test]
    fn port_restricted_entries() {
        let n = np(&["example.com:8443", "10.0.0.1:80", "[fd00::1]:443", "*:9999"]);
        assert_eq!(
            n.matches("example.com", 8443),
            Some("example.com:8443".into())
        );
        assert_eq!(
            n.matches("a.example.com", 8443),
            Some("example.com:8443".into())
        );
        assert_eq!(n.matches("example.com", 443), None);
        assert_eq!(n.matches("10.0.0.1", 80), Some("10.0.0.1:80".into()));
        assert_eq!(n.matches("10.0.0.1", 81), None);
        assert_eq!(n.matches("fd00::1", 443), Some("[fd00::1]:443".into()));
        assert_eq!(n.matches("fd00::1", 80), None);
        assert_eq!(n.matches("anything", 9999), Some("*:9999".into()));
    }

    #[test]
    fn ipv4_literal() {
        let n = np(&["192.168.1.10"]);
        assert_eq!(n.matches("192.168.1.10", 80), Some("192.168.1.10".into()));
        assert_eq!(n.matches("192.168.1.11", 80), None);
        // no resolution: a name never matches an address entry
        assert_eq!(n.matches("router.lan", 80), None);
    }

    #[test]
    fn ipv4_cidr() {
        let n = np(&["10.0.0.0/8", "192.168.0.0/16:8080"]);
        assert_eq!(n.matches("10.200.3.4", 443), Some("10.0.0.0/8".into()));
        assert_eq!(n.matches("11.0.0.1", 443), None);
        assert_eq!(
            n.matches("192.168.5.5", 8080),
            Some("192.168.0.0/16:8080".into())
        );
        assert_eq!(n.matches("192.168.5.5", 80), None);
        let all = np(&["0.0.0.0/0"]);
        assert!(all.matches("8.8.8.8", 53).is_some());
        assert!(all.matches("::1", 53).is_none());
    }

    #[test]
    fn ipv6_cidr() {
        let n = np(&["fd00::/8"]);
        assert_eq!(n.matches("fd12:3456::1", 443), Some("fd00::/8".into()));
        assert_eq!(n.matches("[fd12::1]", 443), Some("fd00::/8".into()));
        assert_eq!(n.matches("fe80::1", 443), None);
        assert_eq!(n.matches("10.0.0.1", 443), None);
        let bracketed = np(&["[fd00::]/8"]);
        assert!(bracketed.matches("fdff::2", 1).is_some());
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        for entry in ["::1", "[::1]"] {
            let n = np(&[entry]);
            assert_eq!(n.matches("::1", 80), Some(entry.into()), "{entry}");
            assert_eq!(n.matches("[::1]", 80), Some(entry.into()), "{entry}");
            assert_eq!(n.matches("[0:0:0:0:0:0:0:1]", 80), Some(entry.into()));
            assert_eq!(n.matches("::2", 80), None);
        }
    }

    #[test]
    fn from_env_str_trims_and_skips_empty() {
        let n = match NoProxy::from_env_str(" a.test, b.test ,,.c.test ") {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(n.entries(), vec!["a.test", "b.test", ".c.test"]);
        assert!(n.matches("x.c.test", 1).is_some());
        assert_eq!(n.to_string(), "a.test, b.test, .c.test");
    }

    #[test]
    fn garbage_is_rejected_with_a_message() {
        for bad in [
            "http://example.com",
            "exa mple.com",
            "example.com:http",
            "example.com:0",
            "example.com:70000",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "[fd00::1",
            "[not-ip]",
            "fd00::1:zz",
            "a..b",
            "ex!ample.com",
            "user@host",
            ".",
        ] {
            match NoProxy::parse(&[bad.to_string()]) {
                Ok(n) => panic!("'{bad}' was accepted: {n:?}"),
                Err(e) => {
                    assert!(e.contains(bad), "message should quote the entry: {e}");
                    assert!(
                        e.contains("use a host name"),
                        "message should say what to do: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn lenient_keeps_valid_entries() {
        let (n, errs) = NoProxy::from_env_str_lenient("good.test, bad entry, 10.0.0.0/8");
        assert_eq!(n.entries(), vec!["good.test", "10.0.0.0/8"]);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn first_matching_entry_is_reported() {
        let n = np(&["api.example.com", "example.com"]);
        assert_eq!(
            n.matches("api.example.com", 443),
            Some("api.example.com".into())
        );
        assert_eq!(
            n.matches("www.example.com", 443),
            Some("example.com".into())
        );
    }
}
