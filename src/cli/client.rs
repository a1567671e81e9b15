//! The HTTP client of a running gateway: where it is (`--url`, else the
//! runtime file of this `$PINCH_HOME`'s gateway, else the config) and one
//! JSON request at a time (`/api/call`, GET, DELETE).

use super::{load, Global};
use crate::config;
use crate::home::Home;
use serde_json::{json, Value};
use std::time::Duration;

/// Where the CLI finds the gateway: --url, else the runtime file of this
/// home's gateway (`crate::runtime_file`), else the config.
pub(super) struct GatewayEndpoint {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) token: Option<String>,
    pub(super) source: Source,
}

/// Where a `GatewayEndpoint` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// `--url`: the user's choice, whatever home it serves.
    Url,
    /// The runtime file of this home's gateway: alive and answering.
    RuntimeFile,
    /// The config's address: no gateway of this home announced itself.
    Config,
}

/// How long the CLI waits for a gateway's port to answer.
const ANSWER_WAIT: Duration = Duration::from_millis(500);

pub(super) fn gateway_endpoint(
    url: Option<String>,
    token: Option<String>,
    g: &Global,
    home: &Home,
) -> Result<GatewayEndpoint, String> {
    let loaded = load(g, home).ok();
    let token = token
        .or_else(|| {
            std::env::var("PINCH_GATEWAY_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            loaded
                .as_ref()
                .and_then(|l| l.cfg.gateway.auth.token.clone())
        });
    if let Some(u) = url {
        let rest = u
            .strip_prefix("ws://")
            .or_else(|| u.strip_prefix("http://"))
            .ok_or("--url must start with http:// or ws://")?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or("--url needs a port, like http://127.0.0.1:18789")?;
        return Ok(GatewayEndpoint {
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.parse().map_err(|_| "bad port in --url")?,
            token,
            source: Source::Url,
        });
    }
    match crate::runtime_file::lookup(home, ANSWER_WAIT) {
        crate::runtime_file::Lookup::Running(record) => {
            return Ok(GatewayEndpoint {
                host: record.address.ip().to_string(),
                port: record.address.port(),
                token,
                source: Source::RuntimeFile,
            })
        }
        crate::runtime_file::Lookup::Stale { why } => eprintln!("pinch: {why}"),
        crate::runtime_file::Lookup::Absent => {}
    }
    let cfg = loaded.map(|l| l.cfg).unwrap_or_default();
    let host = match config::parse_bind(&cfg.gateway.bind) {
        Some(ip) if !ip.is_unspecified() => ip.to_string(),
        _ => "127.0.0.1".to_string(),
    };
    Ok(GatewayEndpoint {
        host,
        port: cfg.gateway.port,
        token,
        source: Source::Config,
    })
}

impl GatewayEndpoint {
    /// Whether the gateway this target names serves this home and runs:
    /// found through the runtime file, or named by `--url` and answering.
    /// A gateway that merely answers on the config's port may be another
    /// home's, so commands that can work offline do so instead.
    pub(super) fn serves_this_home(&self) -> bool {
        match self.source {
            Source::RuntimeFile => true,
            Source::Config => false,
            Source::Url => {
                let addr = format!("{}:{}", self.host, self.port)
                    .parse()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], self.port)));
                std::net::TcpStream::connect_timeout(&addr, ANSWER_WAIT).is_ok()
            }
        }
    }
    pub(super) fn http(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
    pub(super) fn unreachable(&self, e: impl std::fmt::Display) -> String {
        format!("cannot reach the gateway at {}: {e}\n  is it running? start it with `pinch gateway run` (or `systemctl start pinch`)", self.http())
    }
    /// One JSON request to the gateway: (status, body). A missing token
    /// and an unreachable gateway become messages that say what to do.
    pub(crate) fn http_json(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let agent = crate::net::new_agent(
            ureq::Agent::config_builder()
                .proxy(None)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(15)))
                .build(),
        );
        let url = format!("{}{path}", self.http());
        let mut rq = match method {
            "POST" => agent.post(&url).header("Content-Type", "application/json"),
            "DELETE" => agent.delete(&url).force_send_body(),
            _ => agent.get(&url).force_send_body(),
        };
        if let Some(t) = &self.token {
            rq = rq.header("Authorization", &format!("Bearer {t}"));
        }
        let sent = match body {
            Some(b) => rq.send(b.to_string()),
            None => rq.send_empty(),
        };
        let resp = sent.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if status == 401 {
            return Err("the gateway wants a token: pass --token, set PINCH_GATEWAY_TOKEN, or gateway.auth.token in the config".into());
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(json!({"error": text}));
        Ok((status, v))
    }

    /// Calls a reactor method through `POST /api/call`.
    pub(super) fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        match self.http_json(
            "POST",
            "/api/call",
            Some(json!({"method": method, "params": params})),
        )? {
            (200, v) => Ok(v),
            (_, v) => Err(v["error"]
                .as_str()
                .unwrap_or("the gateway refused the call")
                .to_string()),
        }
    }

    pub(super) fn get(&self, path: &str) -> Result<Value, String> {
        self.request("GET", path)
    }

    pub(super) fn request(&self, method: &str, path: &str) -> Result<Value, String> {
        match self.http_json(method, path, None)? {
            (200, v) => Ok(v),
            (status, v) => Err(format!(
                "HTTP {status}: {}",
                v["error"].as_str().unwrap_or("?")
            )),
        }
    }
}

pub(super) fn encode(s: &str) -> String {
    crate::net::percent::encode(s)
}
