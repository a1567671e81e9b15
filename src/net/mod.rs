//! Network routing for outbound HTTP(S)/WebSocket traffic: per-layer proxy
//! settings, curl-compatible `NO_PROXY` matching, extra CA certificates,
//! ureq agents that follow the route, and the doctor's step-by-step probe.
//!
//! `noproxy` and `route` are pure (no sockets, no clock); `client`, `tls`
//! and `probe` are the thin I/O shell around them.

pub mod client;
pub mod noproxy;
pub mod percent;
pub mod probe;
pub mod route;
pub mod tls;

pub use client::{agent_for, ureq_proxy, LazyAgent, Timeouts};
pub use noproxy::NoProxy;
pub use probe::{probe, Failure, ProbeReport, Step, StepResult};
pub use route::{
    explain, parse_target, redact_proxy_text, redact_url, resolve, Decision, EnvProxy,
    NetworkConfig, ProxyScheme, ProxySpec, ProxyUrl, Route, Target,
};

/// Whose traffic a route is for.
pub enum Owner<'a> {
    Provider(&'a str),
    Channel(&'a str),
    WebFetch,
    WebSearch,
}

/// The route for a provider, channel, `web_fetch` or `web_search`: the top-level
/// `network` block overridden field by field by the owner's own block; with
/// neither, the environment's proxy variables apply as curl would.
pub fn route_for(cfg: &crate::config::Config, owner: Owner) -> Result<Route, String> {
    let mut layers: Vec<(String, &NetworkConfig)> = Vec::new();
    if let Some(n) = &cfg.network {
        layers.push(("network".to_string(), n));
    }
    let own = match owner {
        Owner::Provider(id) => cfg
            .models
            .providers
            .get(id)
            .and_then(|p| p.network.as_ref())
            .map(|n| (format!("models.providers.{id}.network"), n)),
        Owner::Channel(name) => cfg
            .channels
            .get(name)
            .and_then(|c| c.network.as_ref())
            .map(|n| (format!("channels.{name}.network"), n)),
        Owner::WebFetch => cfg
            .tools
            .web_fetch
            .network
            .as_ref()
            .map(|n| ("tools.webFetch.network".to_string(), n)),
        Owner::WebSearch => cfg
            .tools
            .web_search
            .network
            .as_ref()
            .map(|n| ("tools.webSearch.network".to_string(), n)),
    };
    layers.extend(own);
    let refs: Vec<(&str, &NetworkConfig)> = layers.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    resolve(&refs, &EnvProxy::from_env())
}
