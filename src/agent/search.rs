//! The `web_search` tool: one query to a configured search backend, the
//! results as one line each (`- Title — url — snippet`), deduplicated by URL
//! and capped.
//!
//! Backends (`tools.webSearch.backend`):
//! - `tavily`: `POST {baseUrl}/search` with JSON `{query, max_results}` and
//!   `Authorization: Bearer <apiKey>`; also any Tavily-compatible service.
//! - `searxng`: `GET {baseUrl}/search?q=...&format=json` (the instance must
//!   list `json` in `search.formats`).
//!
//! Both answer `{"results": [{"title", "url", "content"}]}`. Building the
//! request and reading the answer are pure functions; [`Searcher`] is the
//! thin I/O shell that follows the `tools.webSearch.network` route.

use crate::config::WebSearchTool;
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};

pub const TAVILY_DEFAULT_URL: &str = "https://api.tavily.com";
/// Largest answer read from the backend.
const MAX_BODY: usize = 512 * 1024;
/// Characters of a result's snippet kept.
const SNIPPET_CHARS: usize = 200;
const TITLE_CHARS: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// An HTTP request described as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

/// The base URL in use: the configured one without a trailing slash, or
/// the backend's default.
pub fn base_url(w: &WebSearchTool) -> String {
    let b = w.base_url.trim().trim_end_matches('/');
    if b.is_empty() && w.backend == "tavily" {
        TAVILY_DEFAULT_URL.to_string()
    } else {
        b.to_string()
    }
}

pub fn build_request(w: &WebSearchTool, query: &str, max: usize) -> Result<Request, String> {
    let query = query.trim();
    if query.is_empty() {
        return Err("missing \"query\": say what to search for".into());
    }
    let base = base_url(w);
    if base.is_empty() {
        return Err("tools.webSearch.baseUrl is not set".into());
    }
    let mut headers = vec![("Accept", "application/json".to_string())];
    match w.backend.as_str() {
        "tavily" => {
            headers.push(("Content-Type", "application/json".to_string()));
            if let Some(k) = w.api_key.as_deref().filter(|k| !k.is_empty()) {
                headers.push(("Authorization", format!("Bearer {k}")));
            }
            let body = json!({
                "query": query,
                "max_results": max,
                "search_depth": "basic",
                "include_answer": false,
            });
            Ok(Request {
                method: "POST",
                url: format!("{base}/search"),
                headers,
                body: Some(body.to_string()),
            })
        }
        "searxng" => Ok(Request {
            method: "GET",
            url: format!(
                "{base}/search?q={}&format=json",
                crate::net::percent::encode(query)
            ),
            headers,
            body: None,
        }),
        other => Err(format!(
            "unknown tools.webSearch.backend {other:?}; use tavily or searxng"
        )),
    }
}

/// Reads `{"results": [{"title", "url", "content"}]}`; results without a
/// URL are skipped.
pub fn parse_response(body: &str) -> Result<Vec<Hit>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "the search backend did not answer JSON ({e}); check tools.webSearch.baseUrl and backend"
        )
    })?;
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or("the search answer has no \"results\" list; is tools.webSearch.backend right?")?;
    let text = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default()
    };
    Ok(results
        .iter()
        .filter_map(|r| {
            let url = text(r, "url");
            if url.is_empty() {
                return None;
            }
            Some(Hit {
                title: text(r, "title"),
                url,
                snippet: text(r, "content"),
            })
        })
        .collect())
}

/// The error message of a failed answer: Tavily's `{"detail": {"error"}}`,
/// a plain `error`/`message`/`detail` string, or the start of the body.
pub fn error_message(status: u16, body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let from_json = v.as_ref().and_then(|v| {
        [
            v.pointer("/detail/error"),
            v.get("detail"),
            v.get("error"),
            v.get("message"),
        ]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(str::to_string)
    });
    let msg = from_json.unwrap_or_else(|| one_line(crate::util::truncate(body, 200)));
    let hint = match status {
        401 | 403 => {
            " (check tools.webSearch.apiKey; a SearXNG instance answers 403 when `json` is missing from search.formats in its settings.yml)"
        }
        404 => " (check tools.webSearch.baseUrl: the tool appends /search)",
        429 => " (rate limited: try again later)",
        _ => "",
    };
    format!("HTTP {status}: {msg}{hint}")
}

