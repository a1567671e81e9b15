//! Route resolution: which proxy (if any) a request to a URL goes through.
//!
//! Pure logic. Config layers (`network`, `models.providers.X.network`, ...)
//! are merged field by field, the environment (`https_proxy` and friends) is
//! passed in as a value, and [`Route::decide`] turns a URL into a
//! [`Decision`] with a human-readable reason. Proxy credentials never appear
//! in any Debug/Display output or error message produced here.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::noproxy::NoProxy;

/// What the config says about proxying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySpec {
    /// Never use a proxy.
    Direct,
    /// Use `https_proxy` / `http_proxy` / `all_proxy` / `no_proxy`, as curl does.
    Env,
    /// Use this proxy.
    Url(ProxyUrl),
}

impl ProxySpec {
    /// Parses a config value: `"direct"`, `"env"` or a proxy URL.
    pub fn parse(text: &str) -> Result<ProxySpec, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("direct") {
            return Ok(ProxySpec::Direct);
        }
        if t.eq_ignore_ascii_case("env") {
            return Ok(ProxySpec::Env);
        }
        ProxyUrl::parse(t).map(ProxySpec::Url)
    }
}

impl fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySpec::Direct => f.write_str("direct"),
            ProxySpec::Env => f.write_str("env"),
            ProxySpec::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Proxy protocols we speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyScheme {
    /// HTTP proxy, tunnelling with CONNECT.
    Http,
    /// HTTP proxy reached over TLS, tunnelling with CONNECT.
    Https,
    /// SOCKS5; target names are resolved locally and the IP is sent.
    Socks5,
    /// SOCKS5; the proxy resolves target names.
    Socks5h,
}

impl ProxyScheme {
    /// The URL scheme, e.g. `"socks5h"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    /// Port used when the proxy URL has none (curl's defaults).
    pub fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Https => 443,
            ProxyScheme::Http | ProxyScheme::Socks5 | ProxyScheme::Socks5h => 1080,
        }
    }
}

/// A parsed proxy URL. Debug and Display hide the password (and a lone
/// username, which is often a token).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: ProxyScheme,
    /// Host name or IP literal; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl ProxyUrl {
    /// Parses `scheme://[user[:password]@]host[:port][/]`. Credentials may be
    /// percent-encoded. The scheme must be http, https, socks5 or socks5h.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let shown = redact_proxy_text(text);
        let (scheme_text, rest) = text.split_once("://").ok_or_else(|| {
            format!("proxy '{shown}' has no scheme: write it as http://host:port, https://host:port, socks5://host:port or socks5h://host:port (or use \"direct\" / \"env\")")
        })?;
        let scheme = match scheme_text.to_ascii_lowercase().as_str() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            other => {
                return Err(format!(
                    "proxy '{shown}' uses unsupported scheme '{other}': use http://, https://, socks5:// or socks5h://"
                ))
            }
        };
        // Credentials may contain unencoded '/', '?' or '#': split them off first.
        let (userinfo, after) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let hostport = match after.find('/') {
            Some(i) => {
                if &after[i..] != "/" {
                    return Err(format!(
                        "proxy '{shown}' has a path; a proxy URL is only scheme://host:port"
                    ));
                }
                &after[..i]
            }
            None => after,
        };
        if hostport.contains('?') || hostport.contains('#') {
            return Err(format!(
                "proxy '{shown}' has a query or fragment; a proxy URL is only scheme://host:port"
            ));
        }
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (name, pass) = match u.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (u, None),
                };
                let name = percent_decode(name).map_err(|e| format!("proxy '{shown}': {e}"))?;
                let pass = match pass {
                    Some(p) => {
                        Some(percent_decode(p).map_err(|e| format!("proxy '{shown}': {e}"))?)
                    }
                    None => None,
                };
                (Some(name), pass)
            }
        };
        let (host, port) =
            split_host_port(hostport).map_err(|e| format!("proxy '{shown}': {e}"))?;
        if host.is_empty() {
            return Err(format!("proxy '{shown}' has no host name"));
        }
        let port = match port {
            Some(p) => p,
            None => scheme.default_port(),
        };
        Ok(ProxyUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            user,
            password,
        })
    }

    /// `host:port`, with brackets around IPv6 literals.
    pub fn host_port(&self) -> String {
        format_host_port(&self.host, self.port)
    }

    /// True when a username or password is set.
    pub fn has_credentials(&self) -> bool {
        self.user.is_some() || self.password.is_some()
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (None, Some(_)) | (Some(_), None) => f.write_str("***@")?,
            (None, None) => {}
        }
        f.write_str(&self.host_port())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// One `network` config block. Every field is optional; a more specific
/// layer overrides a less specific one field by field.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfig {
    /// `"direct"`, `"env"` or a proxy URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (curl `NO_PROXY` syntax, one per item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<Vec<String>>,
    /// PEM file with extra CA certificates, added to the built-in roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("proxy", &self.proxy.as_deref().map(redact_proxy_text))
            .field("no_proxy", &self.no_proxy)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Proxy-related environment variables, captured as values so that route
