//! Provider-neutral types of the LLM layer: the transcript model (persisted as
//! JSON), the request handed to a provider adapter, the events a streaming
//! decoder yields, and the error values the adapters share.
//! A few small helpers used by both adapters live at the bottom.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Who said a message. Serialized as "user" / "assistant".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    /// A message holding a single text part.
    pub fn text(role: Role, text: &str) -> Message {
        Message {
            role,
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// Its text parts joined, in order, with nothing between them (tool
    /// calls, results, images and thinking left out).
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text(text) = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// One piece of a message. Serialized with a `type` tag, for example
/// `{"type":"text","text":"hi"}` or `{"type":"toolResult","callId":..}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "PartRepr")]
pub enum Part {
    Text(String),
    Image {
        media_type: String,
        data_base64: String,
    },
    ToolCall {
        id: String,
        name: String,
        /// JSON text of the arguments object.
        arguments: String,
    },
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
    Thinking {
        text: String,
        signature: Option<String>,
    },
}

/// The JSON shape of `Part` when written. Serde cannot put a plain string
/// inside an internally tagged enum, so `Text` becomes
/// `{"type":"text","text":..}` here. Reading is `Part::from_json`: a derived
/// internally tagged deserializer buffers every field into serde's `Content`
/// and cost about 13 KB of binary; reading a `Value` (already in the binary)
/// and taking the fields from it costs a fraction.
#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum PartRepr {
    Text {
        text: String,
    },
    Image {
        media_type: String,
        data_base64: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    ToolResult {
        call_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

impl From<Part> for PartRepr {
    fn from(p: Part) -> PartRepr {
        match p {
            Part::Text(text) => PartRepr::Text { text },
            Part::Image {
                media_type,
                data_base64,
            } => PartRepr::Image {
                media_type,
                data_base64,
            },
            Part::ToolCall {
                id,
                name,
                arguments,
            } => PartRepr::ToolCall {
                id,
                name,
                arguments,
            },
            Part::ToolResult {
                call_id,
                content,
                is_error,
            } => PartRepr::ToolResult {
                call_id,
                content,
                is_error,
            },
            Part::Thinking { text, signature } => PartRepr::Thinking { text, signature },
        }
    }
}

impl Part {
    /// A part from its JSON object: the same shapes `PartRepr` writes; unknown
    /// fields are ignored, a missing or mistyped field is an error.
    fn from_json(v: &Value) -> Result<Part, String> {
        let o = v
            .as_object()
            .ok_or("a message part must be a JSON object")?;
        let text = |key: &str| -> Result<String, String> {
            match o.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("part field `{key}` must be a string")),
                None => Err(format!("missing field `{key}`")),
            }
        };
        let kind = match o.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) => return Err("part field `type` must be a string".into()),
            None => return Err("missing field `type`".into()),
        };
        Ok(match kind {
            "text" => Part::Text(text("text")?),
            "image" => Part::Image {
                media_type: text("mediaType")?,
                data_base64: text("dataBase64")?,
            },
            "toolCall" => Part::ToolCall {
                id: text("id")?,
                name: text("name")?,
                arguments: text("arguments")?,
            },
            "toolResult" => Part::ToolResult {
                call_id: text("callId")?,
                content: text("content")?,
                is_error: match o.get("isError") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("part field `isError` must be true or false".into()),
                },
            },
            "thinking" => Part::Thinking {
                text: text("text")?,
                signature: match o.get("signature") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return Err("part field `signature` must be a string".into()),
                },
            },
            other => {
                return Err(format!(
                    "unknown variant `{other}`, expected one of `text`, `image`, `toolCall`, `toolResult`, `thinking`"
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Part, D::Error> {
        let v = Value::deserialize(d)?;
        Part::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A tool the model may call; `parameters` is a JSON schema object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// Everything an adapter needs to build one streaming request body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Some => enable thinking (Anthropic) / reasoning effort (OpenAI).
    pub reasoning_budget: Option<u32>,
    /// false => image parts are replaced by `IMAGE_PLACEHOLDER` text.
    pub accepts_images: bool,
    /// What to ask of the provider's prompt cache.
    pub cache: CacheHints,
}

/// Prompt-cache requests added to a body. Each one is only set for a
/// provider known to accept it (see `provider::cache_hints`): OpenAI's own
/// API refuses unknown fields such as `cache_prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheHints {
    /// openai-completions: llama.cpp's `cache_prompt: true` (reuse the KV
    /// cache of the common prefix).
    pub cache_prompt: bool,
    /// openai-completions: llama.cpp's `id_slot`, so a session keeps its
    /// server slot and concurrent sessions do not evict each other.
    pub slot: Option<u32>,
    /// anthropic-messages: `cache_control` breakpoints on the system
    /// prompt, the tools and the newest turn before this run.
    pub breakpoints: bool,
}

/// Tokens of a model call, or of a run (the sum of its calls): the prompt
/// sent (`input`) and the answer generated (`output`). Stored in transcript
/// turns as the two-element array `[input, output]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

/// Prompt tokens served from the provider's prompt cache (`read`) and
/// evaluated or written to it this time (`written`). Stored in transcript
/// turns as the two-element array `[read, written]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub read: u64,
    pub written: u64,
}

impl std::ops::AddAssign for TokenUsage {
    /// Adds another call's tokens (saturating: counts are provider input).
    fn add_assign(&mut self, other: TokenUsage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
    }
}

impl std::ops::AddAssign for CacheUsage {
    /// Adds another call's cache tokens (saturating: counts are provider input).
    fn add_assign(&mut self, other: CacheUsage) {
        self.read = self.read.saturating_add(other.read);
        self.written = self.written.saturating_add(other.written);
    }
}

/// The stored shape of both is a two-element array (what a `(u64, u64)`
/// tuple encodes to), so a transcript written by either version reads in
/// the other.
macro_rules! serde_as_pair {
    ($type:ident, $first:ident, $second:ident) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                (self.$first, self.$second).serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let ($first, $second) = <(u64, u64)>::deserialize(deserializer)?;
                Ok($type { $first, $second })
            }
        }
    };
}

