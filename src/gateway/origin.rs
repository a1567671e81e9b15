//! Who may talk to the gateway from a browser: the `Host` and `Origin`
//! rules (pure; fed header values, no sockets).
//!
//! A web page the user happens to visit can make the browser send requests
//! to 127.0.0.1. Three rules keep such a page from driving the gateway:
//! - `Host` must name this gateway: `localhost`, a loopback address, the
//!   bind address (any IP address when bound to all interfaces), or an entry
//!   of `gateway.allowedHosts`. A DNS-rebinding page always arrives under its
//!   own host name, so it is refused even though it reaches our socket.
//! - `Origin`, when a browser sends one, must be the gateway's own
//!   (`http(s)://` + the request's `Host`) or listed in
//!   `gateway.allowedOrigins`. Clients that send no `Origin` (the CLI, curl,
//!   servers) are not browsers and pass.
//! - State-changing calls carry `Content-Type: application/json`, which a
//!   cross-site form or `fetch` cannot send without a CORS preflight that
//!   the gateway never grants (checked in `http.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub struct Policy {
    bind: IpAddr,
    allowed_origins: Vec<String>,
    allowed_hosts: Vec<String>,
}

/// Why a request was refused; `message` is the 403 body's text.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
}

impl Policy {
    pub fn new(bind: IpAddr, allowed_origins: &[String], allowed_hosts: &[String]) -> Policy {
        Policy {
            bind,
            allowed_origins: allowed_origins.iter().map(|o| normal_origin(o)).collect(),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| host_name(h.trim()).to_ascii_lowercase())
                .collect(),
        }
    }

    /// Checks a request's `Host` and `Origin` headers.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), Refusal> {
        if let Some(h) = host {
            if !self.host_allowed(h) {
                return Err(Refusal {
                    message: format!(
                        "Host {:?} is not this gateway's; add it to gateway.allowedHosts if you reach the gateway under that name",
                        crate::util::truncate_chars(h, 100)
                    ),
                });
            }
        }
        let Some(origin) = origin else {
            return Ok(());
        };
        let normal = normal_origin(origin);
        if self.allowed_origins.iter().any(|o| *o == normal) {
            return Ok(());
        }
        if let Some(h) = host {
            let h = h.trim().to_ascii_lowercase();
            if normal == format!("http://{h}") || normal == format!("https://{h}") {
                return Ok(());
            }
        }
        Err(Refusal {
            message: format!(
                "requests from the web page at {:?} are refused; add that origin to gateway.allowedOrigins to allow it",
                crate::util::truncate_chars(origin, 100)
            ),
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host.trim()).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if name == "localhost" || self.allowed_hosts.iter().any(|h| h == name) {
            return true;
        }
        let Some(ip) = ip_literal(name) else {
            return false;
        };
        // An IP address in Host cannot come from DNS rebinding.
        ip.is_loopback() || ip == self.bind || self.bind.is_unspecified()
    }
}

/// The host part of a `Host` value: `name`, `1.2.3.4` or `[::1]`, without
/// the port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn ip_literal(name: &str) -> Option<IpAddr> {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    name.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn normal_origin(origin: &str) -> String {
    let o = origin.trim().to_ascii_lowercase();
    o.strip_suffix('/').map(str::to_string).unwrap_or(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Policy {
        Policy::new(
            "127.0.0.1".parse().expect("ip"),
            &["https://app.example".to_string()],
            &["pinch.home.arpa".to_string()],
        )
    }

    #[test]
    fn own_hosts_pass_and_rebinding_names_are_refused() {
        let p = loopback();
        for h in [
            "127.0.0.1:18789",
            "127.0.0.1",
            "localhost:18789",
            "LOCALHOST",
            "[::1]:18789",
            "pinch.home.arpa:8080",
            "localhost.",
        ] {
            assert_eq!(p.check(Some(h), None), Ok(()), "{h}");
        }
        for h in [
            "evil.example:18789",
            "10.0.0.5:18789",
            "",
            "[::1",
            "127.0.0.1.evil.example",
            "é:1",
        ] {
            assert!(p.check(Some(h), None).is_err(), "{h}");
        }
        assert_eq!(p.check(None, None), Ok(()), "HTTP/1.0 clients send no Host");
    }

    #[test]
    fn a_lan_bind_takes_any_ip_address_but_no_foreign_name() {
        let p = Policy::new("0.0.0.0".parse().expect("ip"), &[], &[]);
        assert_eq!(p.check(Some("192.168.1.20:18789"), None), Ok(()));
        assert!(p.check(Some("evil.example"), None).is_err());
        let p = Policy::new("192.168.1.20".parse().expect("ip"), &[], &[]);
        assert_eq!(p.check(Some("192.168.1.20:18789"), None), Ok(()));
        assert!(p.check(Some("192.168.1.21:18789"), None).is_err());
    }

    #[test]
    fn only_the_own_or_listed_origins_pass() {
        let p = loopback();
        let host = Some("127.0.0.1:18789");
        assert_eq!(p.check(host, Some("http://127.0.0.1:18789")), Ok(()));
        assert_eq!(p.check(host, Some("https://app.example/")), Ok(()));
        for o in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:9999",
            "http://localhost:18789",
            "",
        ] {
            let e = p.check(host, Some(o)).expect_err(o);
            assert!(
                e.message.contains("gateway.allowedOrigins"),
                "{}",
                e.message
            );
        }
        assert!(p.check(None, Some("http://127.0.0.1:18789")).is_err());
    }
}
