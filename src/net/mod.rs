//! Network routing for outbound HTTP(S)/WebSocket traffic: per-layer proxy
//! settings, curl-compatible `NO_PROXY` matching, extra CA certificates,
//! ureq agents that follow the route, and the doctor's step-by-step probe.
//!
//! `noproxy` and `route` are pure (no sockets, no clock); `client`, `tls`
//! and `probe` are the thin I/O shell around them. `eyeballs` races a host's
//! addresses (Happy Eyeballs) for every direct connection and connection to a
//! proxy, through `ureq_connector` for ureq and directly for `websocket`.

pub mod client;
pub mod eyeballs;
pub mod noproxy;
pub mod percent;
pub mod probe;
pub mod route;
pub mod tls;
pub mod ureq_connector;
pub mod websocket;

pub use client::{agent_config, agent_for, header_text, ureq_proxy, LazyAgent, Timeouts};
pub use noproxy::NoProxy;
pub use probe::{probe, Failure, ProbeReport, Step, StepResult};
pub use route::{
    explain, parse_request_url, redact_proxy_text, redact_url, resolve, resolve_vars, Decision,
    EnvOrigin, EnvProxy, NetworkConfig, ProxyScheme, ProxySpec, ProxyUrl, ProxyVars, RequestUrl,
    Route,
};
pub use ureq_connector::new_agent;