serde_as_pair!(TokenUsage, input, output);
serde_as_pair!(CacheUsage, read, written);

/// What a decoder yields while a response streams in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    TextDelta(String),
    ThinkingDelta(String),
    /// Signature that closes the thinking block streamed just before it
    /// (Anthropic). Store it on that `Part::Thinking` so it can be sent back.
    ThinkingSignature(String),
    /// Emitted once per call, fully assembled; `arguments` is valid JSON.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// Prompt tokens served from the provider's cache (`read_tokens`) and
    /// evaluated or written to it this time (`write_tokens`), when the
    /// provider says. Comes just before `Usage`.
    CacheUsage {
        read_tokens: u64,
        write_tokens: u64,
    },
    /// Always the last event of a complete response.
    Stop {
        reason: StopReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other(String),
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes did not follow the protocol (bad JSON, truncated stream, ...).
    Malformed(String),
    /// The provider reported an error inside the stream.
    Provider { kind: String, message: String },
    /// A configured size limit was hit; the text names which one.
    TooLarge(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(m) => write!(f, "malformed stream: {}", m),
            DecodeError::Provider { kind, message } => {
                write!(f, "provider error ({}): {}", kind, message)
            }
            DecodeError::TooLarge(what) => write!(f, "stream limit exceeded: {}", what),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A non-2xx HTTP answer, reduced to what the caller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl HttpError {
    /// Shorthand for `classify(self.status)`.
    pub fn class(&self) -> FailureClass {
        classify(self.status)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Retryable,
    Fatal,
}

// ---- helpers shared by the adapters ----

/// Text put in place of an image when the model does not accept images.
pub const IMAGE_PLACEHOLDER: &str = "[image omitted: this model does not accept images]";

/// Default cap on the accumulated arguments of one tool call (and on one
/// thinking signature).
pub const DEFAULT_MAX_TOOL_ARGS: usize = 1024 * 1024;

/// Most tool calls (or open content blocks) one response may carry.
pub const MAX_TOOL_CALLS: usize = 128;

/// Longest error message kept from a provider, in characters.
pub const MAX_ERROR_CHARS: usize = 300;

/// Trim `s` and keep at most `max_chars` characters.
pub(crate) fn snippet(s: &str, max_chars: usize) -> String {
    crate::util::truncate_chars(s.trim(), max_chars)
}

/// f32 -> JSON number without float widening noise (0.7 stays 0.7).
pub(crate) fn f32_to_json(x: f32) -> Option<serde_json::Value> {
    let wide: f64 = format!("{}", x).parse().ok()?;
    serde_json::Number::from_f64(wide).map(serde_json::Value::Number)
}

/// Parse a Retry-After header given in seconds. HTTP dates yield None
/// (this layer has no clock).
pub fn parse_retry_after(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.trim().parse::<u64>().ok())
}

/// Shared `parse_error` for both adapters. Understands
/// `{"error":{"type":..,"message":..}}` (Anthropic and OpenAI),
/// `{"error":"text"}`, `{"message":..}`, else keeps a body snippet.
pub(crate) fn http_error(status: u16, body: &[u8], retry_after: Option<&str>) -> HttpError {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| message_from_error_json(&v));
    let message = match from_json {
        Some(m) => snippet(&m, MAX_ERROR_CHARS),
        None => {
            let s = snippet(&text, MAX_ERROR_CHARS);
            if s.is_empty() {
                format!("HTTP status {}", status)
            } else {
                s
            }
        }
    };
    HttpError {
        status,
        message,
        retry_after_secs: parse_retry_after(retry_after),
    }
}

fn message_from_error_json(v: &Value) -> Option<String> {
    match v.get("error") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(err @ Value::Object(_)) => {
            let message = err.get("message").and_then(Value::as_str);
            let kind = err.get("type").and_then(Value::as_str);
            return match (kind, message) {
                (Some(k), Some(m)) => Some(format!("{}: {}", k, m)),
                (None, Some(m)) => Some(m.to_string()),
                (Some(k), None) => Some(k.to_string()),
                (None, None) => None,
            };
        }
        _ => {}
    }
    v.get("message").and_then(Value::as_str).map(str::to_string)
}

