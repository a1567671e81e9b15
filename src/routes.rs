//! Which network route each owner's traffic takes (a provider, a channel,
//! `web_fetch`, `web_search`): the config's `network` blocks layered over
//! OpenClaw's spellings, resolved by the pure route code in `net`.

use crate::net::{NetworkConfig, ProxyVars, Route};

/// Whose traffic a route is for.
pub enum Owner<'a> {
    Provider(&'a str),
    Channel(&'a str),
    WebFetch,
    WebSearch,
}

/// The route for a provider, channel, `web_fetch` or `web_search`: the top-level
/// `network` block (over OpenClaw's `proxy.proxyUrl`) overridden field by
/// field by the owner's own block (over OpenClaw's `channels.<name>.proxy`);
/// with none, the proxy variables apply as curl would, from the process
/// environment and then from `$PINCH_HOME/.env`.
pub fn route_for(cfg: &crate::config::Config, owner: Owner) -> Result<Route, String> {
    // OpenClaw's spellings of the same settings, below pinch's own.
    let openclaw_default = cfg.proxy.as_ref().and_then(|p| {
        if p.enabled == Some(false) {
            return None;
        }
        let ca_file = p.tls.as_ref().and_then(|t| t.ca_file.clone());
        (p.proxy_url.is_some() || ca_file.is_some()).then(|| NetworkConfig {
            proxy: p.proxy_url.clone(),
            no_proxy: None,
            ca_file,
        })
    });
    let openclaw_channel = match owner {
        Owner::Channel(name) => cfg
            .channels
            .get(name)
            .and_then(|c| c.proxy.clone())
            .map(|proxy| NetworkConfig {
                proxy: Some(proxy),
                no_proxy: None,
                ca_file: None,
            }),
        _ => None,
    };
    let mut layers: Vec<(String, &NetworkConfig)> = Vec::new();
    if let Some(n) = &openclaw_default {
        layers.push(("proxy.proxyUrl".to_string(), n));
    }
    if let Some(n) = &cfg.network {
        layers.push(("network".to_string(), n));
    }
    if let (Some(n), Owner::Channel(name)) = (&openclaw_channel, &owner) {
        layers.push((format!("channels.{name}.proxy"), n));
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
    crate::net::resolve_vars(&refs, &ProxyVars::from_env().over(&cfg.dotenv_proxy))
}
