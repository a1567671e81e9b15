//! `pinch sessions`: list, show and reset sessions through the running
//! gateway, or straight from `$PINCH_HOME/state.redb` when none runs.

use super::{common_args, encode, gateway_endpoint, Global};
use crate::home::Home;
use serde_json::{json, Value};

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch sessions <list | show KEY | reset KEY> [--url URL] [--token T] [--json]

Talks to the running gateway of $PINCH_HOME (or --url); when none runs,
reads $PINCH_HOME/state.redb directly.";
    let Some((url, token, as_json, args)) = common_args(p, HELP)? else {
        return Ok(0);
    };
    let t = gateway_endpoint(url, token, g, home)?;
    let (method, path, key) = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => ("GET", "/api/sessions".to_string(), None),
        ["show", k] => (
            "GET",
            format!("/api/sessions/{}", encode(k)),
            Some(k.to_string()),
        ),
        ["reset", k] => (
            "DELETE",
            format!("/api/sessions/{}", encode(k)),
            Some(k.to_string()),
        ),
        _ => {
            println!("{HELP}");
            return Ok(2);
        }
    };
    let v = if t.serves_this_home() {
        t.request(method, &path)?
    } else {
        offline_sessions(home, args[0].as_str(), key.as_deref())?
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    match args[0].as_str() {
        "list" => {
            let list = v["sessions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no sessions yet");
            }
            for s in list {
                println!(
                    "{:<32} {:>5} turns  updated {}  tokens {}/{}",
                    s["key"].as_str().unwrap_or(""),
                    s["nextSeq"],
                    crate::util::rfc3339(s["updatedMs"].as_u64().unwrap_or(0)),
                    s["tokensIn"],
                    s["tokensOut"]
                );
            }
        }
        "show" => {
            for turn in v["turns"].as_array().cloned().unwrap_or_default() {
                let who = turn["role"].as_str().unwrap_or("?");
                let model = turn["model"]
                    .as_str()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                println!(
                    "[{}] {who}{model}: {}",
                    turn["seq"],
                    turn["text"].as_str().unwrap_or("")
                );
            }
        }
        _ => println!(
            "{}",
            if v["reset"] == true {
                "reset"
            } else {
                "no such session"
            }
        ),
    }
    Ok(0)
}

fn offline_sessions(home: &Home, what: &str, key: Option<&str>) -> Result<Value, String> {
    let store = crate::store::Store::open(&home.state())?;
    match (what, key) {
        ("list", _) => {
            Ok(json!({"sessions": crate::api_wire::sessions(&store.list_sessions(1000)?)}))
        }
        ("show", Some(k)) => {
            let turns = store.turns(k, 0, 500)?;
            let items: Vec<Value> = turns
                .iter()
                .map(|(seq, t)| {
                    let shown = crate::agent::prompt::shown_turn(t);
                    json!({"seq": seq, "role": shown.role, "text": shown.text, "model": t.model})
                })
                .collect();
            Ok(json!({"session": k, "turns": items}))
        }
        ("reset", Some(k)) => Ok(json!({"reset": store.reset(k)?})),
        _ => Err("unknown sessions command".into()),
    }
}
