//! A minimal client of the gateway's WebSocket API: `connect` with the
//! token, requests by id, and one chat run streamed to the terminal.

use super::GatewayEndpoint;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// A minimal client of the gateway's WebSocket API.
pub(super) struct WsClient {
    ws: crate::net::websocket::Socket,
    next_id: u64,
}

impl WsClient {
    pub(super) fn connect(t: &GatewayEndpoint) -> Result<WsClient, String> {
        let host = if t.host.contains(':') {
            format!("[{}]", t.host)
        } else {
            t.host.clone()
        };
        let url = format!("ws://{host}:{}/ws", t.port);
        // The local gateway: always direct, whatever proxy the environment names.
        let route = crate::net::Route {
            proxy: crate::net::route::ProxySpec::Direct,
            no_proxy: crate::net::NoProxy::default(),
            ca_file: None,
            source: "the local gateway".into(),
            env: Default::default(),
            env_origin: Default::default(),
            no_proxy_source: None,
        };
        let (mut ws, socket) = crate::net::websocket::connect(&url, &route, Duration::from_secs(5))
            .map_err(|e| t.unreachable(e))?;
        // Replies take as long as the model does.
        let _ = socket.set_read_timeout(None);
        ws.set_max_message(16 << 20);
        let mut c = WsClient { ws, next_id: 1 };
        if let Some(tok) = &t.token {
            let r = c.request("connect", json!({"token": tok}))?;
            if r["ok"] != true {
                return Err(format!(
                    "the gateway refused the token: {}",
                    r["error"]["message"].as_str().unwrap_or("?")
                ));
            }
        }
        Ok(c)
    }

    fn send(&mut self, method: &str, params: Value) -> Result<String, String> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        self.ws
            .send_text(&frame.to_string())
            .map_err(|e| format!("gateway connection lost: {e}"))?;
        Ok(id)
    }

    fn read(&mut self) -> Result<Value, String> {
        use crate::net::websocket::{Incoming, ReadError};
        loop {
            match self.ws.read() {
                Ok(Incoming::Text(t)) => {
                    return serde_json::from_str(&t)
                        .map_err(|e| format!("bad frame from gateway: {e}"))
                }
                Ok(Incoming::Other) | Err(ReadError::Timeout) => {}
                Err(ReadError::Closed(_)) => return Err("the gateway closed the connection".into()),
                Err(ReadError::Failed(e)) => return Err(format!("gateway connection lost: {e}")),
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.send(method, params)?;
        loop {
            let v = self.read()?;
            if v["type"] == "res" && v["id"] == id.as_str() {
                return Ok(v);
            }
        }
    }

    /// Sends one message and prints the streamed reply. Exit code 0 on a
    /// final answer, 1 on a run error.
    pub(super) fn chat(&mut self, session: Option<&str>, text: &str) -> Result<i32, String> {
        let params = match session {
            Some(s) => json!({"session": s, "text": text}),
            None => json!({"text": text}),
        };
        let r = self.request("chat.send", params)?;
        if r["ok"] != true {
            return Err(format!(
                "{}: {}",
                r["error"]["code"].as_str().unwrap_or("error"),
                r["error"]["message"].as_str().unwrap_or("refused")
            ));
        }
        // A command's answer (/status, /new, ...): no run follows.
        if let Some(t) = r["payload"]["text"].as_str() {
            println!("{t}");
        }
        let run = r["payload"]["runId"].clone();
        if run.is_null() {
            return Ok(0);
        }
        let mut out = std::io::stdout();
        loop {
            let v = self.read()?;
            if v["type"] != "event" || v["payload"]["runId"] != run {
                continue;
            }
            let pl = &v["payload"];
            match v["event"].as_str().unwrap_or("") {
                "chat.delta" => {
                    let _ = write!(out, "{}", pl["text"].as_str().unwrap_or(""));
                    let _ = out.flush();
                }
                "chat.tool" if pl["phase"] == "end" => {
                    eprintln!(
                        "[{} {}: {}]",
                        if pl["ok"] == true { "✓" } else { "✗" },
                        pl["name"].as_str().unwrap_or(""),
                        pl["summary"].as_str().unwrap_or("")
                    );
                }
                "chat.restart" => {
                    let _ = writeln!(out);
                    eprintln!(
                        "[model failed ({}); the answer restarts with {}]",
                        pl["reason"].as_str().unwrap_or(""),
                        pl["model"].as_str().unwrap_or("")
                    );
                }
                "chat.final" => {
                    let _ = writeln!(out);
                    eprintln!("— {}", pl["model"].as_str().unwrap_or(""));
                    return Ok(0);
                }
                "chat.error" => {
                    let _ = writeln!(out);
                    eprintln!(
                        "pinch: the run failed: {}",
                        pl["message"].as_str().unwrap_or("unknown error")
                    );
                    return Ok(1);
                }
                _ => {}
            }
        }
    }
}