/// One line per result, deduplicated by URL, at most `max`.
pub fn format_hits(query: &str, hits: &[Hit], max: usize) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for h in hits {
        if lines.len() >= max {
            break;
        }
        let key = h.url.trim_end_matches('/');
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let title = if h.title.is_empty() {
            "(untitled)"
        } else {
            crate::util::truncate(&h.title, TITLE_CHARS)
        };
        let mut line = format!("- {title} — {}", h.url);
        if !h.snippet.is_empty() {
            line.push_str(" — ");
            line.push_str(crate::util::truncate(&h.snippet, SNIPPET_CHARS));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return format!("no results for {query:?}");
    }
    lines.join("\n")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The configured backend with an agent that follows its network route.
pub struct Searcher {
    agent: crate::net::LazyAgent,
    cfg: WebSearchTool,
}

impl Searcher {
    pub fn new(cfg: &crate::config::Config) -> Result<Searcher, String> {
        let w = &cfg.tools.web_search;
        let route = crate::routes::route_for(cfg, crate::routes::Owner::WebSearch)?;
        let t = crate::net::Timeouts {
            connect: Duration::from_secs(w.timeout_seconds.min(10)),
            recv_response: Duration::from_secs(w.timeout_seconds),
            per_read: Some(Duration::from_secs(w.timeout_seconds)),
        };
        let url = base_url(w);
        let agent = crate::net::LazyAgent::new(route, &format!("{url}/search"), t)?;
        Ok(Searcher {
            agent,
            cfg: w.clone(),
        })
    }

    pub fn max_results(&self) -> usize {
        self.cfg.max_results
    }

    /// Runs the query; returns the formatted lines and a short summary.
    pub fn search(&self, query: &str, max: usize) -> Result<(String, String), String> {
        let max = max.clamp(1, self.cfg.max_results);
        let req = build_request(&self.cfg, query, max)?;
        let started = Instant::now();
        let result = if req.method == "POST" {
            let mut rq = self.agent.get()?.post(&req.url);
            for (k, v) in &req.headers {
                rq = rq.header(*k, v.as_str());
            }
            rq.send(req.body.as_deref().unwrap_or("").as_bytes())
        } else {
            let mut rq = self.agent.get()?.get(&req.url);
            for (k, v) in &req.headers {
                rq = rq.header(*k, v.as_str());
            }
            rq.call()
        };
        let resp = result.map_err(|e| {
            format!(
                "search request to {} failed: {e}",
                crate::net::redact_url(&req.url)
            )
        })?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        let limit = Duration::from_secs(self.cfg.timeout_seconds);
        let mut reader = resp.into_body().into_reader();
        let mut chunk = [0u8; 8192];
        while buf.len() < MAX_BODY && started.elapsed() < limit {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n.min(MAX_BODY - buf.len())]),
                Err(e) => return Err(format!("search answer broke off: {e}")),
            }
        }
        let body = String::from_utf8_lossy(&buf);
        if status >= 400 {
            return Err(error_message(status, &body));
        }
        let hits = parse_response(&body)?;
        let text = format_hits(query, &hits, max);
        let n = text.lines().filter(|l| l.starts_with("- ")).count();
        let summary = format!(
            "{} search {:?}: {n} results in {} ms",
            self.cfg.backend,
            crate::util::truncate(query.trim(), 40),
            started.elapsed().as_millis()
        );
        Ok((text, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(backend: &str, base: &str, key: Option<&str>) -> WebSearchTool {
        WebSearchTool {
            enabled: true,
            backend: backend.into(),
            base_url: base.into(),
            api_key: key.map(String::from),
            ..WebSearchTool::default()
        }
    }

    #[test]
    fn tavily_request_is_a_json_post_with_bearer_key() {
        let r = build_request(&cfg("tavily", "", Some("tvly-abc")), "  rust on a pi ", 3)
            .expect("request");
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://api.tavily.com/search");
        assert!(r
            .headers
            .contains(&("Authorization", "Bearer tvly-abc".to_string())));
        assert!(r
            .headers
            .contains(&("Content-Type", "application/json".to_string())));
        let body: Value = serde_json::from_str(r.body.as_deref().expect("body")).expect("json");
        assert_eq!(body["query"], "rust on a pi");
        assert_eq!(body["max_results"], 3);
        // A keyless Tavily-compatible service gets no Authorization header.
        let r = build_request(&cfg("tavily", "http://127.0.0.1:9/", None), "q", 1).expect("r");
        assert_eq!(r.url, "http://127.0.0.1:9/search");
        assert!(!r.headers.iter().any(|(k, _)| *k == "Authorization"));
    }

    #[test]
    fn searxng_request_is_a_get_with_an_encoded_query() {
        let r = build_request(
            &cfg("searxng", "http://10.0.0.2:8888/", None),
            "c++ & rust/ü?",
            5,
        )
        .expect("request");
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.url,
            "http://10.0.0.2:8888/search?q=c%2B%2B%20%26%20rust%2F%C3%BC%3F&format=json"
        );
        assert!(r.body.is_none());
        assert!(build_request(&cfg("searxng", "", None), "q", 5).is_err());
        assert!(build_request(&cfg("tavily", "", None), "   ", 5)
            .unwrap_err()
            .contains("query"));
    }

    #[test]
    fn parses_and_formats_results_one_line_each_deduplicated_and_capped() {
        let body = r#"{"query":"q","results":[
            {"title":"First\n  result","url":"https://a.example/1","content":"Some   text\nover lines","score":0.9},
            {"title":"Dup","url":"https://a.example/1/","content":"same page"},
            {"title":"No url","content":"skipped"},
            {"title":"","url":"https://b.example/","content":""},
            {"title":"Fourth","url":"https://c.example/","content":"x"}
        ]}"#;
        let hits = parse_response(body).expect("parse");
        assert_eq!(hits.len(), 4);
        assert_eq!(hits[0].title, "First result");
        assert_eq!(hits[0].snippet, "Some text over lines");
        let text = format_hits("q", &hits, 2);
        assert_eq!(
            text,
            "- First result — https://a.example/1 — Some text over lines\n- (untitled) — https://b.example/"
        );
        let long = format!(
            r#"{{"results":[{{"title":"t","url":"https://x/","content":"{}"}}]}}"#,
            "word ".repeat(200)
        );
        let text = format_hits("q", &parse_response(&long).expect("parse"), 5);
        assert!(text.len() < 250, "{text}");
        assert_eq!(format_hits("zzz", &[], 5), "no results for \"zzz\"");
        assert!(parse_response("<html>").unwrap_err().contains("JSON"));
        assert!(parse_response("{}").unwrap_err().contains("results"));
    }

    #[test]
    fn error_messages_carry_the_backend_reason_and_a_fix() {
        let e = error_message(
            401,
            r#"{"detail":{"error":"Unauthorized: missing or invalid API key."}}"#,
        );
        assert!(e.contains("HTTP 401: Unauthorized: missing or invalid API key."));
        assert!(e.contains("tools.webSearch.apiKey"));
        let e = error_message(404, "Not Found");
        assert!(e.contains("Not Found") && e.contains("baseUrl"), "{e}");
    }
}
