//! Anthropic Messages API (`POST {baseUrl}/v1/messages`, `stream: true`),
//! also served by llama.cpp and MiniMax: request body and headers, a streaming decoder for the
//! typed event stream (message_start .. message_stop), and HTTP error parsing.

use super::sse::SseEvent;
use super::types::CacheUsage;
use super::types::{
    checked_tool_args, f32_to_json, http_error, push_capped, stream_error, tool_schema,
    ChatRequest, DecodeError, HttpError, Part, Role, StopReason, StreamEvent,
    DEFAULT_MAX_TOOL_ARGS, IMAGE_PLACEHOLDER, MAX_TOOL_CALLS,
};
use super::StreamDecoder;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Value of the `anthropic-version` header.
pub const API_VERSION: &str = "2023-06-01";

/// Smallest thinking budget the API accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// The request URL for a base URL, by the Anthropic SDK convention that
/// OpenClaw follows: `<baseUrl>/v1/messages` (`https://api.minimaxi.com/anthropic`,
/// `http://127.0.0.1:8080`), or `<baseUrl>/messages` when the base already
/// ends in `/v1` (`https://api.anthropic.com/v1`), never `/v1/v1`.
pub fn url(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// `bearer` sends the key as `Authorization: Bearer` (proxies, OAuth
/// tokens) instead of `x-api-key`.
pub fn headers(api_key: Option<&str>, bearer: bool) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), "text/event-stream".to_string()),
        ("anthropic-version".to_string(), API_VERSION.to_string()),
    ];
    if let Some(key) = api_key {
        if bearer {
            h.push(("authorization".to_string(), format!("Bearer {}", key)));
        } else {
            h.push(("x-api-key".to_string(), key.to_string()));
        }
    }
    h
}

/// JSON body of a streaming Messages request.
pub fn build_body(req: &ChatRequest) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    let mut max_tokens = req.max_tokens;
    if let Some(budget) = req.reasoning_budget {
        let budget = budget.max(MIN_THINKING_BUDGET);
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
        // max_tokens must exceed the thinking budget.
        max_tokens = max_tokens.saturating_add(budget);
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    let ephemeral = json!({"type": "ephemeral"});
    if !req.system.is_empty() {
        if req.cache.breakpoints {
            body.insert(
                "system".into(),
                json!([{"type": "text", "text": req.system, "cache_control": ephemeral}]),
            );
        } else {
            body.insert("system".into(), json!(req.system));
        }
    }
    let mut messages = build_messages(req);
    if req.cache.breakpoints {
        // The newest turn: the next request starts with everything up to here.
        if let Some(Value::Object(block)) = messages
            .last_mut()
            .and_then(|m| m.get_mut("content"))
            .and_then(Value::as_array_mut)
            .and_then(|blocks| blocks.last_mut())
        {
            block.insert("cache_control".into(), ephemeral.clone());
        }
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    // The API only allows the default temperature while thinking.
    if req.reasoning_budget.is_none() {
        if let Some(t) = req.temperature.and_then(f32_to_json) {
            body.insert("temperature".into(), t);
        }
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": tool_schema(&t.parameters),
                })
            })
            .collect();
        let mut tools = tools;
        if req.cache.breakpoints {
            if let Some(Value::Object(last)) = tools.last_mut() {
                last.insert("cache_control".into(), ephemeral);
            }
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body).to_string().into_bytes()
}

/// Turn the transcript into strictly alternating user/assistant turns:
/// consecutive blocks for the same role are merged into one message, tool
/// results always go to a user turn and come first in it.
fn build_messages(req: &ChatRequest) -> Vec<Value> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        for part in &m.parts {
            let (role, block) = match part_block(m.role, part, req.accepts_images) {
                Some(x) => x,
                None => continue,
            };
            match turns.last_mut() {
                Some((last_role, blocks)) if *last_role == role => blocks.push(block),
                _ => turns.push((role, vec![block])),
            }
        }
    }
    turns
        .into_iter()
        .map(|(role, blocks)| {
            let (role_name, blocks) = match role {
                Role::User => {
                    let (mut results, rest): (Vec<Value>, Vec<Value>) =
                        blocks.into_iter().partition(|b| {
                            b.get("type").and_then(Value::as_str) == Some("tool_result")
                        });
                    results.extend(rest);
                    ("user", results)
                }
                Role::Assistant => ("assistant", blocks),
            };
            json!({"role": role_name, "content": blocks})
        })
        .collect()
}

