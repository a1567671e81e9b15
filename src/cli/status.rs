//! `pinch status`: the running gateway's `/status`, printed for people
//! (or as JSON).

use super::{common_args, cron, gateway_endpoint, skills, Global};
use crate::home::Home;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch status [--url URL] [--token T] [--json]\n\nShows version, uptime, memory, sessions, each model's state, scheduled jobs and the heartbeat.";
    let Some((url, token, as_json, args)) = common_args(p, HELP)? else {
        return Ok(0);
    };
    if let Some(extra) = args.first() {
        return Err(format!("unexpected argument {extra:?}\n\n{HELP}"));
    }
    let t = gateway_endpoint(url, token, g, home)?;
    let s = t.get("/status")?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
        return Ok(0);
    }
    println!(
        "pinch {} at {} — up {}s, RSS {} KiB",
        s["version"].as_str().unwrap_or("?"),
        t.http(),
        s["uptimeMs"].as_u64().unwrap_or(0) / 1000,
        s["rssKiB"]
    );
    println!(
        "sessions: {} stored, {} in memory, {} busy; clients: {}",
        s["sessions"]["stored"], s["sessions"]["inMemory"], s["sessions"]["busy"], s["clients"]
    );
    println!(
        "runs: {} in flight, {} total, {} failed",
        s["runs"]["inFlight"], s["runs"]["total"], s["runs"]["failed"]
    );
    println!(
        "primary model: {}",
        s["primaryModel"].as_str().unwrap_or("(none)")
    );
    if let Some(m) = s["models"].as_object() {
        for (k, v) in m {
            let extra = if v["state"] == "ok" {
                String::new()
            } else {
                format!(
                    " (failures {}, cooldown {} ms, last: {})",
                    v["failures"],
                    v["cooldownMs"],
                    v["lastError"].as_str().unwrap_or("")
                )
            };
            println!("  {k}: {}{extra}", v["state"].as_str().unwrap_or("?"));
        }
    }
    let pc = &s["promptCache"];
    if pc.is_object() {
        println!(
            "prompt cache: {} of {} prompt tokens read from cache ({}), {} written; last run: {}",
            pc["readTokens"],
            pc["promptTokens"],
            pc["readShare"],
            pc["writtenTokens"],
            pc["lastRun"]
        );
    }
    // Local model servers, as the gateway's monitor last saw them.
    if let Some(servers) = s["localModels"].as_object() {
        for (id, v) in servers {
            println!(
                "local model server {id}: {}",
                crate::local_llm::status_line(v)
            );
            for w in v["warnings"].as_array().into_iter().flatten() {
                println!("  warning: {}", w.as_str().unwrap_or(""));
            }
        }
    }
    // One line per channel adapter, as `pinch doctor` words it.
    let now = crate::util::now_ms();
    for (name, adapter) in s["channels"]["channels"].as_object().into_iter().flatten() {
        let (summary, _) = crate::doctor::adapter_summary(&adapter["health"], now);
        let pending = adapter["pairingPending"].as_u64().unwrap_or(0);
        let pairing = if pending > 0 {
            format!(" ({pending} pairing requests waiting: `pinch pairing list`)")
        } else {
            String::new()
        };
        println!("adapter {name}: {summary}{pairing}");
    }
    if !s["channels"]["queue"].is_null() {
        println!("delivery queue: {}", s["channels"]["queue"]);
    }
    if s["cron"].is_object() {
        cron::print_status(&s["cron"]);
    }
    skills::print_status(g, home);
    if s["sandbox"].is_object() {
        println!(
            "tool sandbox: {} ({})",
            s["sandbox"]["state"].as_str().unwrap_or("?"),
            s["sandbox"]["kernel"].as_str().unwrap_or("?")
        );
    }
    for w in s["configWarnings"].as_array().into_iter().flatten() {
        println!("config warning: {}", w.as_str().unwrap_or(""));
    }
    let st = &s["storage"];
    if st.is_object() {
        println!(
            "storage: {} of {} MiB{}; schema {}; retention removed {} turns, {} dead letters, {} compactions ({} KiB returned)",
            st["homeBytes"].as_u64().unwrap_or(0) >> 20,
            st["maxBytes"].as_u64().unwrap_or(0) >> 20,
            if st["overBudget"] == true { " (OVER BUDGET)" } else { "" },
            st["schemaVersion"],
            st["removedTotal"]["turns"],
            st["removedTotal"]["deadLetters"],
            st["removedTotal"]["compactions"],
            st["removedTotal"]["freedBytes"].as_u64().unwrap_or(0) >> 10
        );
    }
    Ok(0)
}