/// resolution stays pure and testable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvProxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

/// The source of each [`EnvProxy`] value, e.g. `environment variable
/// HTTPS_PROXY` or `$PINCH_HOME/.env https_proxy`, for explanations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvOrigin {
    pub http: Option<String>,
    pub https: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

/// Proxy variables together with where each one was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyVars {
    pub values: EnvProxy,
    pub origin: EnvOrigin,
}

/// How the `.env` file is named in explanations.
pub const DOTENV_LABEL: &str = "$PINCH_HOME/.env";

impl EnvProxy {
    /// Reads `http_proxy`, `https_proxy`, `all_proxy`, `no_proxy` from the
    /// process environment; the lowercase name wins over the uppercase one,
    /// as in curl. Empty values count as unset.
    pub fn from_env() -> EnvProxy {
        EnvProxy::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`EnvProxy::from_env`] with an injected variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> EnvProxy {
        ProxyVars::from_source(lookup, "environment variable").values
    }
}

impl ProxyVars {
    /// The process environment's proxy variables.
    pub fn from_env() -> ProxyVars {
        ProxyVars::from_source(|name| std::env::var(name).ok(), "environment variable")
    }

    /// The same variables from `$PINCH_HOME/.env`, as OpenClaw loads its
    /// `.env` into the environment.
    pub fn from_dotenv(vars: &std::collections::BTreeMap<String, String>) -> ProxyVars {
        ProxyVars::from_source(|name| vars.get(name).cloned(), DOTENV_LABEL)
    }

    /// `lookup` labelled `label`; lowercase names win, empty means unset.
    pub fn from_source(lookup: impl Fn(&str) -> Option<String>, label: &str) -> ProxyVars {
        let get = |lower: &str, upper: &str| {
            let nonempty = |name: &str| {
                lookup(name)
                    .filter(|s| !s.trim().is_empty())
                    .map(|v| (v, format!("{label} {name}")))
            };
            match nonempty(lower).or_else(|| nonempty(upper)) {
                Some((v, o)) => (Some(v), Some(o)),
                None => (None, None),
            }
        };
        let (http, http_o) = get("http_proxy", "HTTP_PROXY");
        let (https, https_o) = get("https_proxy", "HTTPS_PROXY");
        let (all, all_o) = get("all_proxy", "ALL_PROXY");
        let (no_proxy, no_o) = get("no_proxy", "NO_PROXY");
        ProxyVars::from_pairs([
            (http, http_o),
            (https, https_o),
            (all, all_o),
            (no_proxy, no_o),
        ])
    }

    /// Values and origins of `[http, https, all, no_proxy]`, in that order.
    fn from_pairs(pairs: [(Option<String>, Option<String>); 4]) -> ProxyVars {
        let [(http, http_o), (https, https_o), (all, all_o), (no_proxy, no_o)] = pairs;
        ProxyVars {
            values: EnvProxy {
                http,
                https,
                all,
                no_proxy,
            },
            origin: EnvOrigin {
                http: http_o,
                https: https_o,
                all: all_o,
                no_proxy: no_o,
            },
        }
    }

    /// Each variable from `self`, or else from `below` (the process
    /// environment over `.env`).
    pub fn over(self, below: &ProxyVars) -> ProxyVars {
        fn pick(
            a: (Option<String>, Option<String>),
            b: (&Option<String>, &Option<String>),
        ) -> (Option<String>, Option<String>) {
            match a {
                (Some(v), o) => (Some(v), o),
                (None, _) => (b.0.clone(), b.1.clone()),
            }
        }
        let (v, o) = (self.values, self.origin);
        let (bv, bo) = (&below.values, &below.origin);
        let (http, http_o) = pick((v.http, o.http), (&bv.http, &bo.http));
        let (https, https_o) = pick((v.https, o.https), (&bv.https, &bo.https));
        let (all, all_o) = pick((v.all, o.all), (&bv.all, &bo.all));
        let (no_proxy, no_o) = pick((v.no_proxy, o.no_proxy), (&bv.no_proxy, &bo.no_proxy));
        ProxyVars::from_pairs([
            (http, http_o),
            (https, https_o),
            (all, all_o),
            (no_proxy, no_o),
        ])
    }
}

impl fmt::Debug for EnvProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |v: &Option<String>| v.as_deref().map(redact_proxy_text);
        f.debug_struct("EnvProxy")
            .field("http", &r(&self.http))
            .field("https", &r(&self.https))
            .field("all", &r(&self.all))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// The merged network settings for one consumer (a provider, a channel...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub proxy: ProxySpec,
    pub no_proxy: NoProxy,
    pub ca_file: Option<PathBuf>,
    /// The layer that set `proxy`, or a note that nothing did.
    pub source: String,
    /// The environment snapshot used when `proxy` is [`ProxySpec::Env`].
    pub env: EnvProxy,
    /// Where each `env` value was found.
    pub env_origin: EnvOrigin,
    /// Where `no_proxy` came from: a config layer, an environment variable
    /// or `.env`; `None` when nothing set it.
    pub no_proxy_source: Option<String>,
}