/// The content block for one part and the role whose turn it belongs in;
/// None for parts that cannot be sent (empty text, unsigned thinking, tool
/// calls in a user message).
fn part_block(role: Role, part: &Part, accepts_images: bool) -> Option<(Role, Value)> {
    match part {
        Part::Text(t) => {
            if t.is_empty() {
                None
            } else {
                Some((role, json!({"type": "text", "text": t})))
            }
        }
        Part::Image {
            media_type,
            data_base64,
        } => {
            if accepts_images && role == Role::User {
                let source =
                    json!({"type": "base64", "media_type": media_type, "data": data_base64});
                Some((role, json!({"type": "image", "source": source})))
            } else {
                Some((role, json!({"type": "text", "text": IMAGE_PLACEHOLDER})))
            }
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            if role != Role::Assistant {
                return None;
            }
            let input = match serde_json::from_str::<Value>(arguments) {
                Ok(v) if v.is_object() => v,
                _ => json!({}),
            };
            Some((
                Role::Assistant,
                json!({"type": "tool_use", "id": id, "name": name, "input": input}),
            ))
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => {
            let mut block = Map::new();
            block.insert("type".into(), json!("tool_result"));
            block.insert("tool_use_id".into(), json!(call_id));
            block.insert("content".into(), json!(content));
            if *is_error {
                block.insert("is_error".into(), json!(true));
            }
            Some((Role::User, Value::Object(block)))
        }
        Part::Thinking { text, signature } => match signature {
            Some(sig) if role == Role::Assistant => Some((
                Role::Assistant,
                json!({"type": "thinking", "thinking": text, "signature": sig}),
            )),
            _ => None,
        },
    }
}

/// Read a non-2xx response: `{type:"error", error:{type, message}}`, or the
/// OpenAI shapes llama.cpp returns on this endpoint, or a body snippet.
pub fn parse_error(status: u16, body: &[u8], retry_after_header: Option<&str>) -> HttpError {
    http_error(status, body, retry_after_header)
}

// ---- streaming ----

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<StartMessage>,
    index: Option<u64>,
    content_block: Option<Block>,
    delta: Option<Delta>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// All prompt tokens, cached or not; None when no input count was given.
    fn input_total(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        if parts.iter().all(Option::is_none) {
            return None;
        }
        Some(
            parts
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(*b)),
        )
    }
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    name: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    input: Option<Value>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
    signature: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

#[derive(Debug, PartialEq)]
enum BlockKind {
    Text,
    Thinking,
    ToolUse,
    Ignored,
}

/// A content block that has started and not yet stopped.
#[derive(Debug)]
struct OpenBlock {
    index: u64,
    kind: BlockKind,
    id: String,
    name: String,
    /// Tool input JSON (tool_use) or signature (thinking) so far.
    buf: String,
    /// Input given whole in content_block_start, used if no deltas follow.
    initial_input: String,
}

