//! LLM provider layer (sans-IO): request bodies, headers and paths for the
//! OpenAI chat-completions and Anthropic Messages APIs, an SSE parser, and
//! streaming decoders that turn server-sent events into `StreamEvent`s.
//! The caller owns the socket: it feeds response bytes to `sse::SseParser`,
//! hands each `SseEvent` to the provider's `Decoder`, and calls `finish()`.

pub mod anthropic;
pub mod openai;
pub mod sse;
pub mod types;

pub use types::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(classify(s), FailureClass::Retryable, "status {}", s);
        }
        for s in [400, 401, 403, 404, 422, 200, 301] {
            assert_eq!(classify(s), FailureClass::Fatal, "status {}", s);
        }
        let e = HttpError {
            status: 429,
            message: String::new(),
            retry_after_secs: None,
        };
        assert_eq!(e.class(), FailureClass::Retryable);
    }
}