/// Where a request to one URL goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Direct { why: String },
    Proxy { proxy: ProxyUrl, why: String },
}

impl Decision {
    /// The human-readable reason.
    pub fn why(&self) -> &str {
        match self {
            Decision::Direct { why } => why,
            Decision::Proxy { why, .. } => why,
        }
    }

    /// The proxy, when proxied.
    pub fn proxy(&self) -> Option<&ProxyUrl> {
        match self {
            Decision::Direct { .. } => None,
            Decision::Proxy { proxy, .. } => Some(proxy),
        }
    }
}

/// Scheme, host and port of a request URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestUrl {
    /// Lowercase: http, https, ws or wss.
    pub scheme: String,
    /// Lowercase host; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl RequestUrl {
    /// True for https and wss.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https" || self.scheme == "wss"
    }

    /// `host:port`, IPv6 in brackets.
    pub fn host_port(&self) -> String {
        format_host_port(&self.host, self.port)
    }

    /// The `Host` header value: the port only when it is not the scheme's
    /// default, IPv6 in brackets.
    pub fn host_header(&self) -> String {
        let default_port = if self.is_tls() { 443 } else { 80 };
        if self.port != default_port {
            self.host_port()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// Parses an http/https/ws/wss URL into scheme, host, port and path.
pub fn parse_request_url(url: &str) -> Result<RequestUrl, String> {
    let url = url.trim();
    let shown = redact_url(url);
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("'{shown}' is not a URL: expected something like https://host/path")
    })?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        other => {
            return Err(format!(
                "unsupported URL scheme '{other}': use http, https, ws or wss"
            ))
        }
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let mut path = rest[end..].to_string();
    if let Some(i) = path.find('#') {
        path.truncate(i);
    }
    if path.is_empty() || path.starts_with('?') {
        path.insert(0, '/');
    }
    let hostport = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let (host, port) = split_host_port(hostport).map_err(|e| format!("URL '{shown}': {e}"))?;
    if host.is_empty() {
        return Err(format!("URL '{shown}' has no host"));
    }
    Ok(RequestUrl {
        scheme,
        host: host.to_ascii_lowercase(),
        port: port.unwrap_or(default_port),
        path,
    })
}

/// Merges config layers, ordered from least to most specific (e.g.
/// `[("network", ..), ("models.providers.openai.network", ..)]`): for each
/// field the last layer that sets it wins. With no proxy set anywhere the
/// route follows the environment, as curl would. `NO_PROXY` from the
/// environment applies only when no layer sets `noProxy`.
pub fn resolve(layers: &[(&str, &NetworkConfig)], env: &EnvProxy) -> Result<Route, String> {
    resolve_with_origin(layers, env, &EnvOrigin::default())
}

/// [`resolve`] with the source of each environment value, for explanations.
pub fn resolve_vars(layers: &[(&str, &NetworkConfig)], vars: &ProxyVars) -> Result<Route, String> {
    resolve_with_origin(layers, &vars.values, &vars.origin)
}

fn resolve_with_origin(
    layers: &[(&str, &NetworkConfig)],
    env: &EnvProxy,
    origin: &EnvOrigin,
) -> Result<Route, String> {
    let mut proxy = ProxySpec::Env;
    let mut source =
        "default (no proxy configured: proxy variables from the environment, then $PINCH_HOME/.env, as curl)"
            .to_string();
    let mut no_proxy: Option<NoProxy> = None;
    let mut no_proxy_source: Option<String> = None;
    let mut ca_file: Option<PathBuf> = None;

    for (name, layer) in layers {
        if let Some(p) = &layer.proxy {
            proxy = ProxySpec::parse(p).map_err(|e| format!("{name}.proxy: {e}"))?;
            source = name.to_string();
        }
        if let Some(list) = &layer.no_proxy {
            no_proxy = Some(NoProxy::parse(list).map_err(|e| format!("{name}.noProxy: {e}"))?);
            no_proxy_source = Some(format!("{name}.noProxy"));
        }
        if let Some(ca) = &layer.ca_file {
            if ca.trim().is_empty() {
                return Err(format!(
                    "{name}.caFile is empty: give the path of a PEM file with CA certificates, or remove the key"
                ));
            }
            ca_file = Some(PathBuf::from(ca.trim()));
        }
    }

    let no_proxy = match no_proxy {
        Some(n) => n,
        None => match &env.no_proxy {
            Some(v) => {
                no_proxy_source = Some(
                    origin
                        .no_proxy
                        .clone()
                        .unwrap_or_else(|| "environment variable no_proxy".to_string()),
                );
                let (n, errors) = NoProxy::from_env_str_lenient(v);
                for e in errors {
                    log::warn!("ignoring part of the no_proxy environment variable: {e}");
                }
                n
            }
            None => NoProxy::default(),
        },
    };

    Ok(Route {
        proxy,
        no_proxy,
        ca_file,
        source,
        env: env.clone(),
        env_origin: origin.clone(),
        no_proxy_source,
    })
}

