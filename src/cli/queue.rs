//! `pinch queue`: the outgoing delivery queue and its dead letters, through
//! the running gateway (list, retry, drop).

use super::{list_or_change, Global, MethodCall};
use crate::home::Home;
use serde_json::{json, Value};

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch queue <list | retry SEQ | drop SEQ> [--url URL] [--token T] [--json]

list       queued outgoing messages (per chat, in order) and dead letters
retry SEQ  move a dead letter back into the queue
drop SEQ   delete a queued message or a dead letter";
    let seq = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} is not a message number (see `pinch queue list`)"))
    };
    let method_for = |args: &[&str]| -> Result<Option<MethodCall>, String> {
        let (method, params) = match args {
            ["list"] => ("queue.list", json!({})),
            ["retry", s] => ("queue.retry", json!({"seq": seq(s)?})),
            ["drop", s] => ("queue.drop", json!({"seq": seq(s)?})),
            _ => return Ok(None),
        };
        Ok(Some(MethodCall { method, params }))
    };
    list_or_change(p, g, home, HELP, &method_for, show_list)
}

/// `queue list`: the queued messages, then the dead letters.
fn show_list(v: &Value) {
    println!("queue: {}", v["stats"]);
    for m in v["queued"].as_array().cloned().unwrap_or_default() {
        println!(
            "  #{} {}:{} attempts {} {}",
            m["seq"],
            m["outbound"]["channel"].as_str().unwrap_or(""),
            m["outbound"]["chatId"].as_str().unwrap_or(""),
            m["attempts"],
            crate::util::truncate(m["outbound"]["text"].as_str().unwrap_or(""), 60)
        );
    }
    for m in v["dead"].as_array().cloned().unwrap_or_default() {
        println!(
            "  dead #{} {}:{} — {}",
            m["seq"],
            m["outbound"]["channel"].as_str().unwrap_or(""),
            m["outbound"]["chatId"].as_str().unwrap_or(""),
            m["reason"].as_str().unwrap_or("")
        );
    }
}
