//! `pinch pairing`: list, approve and reject pairing codes of unknown
//! senders, through the running gateway.

use super::{list_or_change, Global, MethodCall};
use crate::home::Home;
use serde_json::{json, Value};

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch pairing <list | approve CHANNEL CODE | reject CHANNEL CODE> [--url URL] [--token T] [--json]

Someone unknown who writes to the assistant directly gets an 8-character code
(valid 1 hour). Approving it lets that person talk to the assistant in direct
messages from then on; it never grants access to groups.";
    let method_for = |args: &[&str]| -> Result<Option<MethodCall>, String> {
        let (method, params) = match args {
            ["list"] => ("pairing.list", json!({})),
            ["approve", ch, code] => ("pairing.approve", json!({"channel": ch, "code": code})),
            ["reject", ch, code] => ("pairing.reject", json!({"channel": ch, "code": code})),
            _ => return Ok(None),
        };
        Ok(Some(MethodCall { method, params }))
    };
    list_or_change(p, g, home, HELP, &method_for, show_list)
}

/// `pairing list`: per channel, the pending codes and the approved count.
fn show_list(v: &Value) {
    for (ch, st) in v.as_object().cloned().unwrap_or_default() {
        let pending = st["pending"].as_array().cloned().unwrap_or_default();
        println!(
            "{ch}: {} pending, {} approved",
            pending.len(),
            st["approved"].as_object().map(|m| m.len()).unwrap_or(0)
        );
        for r in pending {
            println!(
                "  {}  from {} ({})",
                r["code"].as_str().unwrap_or("?"),
                r["senderId"].as_str().unwrap_or("?"),
                r["senderName"].as_str().unwrap_or("")
            );
        }
    }
}