/// Streaming decoder for Messages events. Text and thinking deltas are
/// emitted as they come, a tool call when its block stops, and `Usage`
/// then `Stop` at message_stop.
#[derive(Debug)]
pub struct Decoder {
    max_tool_args: usize,
    blocks: Vec<OpenBlock>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// cache_read_input_tokens, cache_creation_input_tokens.
    cache: Option<CacheUsage>,
    stop: Option<StopReason>,
    emitted_tool_call: bool,
    done: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::with_max_tool_args(DEFAULT_MAX_TOOL_ARGS)
    }

    /// `max_tool_args` caps one tool call's input JSON and one signature.
    pub fn with_max_tool_args(max_tool_args: usize) -> Decoder {
        Decoder {
            max_tool_args,
            blocks: Vec::new(),
            input_tokens: None,
            output_tokens: None,
            cache: None,
            stop: None,
            emitted_tool_call: false,
            done: false,
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, ev: &SseEvent) -> Result<Vec<StreamEvent>, DecodeError> {
        if self.done {
            return Ok(Vec::new());
        }
        let e: Event = serde_json::from_str(&ev.data)
            .map_err(|err| DecodeError::Malformed(format!("invalid event JSON: {}", err)))?;
        if let Some(err) = &e.error {
            return Err(stream_error(err));
        }
        let kind = match (&e.kind, &ev.event) {
            (Some(k), _) => k.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => String::new(),
        };
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                if let Some(u) = e.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    self.take_usage(u);
                }
            }
            "content_block_start" => {
                let index = need_index(e.index, &kind)?;
                let block = match e.content_block {
                    Some(b) => b,
                    None => {
                        return Err(DecodeError::Malformed(
                            "content_block_start without content_block".into(),
                        ))
                    }
                };
                self.start_block(index, block, &mut out)?;
            }
            "content_block_delta" => {
                let index = need_index(e.index, &kind)?;
                if let Some(d) = e.delta {
                    self.block_delta(index, d, &mut out)?;
                }
            }
            "content_block_stop" => {
                let index = need_index(e.index, &kind)?;
                // A stop for a block we do not know is tolerated.
                if let Some(pos) = self.blocks.iter().position(|b| b.index == index) {
                    let block = self.blocks.remove(pos);
                    self.close_block(block, &mut out)?;
                }
            }
            "message_delta" => {
                if let Some(reason) = e.delta.and_then(|d| d.stop_reason) {
                    self.stop = Some(map_stop_reason(&reason));
                }
                if let Some(u) = &e.usage {
                    self.take_usage(u);
                }
            }
            "message_stop" => {
                let mut blocks = std::mem::take(&mut self.blocks);
                crate::sort::sort_by_key(&mut blocks, |b| b.index);
                for b in blocks {
                    self.close_block(b, &mut out)?;
                }
                if let Some(cache) = self.cache {
                    out.push(StreamEvent::CacheUsage {
                        read_tokens: cache.read,
                        write_tokens: cache.written,
                    });
                }
                if self.input_tokens.is_some() || self.output_tokens.is_some() {
                    out.push(StreamEvent::Usage {
                        input_tokens: self.input_tokens.unwrap_or(0),
                        output_tokens: self.output_tokens.unwrap_or(0),
                    });
                }
                let reason = match self.stop.take() {
                    Some(r) => r,
                    None if self.emitted_tool_call => StopReason::ToolUse,
                    None => StopReason::EndTurn,
                };
                out.push(StreamEvent::Stop { reason });
                self.done = true;
            }
            "error" => {
                return Err(DecodeError::Provider {
                    kind: "error".into(),
                    message: "error event without details".into(),
                })
            }
            // "ping" and event types added later are ignored.
            _ => {}
        }
        Ok(out)
    }

    /// End of the byte stream; without message_stop the response is cut.
    fn finish(&mut self) -> Result<Vec<StreamEvent>, DecodeError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(DecodeError::Malformed(
                "stream ended before completion".to_string(),
            ))
        }
    }
}

impl Decoder {
    fn take_usage(&mut self, u: &Usage) {
        if let Some(n) = u.input_total() {
            self.input_tokens = Some(n);
        }
        if let Some(n) = u.output_tokens {
            self.output_tokens = Some(n);
        }
        if u.cache_read_input_tokens.is_some() || u.cache_creation_input_tokens.is_some() {
            self.cache = Some(CacheUsage {
                read: u.cache_read_input_tokens.unwrap_or(0),
                written: u.cache_creation_input_tokens.unwrap_or(0),
            });
        }
    }

