//! The `message` tool: the agent sends a text to one of the targets the
//! owner allowed (`tools.message.allowTargets`), e.g. a job posting its
//! digest to two chats, or "tell me on Telegram when the backup is done".
//! It asks the reactor (`message.send`, through the agent's sink), which
//! checks the allowlist, resolves `"owner"` to the owner's last chat and
//! queues the text in the durable outbound queue like any reply. Offered
//! only when the allowlist is not empty.

use super::{spec, Output, Registry};
use serde_json::{json, Value};
use std::time::Duration;

/// Longest text the tool takes, in bytes (the reactor's bound too).
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// How long the tool waits for the reactor to queue the message.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

impl Registry {
    /// Offers the `message` tool when `allow_targets` names any target and
    /// the reactor is reachable (after [`Registry::enable_cron`]).
    pub fn enable_message(&mut self, allow_targets: &[String]) {
        if allow_targets.is_empty() || self.reactor.is_none() {
            return;
        }
        let targets = allow_targets.join(", ");
        self.add_core(spec(
            "message",
            &format!("Send a text message to someone now (your answer still goes to this conversation). to: one of {targets} (\"owner\": the owner's last-used chat)."),
            json!({"type": "object", "properties": {"to": {"type": "string", "enum": allow_targets}, "text": {"type": "string"}}, "required": ["to", "text"]}),
        ));
    }

    /// Runs a `message` call: checks its arguments, then has the reactor
    /// queue it and waits, bounded, for the answer.
    pub(super) fn message(&self, args: &Value) -> Result<Output, String> {
        let offered = self.specs.iter().any(|s| s.name == "message");
        let reactor = match (&self.reactor, offered) {
            (Some(r), true) => r,
            _ => return Err(
                "the message tool is off: the owner lists targets in tools.message.allowTargets"
                    .into(),
            ),
        };
        let to = args.get("to").and_then(Value::as_str).unwrap_or("").trim();
        let text = args
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if to.is_empty() || text.is_empty() {
            return Err("missing \"to\" or \"text\"".into());
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(format!(
                "text is {} bytes; one message takes at most {MAX_TEXT_BYTES}: shorten it or send it in parts",
                text.len()
            ));
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let asked = reactor(crate::agent::AgentEvent::Query {
            method: "message.send".into(),
            params: json!({"to": to, "text": text}),
            reply,
        });
        if !asked {
            return Err("the gateway is shutting down".into());
        }
        match answer.recv_timeout(ANSWER_WAIT) {
            Ok(Ok(v)) => {
                let chat = v["chat"].as_str().unwrap_or(to);
                Ok(Output::ok(
                    format!("queued for {chat} ({} bytes); it is delivered even if the gateway restarts", text.len()),
                    format!("message to {to} ({} bytes)", text.len()),
                ))
            }
            Ok(Err(e)) => Err(e.message),
            Err(_) => Err("the gateway did not answer in time".into()),
        }
    }
}