impl Route {
    /// Decides whether a request to `url` goes direct or through a proxy.
    pub fn decide(&self, url: &str) -> Result<Decision, String> {
        let target = parse_request_url(url)?;
        if self.proxy == ProxySpec::Direct {
            return Ok(Decision::Direct {
                why: format!("direct: proxy is \"direct\" (set at {})", self.source),
            });
        }
        if let Some(entry) = self.no_proxy.matches(&target.host, target.port) {
            return Ok(Decision::Direct {
                why: format!("direct: matched noProxy {entry}"),
            });
        }
        match &self.proxy {
            ProxySpec::Direct => Ok(Decision::Direct {
                why: "direct".to_string(),
            }),
            ProxySpec::Url(p) => Ok(Decision::Proxy {
                proxy: p.clone(),
                why: format!("via proxy {} (set at {})", p.host_port(), self.source),
            }),
            ProxySpec::Env => {
                let o = &self.env_origin;
                let (names, value, origin) = if target.is_tls() {
                    match (&self.env.https, &self.env.all) {
                        (Some(v), _) => ("https_proxy", Some(v), &o.https),
                        (None, Some(v)) => ("all_proxy", Some(v), &o.all),
                        (None, None) => ("https_proxy or all_proxy", None, &None),
                    }
                } else {
                    match (&self.env.http, &self.env.all) {
                        (Some(v), _) => ("http_proxy", Some(v), &o.http),
                        (None, Some(v)) => ("all_proxy", Some(v), &o.all),
                        (None, None) => ("http_proxy or all_proxy", None, &None),
                    }
                };
                let from = origin
                    .clone()
                    .unwrap_or_else(|| format!("environment variable {names}"));
                match value {
                    None => Ok(Decision::Direct {
                        why: format!(
                            "direct: no proxy configured and no {names} in the environment or {DOTENV_LABEL}"
                        ),
                    }),
                    Some(v) => {
                        let text = if v.contains("://") {
                            v.trim().to_string()
                        } else {
                            // curl treats a scheme-less proxy as http
                            format!("http://{}", v.trim())
                        };
                        let p = ProxyUrl::parse(&text).map_err(|e| format!("{from}: {e}"))?;
                        Ok(Decision::Proxy {
                            why: format!("via proxy {} (set at {from})", p.host_port()),
                            proxy: p,
                        })
                    }
                }
            }
        }
    }
}

/// Multi-line explanation of how `url` is reached, for
/// `pinch config explain-route`.
pub fn explain(route: &Route, url: &str) -> String {
    let mut out = String::new();
    match parse_request_url(url) {
        Ok(t) => out.push_str(&format!(
            "target:   {}\n",
            redact_url(&format!("{}://{}{}", t.scheme, t.host_port(), t.path))
        )),
        Err(e) => {
            out.push_str(&format!("target:   {}\nerror:    {e}\n", redact_url(url)));
            return out;
        }
    }
    let proxy_line = match &route.proxy {
        ProxySpec::Env => {
            let show = |v: &Option<String>, o: &Option<String>| match (v, o) {
                (Some(s), Some(o)) => format!("{} from {o}", redact_proxy_text(s)),
                (Some(s), None) => redact_proxy_text(s),
                (None, _) => "(unset)".to_string(),
            };
            let o = &route.env_origin;
            format!(
                "env (https_proxy={}, http_proxy={}, all_proxy={})",
                show(&route.env.https, &o.https),
                show(&route.env.http, &o.http),
                show(&route.env.all, &o.all)
            )
        }
        other => other.to_string(),
    };
    out.push_str(&format!("proxy:    {proxy_line}\n"));
    out.push_str(&format!("          set at {}\n", route.source));
    match &route.no_proxy_source {
        Some(src) => out.push_str(&format!("noProxy:  {} (from {src})\n", route.no_proxy)),
        None => out.push_str(&format!("noProxy:  {}\n", route.no_proxy)),
    }
    match &route.ca_file {
        Some(p) => out.push_str(&format!(
            "caFile:   {} (added to the built-in Mozilla roots)\n",
            p.display()
        )),
        None => out.push_str("caFile:   (none: built-in Mozilla roots only)\n"),
    }
    match route.decide(url) {
        Ok(d) => {
            out.push_str(&format!("decision: {}\n", d.why()));
            if let Decision::Proxy { proxy, .. } = &d {
                let how = match proxy.scheme {
                    ProxyScheme::Http => {
                        "tunnel with HTTP CONNECT; the proxy resolves the target name"
                    }
                    ProxyScheme::Https => {
                        "TLS to the proxy, then HTTP CONNECT; the proxy resolves the target name"
                    }
                    ProxyScheme::Socks5 => {
                        "SOCKS5; the target name is resolved here and the IP is sent to the proxy"
                    }
                    ProxyScheme::Socks5h => "SOCKS5; the proxy resolves the target name",
                };
                out.push_str(&format!("          {proxy}: {how}\n"));
            }
        }
        Err(e) => out.push_str(&format!("decision: error: {e}\n")),
    }
    out
}

