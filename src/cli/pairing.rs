//! `pinch pairing`: list, approve and reject pairing codes of unknown
//! senders, through the running gateway.

use super::{common_args, gateway_endpoint, Global};
use crate::home::Home;
use serde_json::json;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch pairing <list | approve CHANNEL CODE | reject CHANNEL CODE> [--url URL] [--token T] [--json]

Someone unknown who writes to the assistant directly gets an 8-character code
(valid 1 hour). Approving it lets that person talk to the assistant in direct
messages from then on; it never grants access to groups.";
    let Some((url, token, as_json, args)) = common_args(p, HELP)? else {
        return Ok(0);
    };
    let t = gateway_endpoint(url, token, g, home)?;
    let v = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => t.call("pairing.list", json!({}))?,
        ["approve", ch, code] => t.call("pairing.approve", json!({"channel": ch, "code": code}))?,
        ["reject", ch, code] => t.call("pairing.reject", json!({"channel": ch, "code": code}))?,
        _ => {
            println!("{HELP}");
            return Ok(2);
        }
    };
    if as_json || args[0] != "list" {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
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
    Ok(0)
}
