//! The I/O shell around the wire codecs in `llm/`: one streaming model call.
//!
//! It builds the request with the codec, sends it with ureq on the calling
//! (worker) thread, feeds the response bytes to the SSE parser and decoder,
//! and hands each decoded event to the caller. All protocol decisions live
//! in the codecs; this file only moves bytes, enforces the timeouts
//! (connect, first byte, idle between chunks, total) and classifies
//! failures so the agent knows whether to fall over to the next model.

use crate::config::{ModelDef, Provider};
use crate::llm::{self, ChatRequest, StreamDecoder, StreamEvent};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum FailKind {
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// No response, no chunk for too long, or over the total budget.
    Timeout,
    /// HTTP status from the provider.
    Status(u16),
    /// The stream broke or could not be parsed.
    Stream,
    /// Stopped by the user or the run deadline.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct CallError {
    pub kind: FailKind,
    pub message: String,
    /// Worth trying the next model in the chain.
    pub fall_over: bool,
    pub retry_after_s: Option<u64>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(kind: FailKind, message: String) -> CallError {
    let fall_over = match &kind {
        FailKind::Connect | FailKind::Timeout | FailKind::Stream => true,
        FailKind::Status(s) => llm::classify(*s) == llm::FailureClass::Retryable,
        FailKind::Cancelled => false,
    };
    CallError {
        kind,
        message,
        fall_over,
        retry_after_s: None,
    }
}

/// Builds the HTTP agent for a provider. Network routes (proxy, noProxy,
/// CA) come from `net`; timeouts from the provider's config.
pub fn agent(p: &Provider, route: crate::net::Route) -> Result<crate::net::LazyAgent, String> {
    let t = &p.timeouts;
    let timeouts = crate::net::Timeouts {
        connect: Duration::from_secs(t.connect),
        recv_response: Duration::from_secs(t.first_token),
        per_read: Some(Duration::from_secs(t.idle)),
    };
    crate::net::LazyAgent::new(route, &p.base_url, timeouts)
}

/// Streams one chat completion, calling `on` for every decoded event.
pub fn stream_chat(
    agent: &ureq::Agent,
    provider_id: &str,
    p: &Provider,
    model: &ModelDef,
    req: &ChatRequest,
    cancel: &AtomicBool,
    deadline: Instant,
    on: &mut dyn FnMut(StreamEvent),
) -> Result<(), CallError> {
    let (url, mut headers, body) = match p.api.as_str() {
        "anthropic-messages" => (
            llm::anthropic::url(&p.base_url),
            llm::anthropic::headers(p.api_key.as_deref(), p.bearer_auth(provider_id)),
            llm::anthropic::build_body(req),
        ),
        _ => (
            llm::openai::url(&p.base_url),
            llm::openai::headers(p.api_key.as_deref()),
            llm::openai::build_body(req),
        ),
    };
    for (k, v) in &p.headers {
        headers.push((k.clone(), v.clone()));
    }
    let label = format!("{provider_id}/{}", model.id);
    let mut rq = agent.post(&url);
    for (k, v) in &headers {
        rq = rq.header(k.as_str(), v.as_str());
    }
    let resp = rq.send(&body[..]).map_err(|e| classify_ureq(&label, e))?;
    let status = resp.status().as_u16();
    let retry_after = crate::net::header_text(resp.headers(), "retry-after");
    let mut reader = resp.into_body().into_reader();
    if status != 200 {
        let mut buf = Vec::new();
        let _ = reader.by_ref().take(64 * 1024).read_to_end(&mut buf);
        let he = match p.api.as_str() {
            "anthropic-messages" => {
                llm::anthropic::parse_error(status, &buf, retry_after.as_deref())
            }
            _ => llm::openai::parse_error(status, &buf, retry_after.as_deref()),
        };
        let hint = match status {
            401 | 403 => " (check models.providers.<id>.apiKey)",
            404 => " (check baseUrl and the model id)",
            _ => "",
        };
        let mut e = fail(
            FailKind::Status(status),
            format!("{label}: HTTP {status}: {}{hint}", he.message),
        );
        e.retry_after_s = he.retry_after_secs;
        return Err(e);
    }
    let mut sse = llm::sse::SseParser::new(1024 * 1024);
    let mut dec = decoder(&p.api);
    let mut buf = vec![0u8; 8192];
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(fail(FailKind::Cancelled, format!("{label}: stopped")));
        }
        if Instant::now() > deadline {
            return Err(fail(
                FailKind::Timeout,
                format!("{label}: over the total time budget"),
            ));
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                    || e.to_string().to_ascii_lowercase().contains("timeout");
                let kind = if timed_out {
                    FailKind::Timeout
                } else {
                    FailKind::Stream
                };
                return Err(fail(kind, format!("{label}: stream broke: {e}")));
            }
        };
        if n == 0 {
            break;
        }
        let events = sse
            .feed(&buf[..n])
            .map_err(|e| fail(FailKind::Stream, format!("{label}: {e:?}")))?;
        for ev in events {
            for out in dec.feed(&ev).map_err(|e| decode_fail(&label, e))? {
                on(out);
            }
        }
    }
    for ev in sse.finish() {
        for out in dec.feed(&ev).map_err(|e| decode_fail(&label, e))? {
            on(out);
        }
    }
    for out in dec.finish().map_err(|e| decode_fail(&label, e))? {
        on(out);
    }
    Ok(())
}