/// Shows a proxy string with its credentials hidden; unparseable text is
/// hidden entirely (it could be a password typed in the wrong place).
pub fn redact_proxy_text(text: &str) -> String {
    let t = text.trim();
    let (prefix, rest) = match t.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), t),
    };
    // Everything before the last '@' is credentials, even if it holds '/'.
    match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            let shown_user = match userinfo.split_once(':') {
                Some((u, _)) if !u.contains('/') => format!("{u}:***"),
                _ => "***".to_string(),
            };
            format!("{prefix}{shown_user}@{after}")
        }
        None => t.to_string(),
    }
}

/// Shows a request URL without secrets: a password in the userinfo becomes
/// `***` and the query string (which may carry an API key) becomes `?…`.
pub fn redact_url(url: &str) -> String {
    let t = url.trim();
    let (prefix, rest) = match t.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), t),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((u, _)) => format!("{u}:***@{hostport}"),
            None => format!("{userinfo}@{hostport}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(i) => format!("{}?…", &tail[..i]),
        None => tail.to_string(),
    };
    format!("{prefix}{authority}{tail}")
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host[:port]` / `[v6][:port]`; the host comes back without brackets.
fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let parse_port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("'{p}' is not a port number (1-65535)")),
        }
    };
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| "IPv6 address without closing ']'".to_string())?;
        let host = &rest[..close];
        if host.parse::<IpAddr>().is_err() {
            return Err(format!("'{host}' inside [] is not an IPv6 address"));
        }
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Ok((host.to_string(), None));
        }
        match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), Some(parse_port(p)?))),
            None => Err(format!("unexpected '{after}' after the IPv6 address")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => {
                if h.contains(':') {
                    return Err("IPv6 addresses need brackets, like [fd00::1]:8080".to_string());
                }
                Ok((h.to_string(), Some(parse_port(p)?)))
            }
            None => {
                if text
                    .chars()
                    .any(|c| c.is_whitespace() || c == '/' || c == '\\')
                {
                    return Err(format!("'{text}' is not a host name"));
                }
                Ok((text.to_string(), None))
            }
        }
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    super::percent::decode_strict(text).map_err(|e| match e {
        super::percent::DecodeError::BadEscape => {
            "bad percent-encoding in the credentials: write a literal % as %25".to_string()
        }
        super::percent::DecodeError::NotUtf8 => {
            "the credentials are not valid UTF-8 once decoded".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-P4ss";

    fn cfg(proxy: Option<&str>, no_proxy: Option<&[&str]>, ca: Option<&str>) -> NetworkConfig {
        NetworkConfig {
            proxy: proxy.map(|s| s.to_string()),
            no_proxy: no_proxy.map(|l| l.iter().map(|s| s.to_string()).collect()),
            ca_file: ca.map(|s| s.to_string()),
        }
    }

    fn ok<T>(r: Result<T, String>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn proxy_url_parsing() {
        let p = ok(ProxyUrl::parse("http://10.0.0.1:7892"));
        assert_eq!(p.scheme, ProxyScheme::Http);
        assert_eq!(p.host, "10.0.0.1");
        assert_eq!(p.port, 7892);
        assert_eq!(p.user, None);
        let p = ok(ProxyUrl::parse("SOCKS5H://u%40x:p%3Aw@[fd00::1]:1081/"));
        assert_eq!(p.scheme, ProxyScheme::Socks5h);
        assert_eq!(p.host, "fd00::1");
        assert_eq!(p.port, 1081);
        assert_eq!(p.user.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_deref(), Some("p:w"));
        assert_eq!(p.host_port(), "[fd00::1]:1081");
        assert_eq!(ok(ProxyUrl::parse("https://proxy.lan")).port, 443);
        assert_eq!(ok(ProxyUrl::parse("http://proxy.lan")).port, 1080);
        assert_eq!(ok(ProxyUrl::parse("socks5://proxy.lan")).port, 1080);
    }

    #[test]
    fn proxy_url_errors_say_what_to_do_and_hide_secrets() {
        for bad in [
            format!("ftp://u:{SECRET}@h:1"),
            format!("socks4://u:{SECRET}@h:1"),
            format!("u:{SECRET}@h:1"),
            format!("http://u:{SECRET}@h:notaport"),
            format!("http://u:{SECRET}@h:1/path"),
            format!("http://u:{SECRET}@:8080"),
            format!("http://u:{SECRET}%zz@h:1"),
        ] {
            match ProxyUrl::parse(&bad) {
                Ok(p) => panic!("accepted {p}"),
                Err(e) => {
                    assert!(!e.contains(SECRET), "secret leaked: {e}");
                    assert!(e.contains("proxy"), "{e}");
                }
            }
        }
        match ProxySpec::parse("ftp://h") {
            Err(e) => assert!(e.contains("socks5h://"), "{e}"),
            Ok(_) => panic!("ftp accepted"),
        }
    }

    #[test]
    fn proxy_spec_keywords() {
        assert_eq!(ok(ProxySpec::parse("direct")), ProxySpec::Direct);
        assert_eq!(ok(ProxySpec::parse(" ENV ")), ProxySpec::Env);
        assert!(matches!(
            ok(ProxySpec::parse("socks5://h:1")),
            ProxySpec::Url(_)
        ));
    }

    #[test]
    fn target_parsing() {
        let t = ok(parse_request_url(
            "https://API.example.com/v1/chat?x=1#frag",
        ));
        assert_eq!(t.scheme, "https");
        assert_eq!(t.host, "api.example.com");
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/v1/chat?x=1");
        let t = ok(parse_request_url("ws://[::1]:8080"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(ok(parse_request_url("wss://h")).port, 443);
        assert_eq!(ok(parse_request_url("http://h?q")).path, "/?q");
        assert_eq!(ok(parse_request_url("http://user:pw@h:81/")).host, "h");
        assert!(parse_request_url("ftp://h").is_err());
        assert!(parse_request_url("h:80").is_err());
        assert!(parse_request_url("http://:80/").is_err());
        assert!(parse_request_url("http://[::1/").is_err());
    }

    #[test]
    fn layer_precedence_per_field() {
        let global = cfg(
            Some("http://10.0.0.1:3128"),
            Some(&["localhost"]),
            Some("/etc/ca.pem"),
        );
        let provider = cfg(Some("http://10.0.0.1:7892"), None, None);
        let r = ok(resolve(
            &[
                ("network", &global),
                ("models.providers.a.network", &provider),
            ],
            &EnvProxy::default(),
        ));
        assert_eq!(r.source, "models.providers.a.network");
        assert_eq!(r.no_proxy.entries(), vec!["localhost"]);
        assert_eq!(r.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let d = ok(r.decide("https://api.a.example/v1"));
        assert_eq!(
            d.why(),
            "via proxy 10.0.0.1:7892 (set at models.providers.a.network)"
        );
        assert!(matches!(d, Decision::Proxy { ref proxy, .. } if proxy.port == 7892));

        // the provider layer overrides only noProxy; proxy comes from global
        let provider_b = cfg(None, Some(&["api.b.example"]), None);
        let r = ok(resolve(
            &[
                ("network", &global),
                ("models.providers.b.network", &provider_b),
            ],
            &EnvProxy::default(),
        ));
        assert_eq!(r.source, "network");
        assert_eq!(
            ok(r.decide("https://api.b.example/")).why(),
            "direct: matched noProxy api.b.example"
        );
        assert_eq!(
            ok(r.decide("https://localhost/")).why(),
            "via proxy 10.0.0.1:3128 (set at network)"
        );
    }

    #[test]
    fn direct_beats_everything() {
        let env = EnvProxy {
            https: Some("http://10.9.9.9:1".into()),
            ..EnvProxy::default()
        };
        let global = cfg(Some("http://10.0.0.1:3128"), None, None);
        let provider = cfg(Some("direct"), None, None);
        let r = ok(resolve(&[("network", &global), ("p", &provider)], &env));
        let d = ok(r.decide("https://x.example/"));
        assert_eq!(
            d,
            Decision::Direct {
                why: "direct: proxy is \"direct\" (set at p)".into()
            }
        );
    }

    #[test]
    fn no_proxy_config_anywhere_means_env() {
        let env = EnvProxy {
            http: Some("10.0.0.2:8080".into()),
            https: Some("http://10.0.0.3:8443".into()),
            all: None,
            no_proxy: Some("internal.example, 10.0.0.0/8".into()),
        };
        let r = ok(resolve(&[("network", &NetworkConfig::default())], &env));
        assert_eq!(r.proxy, ProxySpec::Env);
        let https = ok(r.decide("https://api.example.com/"));
        assert_eq!(https.proxy().map(|p| p.port), Some(8443));
        assert_eq!(
            https.why(),
            "via proxy 10.0.0.3:8443 (set at environment variable https_proxy)"
        );
        let wss = ok(r.decide("wss://api.example.com/"));
        assert_eq!(wss.proxy().map(|p| p.port), Some(8443));
        let http = ok(r.decide("http://api.example.com/"));
        // scheme-less env value is taken as http://, like curl
        assert_eq!(
            http.proxy().map(|p| (p.scheme, p.port)),
            Some((ProxyScheme::Http, 8080))
        );
        assert_eq!(
            ok(r.decide("ws://api.example.com/"))
                .proxy()
                .map(|p| p.port),
            Some(8080)
        );
        assert_eq!(
            ok(r.decide("https://svc.internal.example/")).why(),
            "direct: matched noProxy internal.example"
        );
        assert!(matches!(
            ok(r.decide("http://10.1.1.1/")),
            Decision::Direct { .. }
        ));
    }

    #[test]
    fn env_all_proxy_fallback_and_nothing_set() {
        let env = EnvProxy {
            all: Some("socks5h://10.0.0.4:1080".into()),
            ..EnvProxy::default()
        };
        let r = ok(resolve(&[], &env));
        let d = ok(r.decide("https://a.example/"));
        assert_eq!(d.proxy().map(|p| p.scheme), Some(ProxyScheme::Socks5h));
        assert!(d.why().contains("all_proxy"));

        let r = ok(resolve(&[], &EnvProxy::default()));
        let d = ok(r.decide("https://a.example/"));
        assert!(matches!(d, Decision::Direct { .. }));
        assert!(d.why().contains("https_proxy"), "{}", d.why());
    }

    #[test]
    fn explicit_env_keyword_and_config_no_proxy_overrides_env() {
        let env = EnvProxy {
            https: Some("http://10.0.0.3:8443".into()),
            no_proxy: Some("a.example".into()),
            ..EnvProxy::default()
        };
        let global = cfg(Some("http://10.0.0.1:1"), None, None);
        let provider = cfg(Some("env"), Some(&["b.example"]), None);
        let r = ok(resolve(&[("network", &global), ("p", &provider)], &env));
        assert_eq!(r.proxy, ProxySpec::Env);
        assert_eq!(r.source, "p");
        assert!(matches!(
            ok(r.decide("https://a.example/")),
            Decision::Proxy { .. }
        ));
        assert!(matches!(
            ok(r.decide("https://b.example/")),
            Decision::Direct { .. }
        ));
    }

    #[test]
    fn env_lookup_lowercase_wins() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:1"),
            ("HTTPS_PROXY", "http://upper-s:1"),
            ("all_proxy", ""),
            ("ALL_PROXY", "socks5://all:1"),
            ("NO_PROXY", "x.example"),
        ];
        let env = EnvProxy::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(env.http.as_deref(), Some("http://lower:1"));
        assert_eq!(env.https.as_deref(), Some("http://upper-s:1"));
        assert_eq!(env.all.as_deref(), Some("socks5://all:1"));
        assert_eq!(env.no_proxy.as_deref(), Some("x.example"));
    }

    #[test]
    fn dotenv_sits_below_the_environment() {
        let dotenv: std::collections::BTreeMap<String, String> = [
            ("HTTPS_PROXY", "http://10.0.0.9:3128"),
            ("https_proxy", "http://10.0.0.8:3128"),
            ("HTTP_PROXY", "http://10.0.0.7:3128"),
            ("NO_PROXY", "direct.example"),
            ("ALL_PROXY", "socks5h://10.0.0.6:1080"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let below = ProxyVars::from_dotenv(&dotenv);
        // lowercase wins within .env
        assert_eq!(below.values.https.as_deref(), Some("http://10.0.0.8:3128"));
        assert_eq!(
            below.origin.https.as_deref(),
            Some("$PINCH_HOME/.env https_proxy")
        );
        // a real environment variable (even uppercase) wins over .env
        let env = ProxyVars::from_source(
            |n| (n == "HTTP_PROXY").then(|| "http://10.1.1.1:1".into()),
            "environment variable",
        )
        .over(&below);
        assert_eq!(env.values.http.as_deref(), Some("http://10.1.1.1:1"));
        assert_eq!(
            env.origin.http.as_deref(),
            Some("environment variable HTTP_PROXY")
        );
        assert_eq!(env.values.https.as_deref(), Some("http://10.0.0.8:3128"));
        let r = ok(resolve_vars(&[], &env));
        let d = ok(r.decide("https://api.example.com/"));
        assert_eq!(
            d.why(),
            "via proxy 10.0.0.8:3128 (set at $PINCH_HOME/.env https_proxy)"
        );
        assert!(matches!(
            ok(r.decide("https://direct.example/")),
            Decision::Direct { .. }
        ));
        let text = explain(&r, "https://api.example.com/");
        assert!(
            text.contains("https_proxy=http://10.0.0.8:3128 from $PINCH_HOME/.env https_proxy"),
            "{text}"
        );
        assert!(
            text.contains("http_proxy=http://10.1.1.1:1 from environment variable HTTP_PROXY"),
            "{text}"
        );
        assert!(
            text.contains("noProxy:  direct.example (from $PINCH_HOME/.env NO_PROXY)"),
            "{text}"
        );
        // nothing anywhere: the environment is empty and so is .env
        let none = ProxyVars::default().over(&ProxyVars::from_dotenv(&Default::default()));
        assert_eq!(none, ProxyVars::default());
    }

    #[test]
    fn bad_layers_name_the_layer() {
        let bad = cfg(Some("ftp://x"), None, None);
        match resolve(
            &[("models.providers.z.network", &bad)],
            &EnvProxy::default(),
        ) {
            Err(e) => assert!(e.starts_with("models.providers.z.network.proxy:"), "{e}"),
            Ok(_) => panic!("accepted"),
        }
        let bad = cfg(None, Some(&["exa mple"]), None);
        match resolve(&[("network", &bad)], &EnvProxy::default()) {
            Err(e) => assert!(e.starts_with("network.noProxy:"), "{e}"),
            Ok(_) => panic!("accepted"),
        }
        let bad = cfg(None, None, Some(" "));
        assert!(resolve(&[("network", &bad)], &EnvProxy::default()).is_err());
        // garbage in the environment only warns
        let env = EnvProxy {
            no_proxy: Some("ok.example, bad entry".into()),
            ..EnvProxy::default()
        };
        let r = ok(resolve(&[], &env));
        assert_eq!(r.no_proxy.entries(), vec!["ok.example"]);
    }

    #[test]
    fn credentials_never_shown() {
        let url = format!("http://alice:{SECRET}@10.0.0.1:7892");
        let p = ok(ProxyUrl::parse(&url));
        assert_eq!(p.to_string(), "http://alice:***@10.0.0.1:7892");
        assert_eq!(format!("{p:?}"), "ProxyUrl(http://alice:***@10.0.0.1:7892)");
        let token_only = ok(ProxyUrl::parse(&format!("socks5://{SECRET}@h:1")));
        assert_eq!(token_only.to_string(), "socks5://***@h:1");
        assert!(!format!("{token_only:?}").contains(SECRET));

        let global = cfg(Some(&url), None, None);
        assert!(!format!("{global:?}").contains(SECRET));
        let env = EnvProxy {
            http: Some(url.clone()),
            https: Some(format!("alice:{SECRET}@10.0.0.1:1")),
            all: Some(url.clone()),
            no_proxy: None,
        };
        assert!(!format!("{env:?}").contains(SECRET));

        let r = ok(resolve(&[("network", &global)], &env));
        let d = ok(r.decide("https://api.example.com/"));
        for text in [
            format!("{r:?}"),
            format!("{d:?}"),
            d.why().to_string(),
            r.proxy.to_string(),
            explain(&r, "https://api.example.com/"),
        ] {
            assert!(!text.contains(SECRET), "secret leaked in: {text}");
        }
        let env_route = ok(resolve(&[], &env));
        for text in [
            format!("{env_route:?}"),
            explain(&env_route, "https://api.example.com/"),
            explain(&env_route, "http://api.example.com/"),
        ] {
            assert!(!text.contains(SECRET), "secret leaked in: {text}");
            assert!(text.contains("alice:***@"), "{text}");
        }
        assert_eq!(
            redact_proxy_text(&format!("http://bob:{SECRET}@h:1/")),
            "http://bob:***@h:1/"
        );
        assert_eq!(
            redact_proxy_text(&format!("http://bob:a/{SECRET}@h:1")),
            "http://bob:***@h:1"
        );
        let slashy = ok(ProxyUrl::parse(&format!("http://bob:a/{SECRET}@h:1")));
        assert_eq!(slashy.password, Some(format!("a/{SECRET}")));
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact_url("https://u:pw@api.example.com:8443/v1/x?key=SECRET#f"),
            "https://u:***@api.example.com:8443/v1/x?…"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("wss://h?token=SECRET"), "wss://h?…");
        match parse_request_url("https://h:bad/?key=SECRET") {
            Err(e) => assert!(!e.contains("SECRET"), "{e}"),
            Ok(_) => panic!("accepted"),
        }
        let r = ok(resolve(&[], &EnvProxy::default()));
        let text = explain(&r, "https://h/v1?key=SECRET");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("target:   https://h:443/v1?…"), "{text}");
    }

    #[test]
    fn explain_is_readable() {
        let global = cfg(
            Some("socks5h://u:pw@10.0.0.1:1080"),
            Some(&["localhost", "10.0.0.0/8"]),
            Some("/etc/pinch/ca.pem"),
        );
        let r = ok(resolve(&[("network", &global)], &EnvProxy::default()));
        let text = explain(&r, "https://api.openai.com/v1");
        assert!(
            text.contains("target:   https://api.openai.com:443/v1"),
            "{text}"
        );
        assert!(
            text.contains("proxy:    socks5h://u:***@10.0.0.1:1080"),
            "{text}"
        );
        assert!(text.contains("noProxy:  localhost, 10.0.0.0/8"), "{text}");
        assert!(text.contains("/etc/pinch/ca.pem"), "{text}");
        assert!(
            text.contains("decision: via proxy 10.0.0.1:1080 (set at network)"),
            "{text}"
        );
        assert!(
            text.contains("the proxy resolves the target name"),
            "{text}"
        );
        let direct = explain(&r, "http://localhost:8080/");
        assert!(
            direct.contains("decision: direct: matched noProxy localhost"),
            "{direct}"
        );
        let bad = explain(&r, "gopher://x");
        assert!(bad.contains("error:"), "{bad}");
    }

    #[test]
    fn network_config_serde() {
        let c: NetworkConfig = ok(serde_json::from_str(
            r#"{"proxy":"direct","noProxy":["a"],"caFile":"/x.pem"}"#,
        )
        .map_err(|e| e.to_string()));
        assert_eq!(c.proxy.as_deref(), Some("direct"));
        assert_eq!(c.no_proxy, Some(vec!["a".to_string()]));
        assert_eq!(c.ca_file.as_deref(), Some("/x.pem"));
        let err = serde_json::from_str::<NetworkConfig>(r#"{"no_proxy":["a"]}"#);
        assert!(err.is_err());
        let empty: NetworkConfig = ok(serde_json::from_str("{}").map_err(|e| e.to_string()));
        assert_eq!(empty, NetworkConfig::default());
    }
}