/// Turn the `error` value found inside a stream into `DecodeError::Provider`.
pub(crate) fn stream_error(err: &Value) -> DecodeError {
    if let Some(s) = err.as_str() {
        return DecodeError::Provider {
            kind: "error".to_string(),
            message: snippet(s, MAX_ERROR_CHARS),
        };
    }
    let kind = match err.get("type").or_else(|| err.get("code")) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "error".to_string(),
    };
    let message = match err.get("message").and_then(Value::as_str) {
        Some(m) => snippet(m, MAX_ERROR_CHARS),
        None => snippet(&err.to_string(), MAX_ERROR_CHARS),
    };
    DecodeError::Provider { kind, message }
}

/// Check assembled tool arguments. Empty text means "no arguments" and
/// becomes `{}`; anything else must parse as JSON.
pub(crate) fn checked_tool_args(name: &str, args: &str) -> Result<String, DecodeError> {
    if args.trim().is_empty() {
        return Ok("{}".to_string());
    }
    match serde_json::from_str::<Value>(args) {
        Ok(_) => Ok(args.to_string()),
        Err(e) => Err(DecodeError::Malformed(format!(
            "arguments of tool call '{}' are not valid JSON: {}",
            snippet(name, 100),
            e
        ))),
    }
}

/// A tool's JSON schema, or an empty object schema when none was given.
pub(crate) fn tool_schema(parameters: &Value) -> Value {
    if parameters.is_object() {
        parameters.clone()
    } else {
        serde_json::json!({"type": "object", "properties": {}})
    }
}

