//! The WebSocket API's frames (documented in docs/protocol.md).
//!
//! Client → server: `{"type":"req","id":"1","method":"chat.send","params":{…}}`.
//! Server → client: `{"type":"res","id":"1","ok":true,"payload":{…}}` or
//! `{"type":"res","id":"1","ok":false,"error":{"code":"…","message":"…"}}`, and
//! `{"type":"event","event":"chat.delta","payload":{…}}`. Parsing is pure and
//! bounded: ids and method names have fixed maximum lengths.

use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(rename = "type")]
    pub kind: heapless::String<8>,
    pub id: heapless::String<64>,
    pub method: heapless::String<32>,
    #[serde(default)]
    pub params: Value,
}

/// Parses a text frame into a request, or an error frame to send back.
pub fn parse(text: &str) -> Result<Request, String> {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            // Echo the id back when it can be recovered, so the client can match it.
            let id = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .filter(|id| id.as_str().map(|s| s.len() <= 64).unwrap_or(false))
                .unwrap_or(Value::Null);
            let msg = format!("malformed request: {e}; expected {{\"type\":\"req\",\"id\":\"…\",\"method\":\"…\",\"params\":{{…}}}} (id ≤ 64 bytes, method ≤ 32)");
            return Err(error_frame(&id, "INVALID_REQUEST", &msg));
        }
    };
    if req.kind.as_str() != "req" {
        return Err(error_frame(
            &json!(req.id.as_str()),
            "INVALID_REQUEST",
            "type must be \"req\"",
        ));
    }
    Ok(req)
}

pub fn ok_frame(id: &str, payload: Value) -> String {
    json!({"type": "res", "id": id, "ok": true, "payload": payload}).to_string()
}

pub fn error_frame(id: &Value, code: &str, message: &str) -> String {
    json!({"type": "res", "id": id, "ok": false, "error": {"code": code, "message": message}})
        .to_string()
}

pub fn event_frame(event: &str, payload: Value) -> String {
    json!({"type": "event", "event": event, "payload": payload}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_rejects_bad_ones_with_error_frames() {
        let r = parse(r#"{"type":"req","id":"7","method":"chat.send","params":{"text":"hi"}}"#)
            .expect("ok");
        assert_eq!(r.method.as_str(), "chat.send");
        assert_eq!(r.params["text"], "hi");
        let e = parse("not json").expect_err("bad");
        let v: Value = serde_json::from_str(&e).expect("json");
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "INVALID_REQUEST");
        let long = format!(r#"{{"type":"req","id":"{}","method":"x"}}"#, "a".repeat(65));
        assert!(parse(&long).is_err());
        let e = parse(r#"{"type":"req","id":"9","params":{}}"#).expect_err("no method");
        let v: Value = serde_json::from_str(&e).expect("json");
        assert_eq!(v["id"], "9");
        assert!(parse(r#"{"type":"res","id":"1","method":"x"}"#).is_err());
    }
}
