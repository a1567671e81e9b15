//! `pinch queue`: the outgoing delivery queue and its dead letters, through
//! the running gateway (list, retry, drop).

use super::{common_args, gateway_endpoint, Global};
use crate::home::Home;
use serde_json::json;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch queue <list | retry SEQ | drop SEQ> [--url URL] [--token T] [--json]

list       queued outgoing messages (per chat, in order) and dead letters
retry SEQ  move a dead letter back into the queue
drop SEQ   delete a queued message or a dead letter";
    let Some((url, token, as_json, args)) = common_args(p, HELP)? else {
        return Ok(0);
    };
    let t = gateway_endpoint(url, token, g, home)?;
    let seq = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} is not a message number (see `pinch queue list`)"))
    };
    let v = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => t.call("queue.list", json!({}))?,
        ["retry", s] => t.call("queue.retry", json!({"seq": seq(s)?}))?,
        ["drop", s] => t.call("queue.drop", json!({"seq": seq(s)?}))?,
        _ => {
            println!("{HELP}");
            return Ok(2);
        }
    };
    if as_json || args[0] != "list" {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
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
    Ok(0)
}