/// Append `piece` to `buf` unless that would pass `max` bytes.
pub(crate) fn push_capped(
    buf: &mut String,
    piece: &str,
    max: usize,
    what: &'static str,
) -> Result<(), DecodeError> {
    if buf.len().saturating_add(piece.len()) > max {
        return Err(DecodeError::TooLarge(what));
    }
    buf.push_str(piece);
    Ok(())
}

/// Whether a failed HTTP status is worth retrying (or failing over).
/// 408, 429 and every 5xx (including Anthropic's 529) are retryable;
/// everything else, notably 400/401/403/404/422, is fatal.
pub fn classify(status: u16) -> FailureClass {
    match status {
        408 | 429 => FailureClass::Retryable,
        500..=599 => FailureClass::Retryable,
        _ => FailureClass::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_as_tagged_camel_case_json() {
        let msg = Message {
            role: Role::Assistant,
            parts: vec![
                Part::Text("hi".into()),
                Part::Image {
                    media_type: "image/png".into(),
                    data_base64: "AAAA".into(),
                },
                Part::ToolCall {
                    id: "c1".into(),
                    name: "ls".into(),
                    arguments: "{\"dir\":\"/\"}".into(),
                },
                Part::ToolResult {
                    call_id: "c1".into(),
                    content: "ok".into(),
                    is_error: true,
                },
                Part::Thinking {
                    text: "hmm".into(),
                    signature: None,
                },
            ],
        };
        let v = serde_json::to_value(&msg).unwrap();
        assert_eq!(v["role"], "assistant");
        assert_eq!(
            v["parts"][0],
            serde_json::json!({"type":"text","text":"hi"})
        );
        assert_eq!(v["parts"][1]["type"], "image");
        assert_eq!(v["parts"][1]["mediaType"], "image/png");
        assert_eq!(v["parts"][1]["dataBase64"], "AAAA");
        assert_eq!(v["parts"][2]["type"], "toolCall");
        assert_eq!(v["parts"][3]["type"], "toolResult");
        assert_eq!(v["parts"][3]["callId"], "c1");
        assert_eq!(v["parts"][3]["isError"], true);
        assert_eq!(v["parts"][4]["type"], "thinking");
        assert!(v["parts"][4].get("signature").is_none());
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn unknown_part_type_is_a_deserialize_error() {
        let r = serde_json::from_str::<Part>(r#"{"type":"video","url":"x"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn error_bodies_of_each_shape() {
        let anth =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = http_error(529, anth, Some(" 7 "));
        assert_eq!(e.message, "overloaded_error: Overloaded");
        assert_eq!(e.retry_after_secs, Some(7));
        let flat = br#"{"message":"bad key"}"#;
        assert_eq!(http_error(401, flat, None).message, "bad key");
        let s = br#"{"error":"model not loaded"}"#;
        assert_eq!(http_error(503, s, None).message, "model not loaded");
        let long = "x".repeat(1000);
        let e = http_error(500, format!("  {}  ", long).as_bytes(), Some("Wed, 21 Oct"));
        assert_eq!(e.message.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(e.retry_after_secs, None);
        assert_eq!(http_error(502, b"  ", None).message, "HTTP status 502");
        // invalid UTF-8 must not panic
        let e = http_error(500, &[0xff, 0xfe, b'o', b'k'], None);
        assert!(e.message.ends_with("ok"));
    }

    #[test]
    fn tool_args_are_checked() {
        assert_eq!(checked_tool_args("t", "  ").unwrap(), "{}");
        assert_eq!(checked_tool_args("t", "{\"a\":1}").unwrap(), "{\"a\":1}");
        assert!(matches!(
            checked_tool_args("t", "{\"a\":"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