    fn start_block(
        &mut self,
        index: u64,
        block: Block,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), DecodeError> {
        // A restarted index closes the earlier block of that index.
        if let Some(pos) = self.blocks.iter().position(|b| b.index == index) {
            let old = self.blocks.remove(pos);
            self.close_block(old, out)?;
        }
        if self.blocks.len() >= MAX_TOOL_CALLS {
            return Err(DecodeError::TooLarge("open content blocks"));
        }
        let mut open = OpenBlock {
            index,
            kind: BlockKind::Ignored,
            id: String::new(),
            name: String::new(),
            buf: String::new(),
            initial_input: String::new(),
        };
        match block.kind.as_str() {
            "text" => {
                open.kind = BlockKind::Text;
                if let Some(t) = block.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
            }
            "thinking" => {
                open.kind = BlockKind::Thinking;
                if let Some(t) = block.thinking.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ThinkingDelta(t));
                }
                if let Some(s) = block.signature {
                    push_capped(&mut open.buf, &s, self.max_tool_args, "thinking signature")?;
                }
            }
            "tool_use" => {
                open.kind = BlockKind::ToolUse;
                open.id = block.id.unwrap_or_default();
                open.name = block.name.unwrap_or_default();
                if open.id.is_empty() || open.name.is_empty() {
                    return Err(DecodeError::Malformed(
                        "tool_use block without id or name".into(),
                    ));
                }
                if let Some(input) = block.input {
                    if input.as_object().is_some_and(|o| !o.is_empty()) {
                        let text = input.to_string();
                        if text.len() > self.max_tool_args {
                            return Err(DecodeError::TooLarge("tool call arguments"));
                        }
                        open.initial_input = text;
                    }
                }
            }
            // redacted_thinking, server tool blocks, ...: not surfaced.
            _ => {}
        }
        self.blocks.push(open);
        Ok(())
    }

    fn block_delta(
        &mut self,
        index: u64,
        d: Delta,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), DecodeError> {
        let max = self.max_tool_args;
        let block = self.blocks.iter_mut().find(|b| b.index == index);
        match d.kind.as_deref().unwrap_or("") {
            "text_delta" => {
                if let Some(t) = d.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
            }
            "thinking_delta" => {
                if let Some(t) = d.thinking.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ThinkingDelta(t));
                }
            }
            "signature_delta" => {
                if let (Some(b), Some(s)) = (block, d.signature) {
                    if b.kind == BlockKind::Thinking {
                        push_capped(&mut b.buf, &s, max, "thinking signature")?;
                    }
                }
            }
            "input_json_delta" => {
                let b = match block {
                    Some(b) if b.kind == BlockKind::ToolUse => b,
                    _ => {
                        return Err(DecodeError::Malformed(format!(
                            "input_json_delta for block {} which is not an open tool_use",
                            index
                        )))
                    }
                };
                if let Some(piece) = d.partial_json {
                    push_capped(&mut b.buf, &piece, max, "tool call arguments")?;
                }
            }
            // citations_delta and future delta types are ignored.
            _ => {}
        }
        Ok(())
    }

    fn close_block(
        &mut self,
        block: OpenBlock,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), DecodeError> {
        match block.kind {
            BlockKind::ToolUse => {
                let raw = if block.buf.trim().is_empty() {
                    &block.initial_input
                } else {
                    &block.buf
                };
                let arguments = checked_tool_args(&block.name, raw)?;
                out.push(StreamEvent::ToolCall {
                    id: block.id,
                    name: block.name,
                    arguments,
                });
                self.emitted_tool_call = true;
            }
            BlockKind::Thinking => {
                if !block.buf.is_empty() {
                    out.push(StreamEvent::ThinkingSignature(block.buf));
                }
            }
            BlockKind::Text | BlockKind::Ignored => {}
        }
        Ok(())
    }
}

fn need_index(index: Option<u64>, kind: &str) -> Result<u64, DecodeError> {
    index.ok_or_else(|| DecodeError::Malformed(format!("{} without index", kind)))
}

fn map_stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseParser;
    use crate::llm::test_support::{decode_all, stop, text};
    use crate::llm::types::{Message, ToolSpec};

    /// Plain text, shaped like the documented stream, with a ping.
    const PLAIN: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01A","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":31,"cache_creation_input_tokens":0,"cache_read_input_tokens":4,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" à tous 👋"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}

event: message_stop
data: {"type":"message_stop"}

"#;

    /// Extended thinking: thinking block with signature, then text.
    const THINKING: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","content":[],"usage":{"input_tokens":12,"output_tokens":0}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two plus two "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"is four."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"4"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":40}}

event: message_stop
data: {"type":"message_stop"}

