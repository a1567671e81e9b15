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

/// A provider's streaming decoder: server-sent events in, `StreamEvent`s
/// out, `finish` at the end of the bytes.
pub trait StreamDecoder {
    fn feed(&mut self, event: &sse::SseEvent) -> Result<Vec<StreamEvent>, DecodeError>;
    fn finish(&mut self) -> Result<Vec<StreamEvent>, DecodeError>;
}

/// What the decoders' tests share: a whole stream run through the SSE
/// parser and a decoder in pieces of `chunk` bytes, and event builders.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::llm::sse::SseParser;
    use crate::llm::{DecodeError, StopReason, StreamDecoder, StreamEvent};

    pub fn decode_all(
        mut decoder: impl StreamDecoder,
        stream: &[u8],
        chunk: usize,
    ) -> Result<Vec<StreamEvent>, DecodeError> {
        let mut sse = SseParser::new(4096);
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            for event in sse.feed(piece)? {
                out.extend(decoder.feed(&event)?);
            }
        }
        for event in sse.finish() {
            out.extend(decoder.feed(&event)?);
        }
        out.extend(decoder.finish()?);
        Ok(out)
    }

    pub fn text(s: &str) -> StreamEvent {
        StreamEvent::TextDelta(s.to_string())
    }

    pub fn stop(reason: StopReason) -> StreamEvent {
        StreamEvent::Stop { reason }
    }
}

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
