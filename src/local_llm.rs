//! Health of a local llama.cpp server (a provider on loopback, or marked
//! with `cachePrompt: true`): `GET /health` and `GET /props`, for
//! `pinch doctor` and `pinch status`. Plain HTTP to the provider's own host,
//! no proxy, a short timeout, a capped body.

use std::time::Duration;

/// What a llama-server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInfo {
    /// `/health` answered 200.
    pub healthy: bool,
    /// The loaded model's file name (from `/props` `model_path`).
    pub model: Option<String>,
    /// Context size per slot (`/props` `default_generation_settings.n_ctx`).
    pub n_ctx: Option<u64>,
    /// Server slots (`/props` `total_slots`).
    pub slots: Option<u64>,
}

/// The server root of an OpenAI-style base URL (`…/v1` dropped).
pub fn root_of(base_url: &str) -> String {
    let b = base_url.trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_string()
}

/// Reads `/props` JSON (pure).
pub fn parse_props(body: &str) -> (Option<String>, Option<u64>, Option<u64>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return (None, None, None);
    };
    let model = v["model_path"].as_str().map(|p| {
        let name = p.rsplit('/').next().unwrap_or(p);
        crate::util::truncate(name, 120).to_string()
    });
    let n_ctx = v["default_generation_settings"]["n_ctx"]
        .as_u64()
        .or_else(|| v["n_ctx"].as_u64());
    (model, n_ctx, v["total_slots"].as_u64())
}

/// Asks the server at `base_url`; Err says why it could not be reached.
pub fn probe(base_url: &str, timeout: Duration) -> Result<LocalInfo, String> {
    let root = root_of(base_url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str| -> Result<(u16, String), String> {
        let mut resp = agent
            .get(&format!("{root}{path}"))
            .call()
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, body))
    };
    let (status, _) = get("/health")?;
    let (model, n_ctx, slots) = match get("/props") {
        Ok((200, body)) => parse_props(&body),
        _ => (None, None, None),
    };
    Ok(LocalInfo {
        healthy: status == 200,
        model,
        n_ctx,
        slots,
    })
}

/// One line for doctor and status.
pub fn describe(info: &LocalInfo) -> String {
    format!(
        "{}; model {}; context {}; slots {}",
        if info.healthy {
            "healthy"
        } else {
            "not ready (/health is not 200: loading?)"
        },
        info.model.as_deref().unwrap_or("unknown"),
        info.n_ctx.map_or("unknown".to_string(), |n| n.to_string()),
        info.slots.map_or("unknown".to_string(), |n| n.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_and_roots() {
        assert_eq!(
            root_of("http://127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080"
        );
        let (m, c, s) = parse_props(
            r#"{"model_path":"/models/qwen2.5-1.5b-q4.gguf","total_slots":2,"default_generation_settings":{"n_ctx":4096}}"#,
        );
        assert_eq!(m.as_deref(), Some("qwen2.5-1.5b-q4.gguf"));
        assert_eq!((c, s), (Some(4096), Some(2)));
        assert_eq!(parse_props("not json"), (None, None, None));
    }
}