"#;

    /// Tool use whose input JSON is split mid-token (inside a key, inside a
    /// string, inside a number, before a closing brace).
    const TOOL_USE: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_03","type":"message","role":"assistant","content":[],"usage":{"input_tokens":400,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01X","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"loc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ation\": \"San Fr"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ancisco\", \"days\": 1"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"2}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

    /// llama.cpp style: the tool block starts before the text block stops,
    /// the text block's stop comes late, the tool block's never comes; a
    /// second tool sends its whole input in content_block_start.
    const OVERLAPPING: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"chatcmpl-9","type":"message","role":"assistant","content":[],"model":"qwen3","usage":{"input_tokens":77,"output_tokens":0}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me look."}}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_q1","name":"read_file","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\":\"/etc/ho"}}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_q2","name":"uptime","input":{"verbose":true}}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"sts\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":25}}

event: message_stop
data: {"type":"message_stop"}

"#;

    const ERROR_MID_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_04","type":"message","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}

event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

"#;

    /// Run `stream` through the SSE parser and decoder, `chunk` bytes at a time.
    fn decode(stream: &str, chunk: usize) -> Result<Vec<StreamEvent>, DecodeError> {
        decode_bytes(stream.as_bytes(), chunk)
    }

    fn decode_bytes(stream: &[u8], chunk: usize) -> Result<Vec<StreamEvent>, DecodeError> {
        decode_all(Decoder::new(), stream, chunk)
    }

    fn usage(input_tokens: u64, output_tokens: u64) -> StreamEvent {
        StreamEvent::Usage {
            input_tokens,
            output_tokens,
        }
    }

    fn body_json(req: &ChatRequest) -> Value {
        serde_json::from_slice(&build_body(req)).unwrap()
    }

    #[test]
    fn plain_text_stream() {
        assert_eq!(
            decode(PLAIN, usize::MAX).unwrap(),
            vec![
                text("Bonjour"),
                text(" à tous 👋"),
                StreamEvent::CacheUsage {
                    read_tokens: 4,
                    write_tokens: 0
                },
                usage(35, 9), // 31 fresh + 4 read from cache
                stop(StopReason::EndTurn),
            ]
        );
    }

    #[test]
    fn thinking_with_signature_and_redacted_block() {
        assert_eq!(
            decode(THINKING, usize::MAX).unwrap(),
            vec![
                StreamEvent::ThinkingDelta("Two plus two ".into()),
                StreamEvent::ThinkingDelta("is four.".into()),
                StreamEvent::ThinkingSignature("EqQBCgIYAhIM1gbcDa9GJwZA".into()),
                text("4"),
                usage(12, 40),
                stop(StopReason::MaxTokens),
            ]
        );
    }

    #[test]
    fn tool_use_input_split_mid_token() {
        assert_eq!(
            decode(TOOL_USE, usize::MAX).unwrap(),
            vec![
                text("Checking."),
                StreamEvent::ToolCall {
                    id: "toolu_01X".into(),
                    name: "get_weather".into(),
                    arguments: "{\"location\": \"San Francisco\", \"days\": 12}".into(),
                },
                usage(400, 89),
                stop(StopReason::ToolUse),
            ]
        );
    }

    #[test]
    fn overlapping_blocks_from_llama_cpp() {
        assert_eq!(
            decode(OVERLAPPING, usize::MAX).unwrap(),
            vec![
                text("Let me look."),
                StreamEvent::ToolCall {
                    id: "call_q2".into(),
                    name: "uptime".into(),
                    arguments: "{\"verbose\":true}".into(),
                },
                StreamEvent::ToolCall {
                    id: "call_q1".into(),
                    name: "read_file".into(),
                    arguments: "{\"path\":\"/etc/hosts\"}".into(),
                },
                usage(77, 25),
                stop(StopReason::ToolUse),
            ]
        );
    }

    #[test]
    fn byte_at_a_time_matches_all_at_once() {
        for stream in [PLAIN, THINKING, TOOL_USE, OVERLAPPING] {
            let whole = decode(stream, usize::MAX).unwrap();
            assert_eq!(decode(stream, 1).unwrap(), whole);
            let crlf = stream.replace('\n', "\r\n");
            assert_eq!(decode(&crlf, 2).unwrap(), whole);
        }
    }

    #[test]
    fn every_prefix_is_handled_without_panic() {
        for stream in [PLAIN, THINKING, TOOL_USE, OVERLAPPING] {
            for cut in 0..stream.len() {
                let prefix = &stream.as_bytes()[..cut];
                let prefix_text = String::from_utf8_lossy(prefix);
                let complete = prefix_text.contains("{\"type\":\"message_stop\"}");
                assert_eq!(decode_bytes(prefix, 64).is_ok(), complete, "cut at {}", cut);
            }
        }
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let mut seed: u32 = 0x1234_5678;
        let mut bytes = Vec::new();
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            // bias towards bytes that matter to the parsers
            let b = match (seed >> 16) % 8 {
                0 => b'\n',
                1 => b'{',
                2 => b'"',
                3 => b':',
                _ => (seed >> 8) as u8,
            };
            bytes.push(b);
        }
        let mut sse = SseParser::new(256);
        let mut dec = Decoder::new();
        for piece in bytes.chunks(17) {
            if let Ok(events) = sse.feed(piece) {
                for ev in events {
                    let _ = dec.feed(&ev);
                }
            }
        }
        assert!(dec.finish().is_err());
    }

    #[test]
    fn error_event_mid_stream() {
        let mut sse = SseParser::new(4096);
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        let mut err = None;
        for ev in sse.feed(ERROR_MID_STREAM.as_bytes()).unwrap() {
            match dec.feed(&ev) {
                Ok(evs) => out.extend(evs),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(out, vec![text("Hel")]);
        assert_eq!(
            err,
            Some(DecodeError::Provider {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            })
        );
        // llama.cpp may put an OpenAI-shaped error in the stream
        let ev = SseEvent {
            event: None,
            data: r#"{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}"#.into(),
        };
        assert_eq!(
            Decoder::new().feed(&ev),
            Err(DecodeError::Provider {
                kind: "invalid_request_error".into(),
                message: "bad".into()
            })
        );
    }

    #[test]
    fn garbage_and_invalid_json_are_malformed() {
        let garbage = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_del\n\n";
        assert!(matches!(decode(garbage, 3), Err(DecodeError::Malformed(_))));
        let bad_input = TOOL_USE.replace("\"2}\"", "\"2,}\"");
        match decode(&bad_input, 50) {
            Err(DecodeError::Malformed(m)) => assert!(m.contains("get_weather"), "{}", m),
            other => panic!("expected Malformed, got {:?}", other),
        }
        let orphan = "data: {\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n";
        assert!(matches!(decode(orphan, 8), Err(DecodeError::Malformed(_))));
        let no_index = "data: {\"type\":\"content_block_start\",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
        assert!(matches!(
            decode(no_index, 8),
            Err(DecodeError::Malformed(_))
        ));
        let nameless = "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\"}}\n\n";
        assert!(matches!(
            decode(nameless, 8),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_stream_is_malformed() {
        // cut right before message_stop
        let cut = TOOL_USE.find("event: message_stop").unwrap();
        assert_eq!(
            decode(&TOOL_USE[..cut], 16),
            Err(DecodeError::Malformed(
                "stream ended before completion".into()
            ))
        );
        // cut in the middle of a data line: the partial JSON is malformed
        assert!(matches!(
            decode(&TOOL_USE[..TOOL_USE.len() / 2], 16),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_events_ignored_and_nothing_after_stop() {
        let mut dec = Decoder::new();
        let ev = |data: &str| SseEvent {
            event: None,
            data: data.to_string(),
        };
        assert_eq!(
            dec.feed(&ev(r#"{"type":"brand_new_event","x":1}"#))
                .unwrap(),
            vec![]
        );
        assert_eq!(
            dec.feed(&ev(r#"{"type":"message_stop"}"#)).unwrap(),
            vec![stop(StopReason::EndTurn)]
        );
        assert_eq!(dec.feed(&ev("garbage after the end")).unwrap(), vec![]);
        assert_eq!(dec.finish().unwrap(), vec![]);
    }

    #[test]
    fn tool_input_cap() {
        let mut dec = Decoder::with_max_tool_args(16);
        let start = SseEvent {
            event: None,
            data: r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}"#.into(),
        };
        assert_eq!(dec.feed(&start).unwrap(), vec![]);
        let piece = SseEvent {
            event: None,
            data: r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"k\":\"0123"}}"#.into(),
        };
        assert!(dec.feed(&piece).is_ok());
        assert_eq!(
            dec.feed(&piece),
            Err(DecodeError::TooLarge("tool call arguments"))
        );
    }

    fn conversation() -> ChatRequest {
        ChatRequest {
            model: "claude-sonnet-4-5".into(),
            system: "Be brief.".into(),
            messages: vec![
                Message::text(Role::User, "first"),
                Message::text(Role::User, "second"),
                Message {
                    role: Role::Assistant,
                    parts: vec![
                        Part::Thinking {
                            text: "plan".into(),
                            signature: Some("sig=".into()),
                        },
                        Part::Thinking {
                            text: "from another provider".into(),
                            signature: None,
                        },
                        Part::Text("Looking.".into()),
                        Part::ToolCall {
                            id: "toolu_1".into(),
                            name: "ls".into(),
                            arguments: "{\"dir\":\"/tmp\"}".into(),
                        },
                        Part::ToolCall {
                            id: "toolu_2".into(),
                            name: "cat".into(),
                            arguments: "{broken".into(),
                        },
                    ],
                },
                Message::text(Role::User, "also this"),
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::ToolResult {
                            call_id: "toolu_1".into(),
                            content: "a.txt".into(),
                            is_error: false,
                        },
                        Part::ToolResult {
                            call_id: "toolu_2".into(),
                            content: "no such file".into(),
                            is_error: true,
                        },
                    ],
                },
            ],
            tools: vec![ToolSpec {
                name: "ls".into(),
                description: "List a directory".into(),
                parameters: json!({"type":"object","properties":{"dir":{"type":"string"}}}),
            }],
            max_tokens: 1000,
            temperature: Some(0.2),
            reasoning_budget: None,
            accepts_images: false,
            cache: Default::default(),
        }
    }

    #[test]
    fn body_top_level_and_tools() {
        let v = body_json(&conversation());
        assert_eq!(v["model"], "claude-sonnet-4-5");
        assert_eq!(v["system"], "Be brief.");
        assert_eq!(v["max_tokens"], 1000);
        assert_eq!(v["stream"], true);
        assert_eq!(v["temperature"], json!(0.2));
        assert!(v.get("thinking").is_none());
        assert_eq!(
            v["tools"],
            json!([{"name":"ls","description":"List a directory",
                    "input_schema":{"type":"object","properties":{"dir":{"type":"string"}}}}])
        );
        let bare = ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "hi")],
            max_tokens: 5,
            tools: vec![ToolSpec {
                name: "noargs".into(),
                description: String::new(),
                parameters: Value::Null,
            }],
            ..ChatRequest::default()
        };
        let v = body_json(&bare);
        assert!(v.get("system").is_none());
        assert!(v.get("temperature").is_none());
        assert_eq!(
            v["tools"][0]["input_schema"],
            json!({"type":"object","properties":{}})
        );
    }

    #[test]
    fn body_merges_roles_and_places_tool_blocks() {
        let v = body_json(&conversation());
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3, "{}", v["messages"]);
        assert_eq!(
            msgs[0],
            json!({"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}]})
        );
        assert_eq!(
            msgs[1],
            json!({"role":"assistant","content":[
                {"type":"thinking","thinking":"plan","signature":"sig="},
                {"type":"text","text":"Looking."},
                {"type":"tool_use","id":"toolu_1","name":"ls","input":{"dir":"/tmp"}},
                {"type":"tool_use","id":"toolu_2","name":"cat","input":{}}
            ]})
        );
        // tool results first, then the user's text; is_error only when set
        assert_eq!(
            msgs[2],
            json!({"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":"a.txt"},
                {"type":"tool_result","tool_use_id":"toolu_2","content":"no such file","is_error":true},
                {"type":"text","text":"also this"}
            ]})
        );
    }

    #[test]
    fn body_thinking_budget_raises_max_tokens() {
        let mut req = conversation();
        req.reasoning_budget = Some(4000);
        let v = body_json(&req);
        assert_eq!(
            v["thinking"],
            json!({"type":"enabled","budget_tokens":4000})
        );
        assert_eq!(v["max_tokens"], 5000);
        assert!(v.get("temperature").is_none());
        req.reasoning_budget = Some(10);
        let v = body_json(&req);
        assert_eq!(v["thinking"]["budget_tokens"], MIN_THINKING_BUDGET);
        assert_eq!(v["max_tokens"], 1000 + MIN_THINKING_BUDGET);
    }

    #[test]
    fn body_images_on_and_off() {
        let mut req = ChatRequest {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                parts: vec![
                    Part::Image {
                        media_type: "image/png".into(),
                        data_base64: "iVBORw0KGgo=".into(),
                    },
                    Part::Text("describe".into()),
                ],
            }],
            max_tokens: 100,
            accepts_images: true,
            ..ChatRequest::default()
        };
        let v = body_json(&req);
        assert_eq!(
            v["messages"][0]["content"][0],
            json!({"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}})
        );
        req.accepts_images = false;
        let v = body_json(&req);
        assert_eq!(
            v["messages"][0]["content"],
            json!([{"type":"text","text":IMAGE_PLACEHOLDER},{"type":"text","text":"describe"}])
        );
    }

    #[test]
    fn headers_and_path() {
        assert_eq!(
            url("https://api.minimaxi.com/anthropic"),
            "https://api.minimaxi.com/anthropic/v1/messages"
        );
        assert_eq!(
            url("https://api.anthropic.com/v1/"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/v1/messages"
        );
        assert_eq!(
            url("http://127.0.0.1:8080/v1"),
            "http://127.0.0.1:8080/v1/messages"
        );
        let h = headers(Some("sk-ant-1"), false);
        assert!(h.contains(&("x-api-key".into(), "sk-ant-1".into())));
        assert!(h.contains(&("anthropic-version".into(), "2023-06-01".into())));
        assert!(h.contains(&("accept".into(), "text/event-stream".into())));
        assert!(!h.iter().any(|(k, _)| k == "authorization"));
        let h = headers(Some("tok"), true);
        assert!(h.contains(&("authorization".into(), "Bearer tok".into())));
        assert!(!h.iter().any(|(k, _)| k == "x-api-key"));
        assert!(!headers(None, false)
            .iter()
            .any(|(k, _)| k == "x-api-key" || k == "authorization"));
    }

    #[test]
    fn parse_error_anthropic_and_openai_shapes() {
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_1"}"#;
        let e = parse_error(429, body, Some("30"));
        assert_eq!(
            e.message,
            "rate_limit_error: Number of request tokens has exceeded your per-minute rate limit"
        );
        assert_eq!(e.retry_after_secs, Some(30));
        let llama = br#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#;
        let e = parse_error(400, llama, None);
        assert_eq!(
            e.message,
            "exceed_context_size_error: the request exceeds the available context size"
        );
        assert_eq!(
            parse_error(503, b"Loading model", None).message,
            "Loading model"
        );
    }

    #[test]
    fn cache_breakpoints_on_system_tools_and_newest_turn() {
        let mut req = conversation();
        req.tools = vec![
            ToolSpec {
                name: "a".into(),
                description: "first".into(),
                parameters: json!({"type": "object"}),
            },
            ToolSpec {
                name: "b".into(),
                description: "second".into(),
                parameters: json!({"type": "object"}),
            },
        ];
        let plain = body_json(&req);
        assert_eq!(plain["system"], json!("Be brief."));
        assert!(!plain.to_string().contains("cache_control"));
        req.cache.breakpoints = true;
        let v = body_json(&req);
        let eph = json!({"type": "ephemeral"});
        assert_eq!(
            v["system"],
            json!([{"type": "text", "text": "Be brief.", "cache_control": eph}])
        );
        assert!(v["tools"][0].get("cache_control").is_none());
        assert_eq!(v["tools"][1]["cache_control"], eph);
        let msgs = v["messages"].as_array().unwrap();
        let last = msgs.last().unwrap()["content"].as_array().unwrap();
        assert_eq!(last.last().unwrap()["cache_control"], eph);
        assert_eq!(v.to_string().matches("cache_control").count(), 3);
        // Same request, same bytes.
        assert_eq!(build_body(&req), build_body(&req.clone()));
    }
}