fn decode_fail(label: &str, e: llm::DecodeError) -> CallError {
    match e {
        llm::DecodeError::Provider { kind, message } => {
            let lower = kind.to_ascii_lowercase();
            let mut ce = fail(
                FailKind::Stream,
                format!("{label}: provider error ({kind}): {message}"),
            );
            if lower.contains("invalid_request")
                || lower.contains("authentication")
                || lower.contains("permission")
            {
                ce.fall_over = false;
            }
            ce
        }
        other => fail(
            FailKind::Stream,
            format!("{label}: malformed stream: {other:?}"),
        ),
    }
}

/// The streaming decoder of the provider's wire API.
fn decoder(api: &str) -> Box<dyn StreamDecoder> {
    match api {
        "anthropic-messages" => Box::new(llm::anthropic::Decoder::new()),
        _ => Box::new(llm::openai::Decoder::new()),
    }
}

fn classify_ureq(label: &str, e: ureq::Error) -> CallError {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => fail(FailKind::Timeout, format!("{label}: timed out: {text}")),
        ureq::Error::Io(io) => {
            let kind = match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FailKind::Timeout,
                std::io::ErrorKind::ConnectionRefused => FailKind::Connect,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted => FailKind::Stream,
                _ => FailKind::Connect,
            };
            fail(kind, format!("{label}: {io}"))
        }
        ureq::Error::HostNotFound => {
            fail(FailKind::Connect, format!("{label}: host not found (DNS)"))
        }
        _ => fail(FailKind::Connect, format!("{label}: {text}")),
    }
}

/// Whether a base URL names this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Whether a provider is (assumed to be) a llama.cpp server that takes
/// `cache_prompt`/`id_slot` and answers `/health` and `/props`: set
/// explicitly with `cachePrompt`, else any openai-completions provider on
/// loopback.
pub fn is_local_llama(p: &Provider) -> bool {
    p.api == "openai-completions"
        && p.cache_prompt
            .unwrap_or_else(|| is_loopback_url(&p.base_url))
}

/// The prompt-cache requests for one call of `session` to `p`.
pub fn cache_hints(p: &Provider, session: &str) -> llm::CacheHints {
    match p.api.as_str() {
        "anthropic-messages" => llm::CacheHints {
            breakpoints: p.cache_prompt.unwrap_or(true),
            ..llm::CacheHints::default()
        },
        _ if is_local_llama(p) => llm::CacheHints {
            cache_prompt: true,
            slot: match p.slots {
                Some(n) if n > 0 && !session.is_empty() => Some(slot_for(session, n)),
                _ => None,
            },
            breakpoints: false,
        },
        _ => llm::CacheHints::default(),
    }
}

/// A session's server slot: FNV-1a of its key, mod `slots` (stable across
/// restarts and builds).
pub fn slot_for(session: &str, slots: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(slots.max(1))) as u32
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for u in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:8080",
            "http://[::1]:8080/v1",
            "http://127.1.2.3/v1",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "https://api.openai.com/v1",
            "http://192.168.1.5:8080/v1",
            "http://localhost.evil.example/v1",
            "http://127.0.0.1.nip.io/v1",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }

    #[test]
    fn hints_follow_the_provider() {
        let mut p = Provider {
            base_url: "http://127.0.0.1:8080/v1".into(),
            ..Provider::default()
        };
        let h = cache_hints(&p, "main");
        assert!(h.cache_prompt && h.slot.is_none() && !h.breakpoints);
        p.slots = Some(4);
        let a = cache_hints(&p, "telegram:42").slot;
        assert_eq!(a, cache_hints(&p, "telegram:42").slot, "stable");
        assert!(a.unwrap() < 4);
        let spread: std::collections::BTreeSet<u32> = (0..64)
            .map(|i| slot_for(&format!("telegram:{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4, "sessions spread over the slots");
        p.base_url = "https://api.openai.com/v1".into();
        assert_eq!(cache_hints(&p, "main"), llm::CacheHints::default());
        p.cache_prompt = Some(true);
        assert!(cache_hints(&p, "main").cache_prompt);
        p.api = "anthropic-messages".into();
        p.cache_prompt = None;
        assert!(cache_hints(&p, "main").breakpoints);
        p.cache_prompt = Some(false);
        assert!(!cache_hints(&p, "main").breakpoints);
    }
}
