//! `pinch cron`: add, list, show, edit, remove and run scheduled jobs
//! through the running gateway's `/api/cron` (the gateway stays the only
//! writer of the job table), and the cron lines of `pinch status`.

use super::{gateway_endpoint, val, GatewayEndpoint, Global};
use crate::home::Home;
use lexopt::prelude::*;
use serde_json::{json, Map, Value};

const HELP: &str = "Usage: pinch cron <command> [options]

Commands:
  add --name NAME SCHEDULE --message TEXT [options]   schedule a job
  list                      name, schedule, next and last run, outcome, duration
  show NAME                 one job in full
  edit NAME [options]       change only what is given (--name NEW renames)
  remove NAME               delete the job
  run-now NAME              run it now; its schedule is unchanged

SCHEDULE, one of:
  --cron \"0 7 * * 1-5\"      minute hour day-of-month month day-of-week
  --tz Europe/Berlin        the time zone of --cron (default: the gateway's)
  --every 30m               an interval (units d, h, m, s; at least 10s)
  --at 2026-12-01T07:00:00+01:00
                            once, at this time (RFC 3339 with an offset)

Options:
  -m, --message TEXT        what the assistant should do when the job runs
  --to telegram:12345       where the answer goes (default: the chat you used last)
  --skill NAME              the prompt starts with \"Use the `NAME` skill.\"
  --model provider/model    the model to try first
  --session own|main        run in the job's own session cron:NAME (default) or in main
  --no-catch-up             after downtime, skip a missed run instead of running it once
  --jitter 30s              start up to this much after the scheduled time (at most 30s)
  --disable, --enable       pause or resume the job
  --url URL, --token T      the gateway (default: from the config)
  --json                    print the gateway's JSON answer

Example:
  pinch cron add --name digest --cron \"0 7 * * 1-5\" --tz Europe/Berlin \\
    --message \"Summarise my unread mail\" --to telegram:12345";

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    let mut words: Vec<String> = Vec::new();
    let mut f = Map::new();
    let (mut url, mut token, mut as_json) = (None, None, false);
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        let key = match &a {
            Long("name") => "name",
            Long("cron") => "cron",
            Long("tz") => "tz",
            Long("every") => "every",
            Long("at") => "at",
            Short('m') | Long("message") => "message",
            Long("to") => "to",
            Long("skill") => "skill",
            Long("model") => "model",
            Long("session") => "session",
            Long("jitter") => "jitter",
            _ => "",
        };
        if !key.is_empty() {
            f.insert(key.into(), json!(val(p)?));
            continue;
        }
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("no-catch-up") => {
                f.insert("catchUp".into(), json!(false));
            }
            Long("catch-up") => {
                f.insert("catchUp".into(), json!(true));
            }
            Long("disable") => {
                f.insert("enabled".into(), json!(false));
            }
            Long("enable") => {
                f.insert("enabled".into(), json!(true));
            }
            Long("url") => url = Some(val(p)?),
            Long("token") => token = Some(val(p)?),
            Long("json") => as_json = true,
            Value(v) => words.push(
                v.string()
                    .map_err(|_| "argument is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let t = gateway_endpoint(url, token, g, home)?;
    let (v, what) = match words.as_slice() {
        ["add"] | ["add", _] => {
            if let [_, name] = words.as_slice() {
                f.entry("name").or_insert(json!(name));
            }
            (
                call(&t, "POST", "/api/cron", Some(Value::Object(f)))?,
                "added",
            )
        }
        ["list"] => (call(&t, "GET", "/api/cron", None)?, "list"),
        ["show", name] => (call(&t, "GET", &job_path(name, ""), None)?, "show"),
        ["edit", name] => {
            if let Some(n) = f.remove("name") {
                f.insert("rename".into(), n);
            }
            if f.is_empty() {
                return Err(format!(
                    "nothing to change: give options such as --every 1h or --message TEXT\n\n{HELP}"
                ));
            }
            let body = Some(Value::Object(f));
            (call(&t, "POST", &job_path(name, ""), body)?, "updated")
        }
        ["remove", name] => (call(&t, "DELETE", &job_path(name, ""), None)?, "removed"),
        ["run-now", name] => (call(&t, "POST", &job_path(name, "/run"), None)?, "run"),
        _ => {
            println!("{HELP}");
            return Ok(2);
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    match what {
        "list" => print_list(&v["jobs"]),
        "show" => {
            for (k, x) in v.as_object().into_iter().flatten() {
                if k == "summary" || x.is_null() {
                    continue;
                }
                let shown = x
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string());
                println!("{k:>10}: {shown}");
            }
        }
        "added" | "updated" => {
            let j = &v["job"];
            println!(
                "{what} {}: {}; next run {}",
                j["name"].as_str().unwrap_or(""),
                j["trigger"].as_str().unwrap_or(""),
                j["nextRun"]
                    .as_str()
                    .map(short_time)
                    .unwrap_or_else(|| "none".into())
            );
        }
        "removed" => println!("removed {}", v["name"].as_str().unwrap_or("")),
        _ => match v["runId"].as_str() {
            Some(run) => println!("started {} (run {run})", v["name"].as_str().unwrap_or("")),
            None => println!(
                "{} did not start: {}",
                v["name"].as_str().unwrap_or(""),
                v["outcome"].as_str().unwrap_or("see `pinch cron list`")
            ),
        },
    }
    Ok(0)
}

fn job_path(name: &str, tail: &str) -> String {
    format!("/api/cron/{}{tail}", super::encode(name))
}

/// One request to the gateway; an error answer becomes its message.
fn call(
    t: &GatewayEndpoint,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let body = if method == "POST" {
        Some(body.unwrap_or_else(|| json!({})))
    } else {
        None
    };
    match t.http_json(method, path, body)? {
        (200, v) => Ok(v),
        (404, v) if v["code"].is_null() => Err(format!(
            "the gateway at {} has no cron API (an older version?)",
            t.http()
        )),
        (_, v) => Err(v["error"]
            .as_str()
            .unwrap_or("the gateway refused the request")
            .to_string()),
    }
}

/// `2026-06-05T07:00:00.000Z` → `2026-06-05 07:00:00Z`.
fn short_time(s: &str) -> String {
    s.replacen('T', " ", 1).replace(".000Z", "Z")
}

fn print_list(jobs: &Value) {
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        println!("no jobs; add one with `pinch cron add` (see `pinch cron --help`)");
        return;
    }
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|j| {
            let time = |k: &str| j[k].as_str().map(short_time).unwrap_or_else(|| "-".into());
            let mut name = j["name"].as_str().unwrap_or("").to_string();
            if j["enabled"] == false {
                name.push_str(" (off)");
            }
            let outcome = if j["running"] == true {
                "running".to_string()
            } else {
                j["outcome"].as_str().unwrap_or("-").to_string()
            };
            let duration = j["durationMs"]
                .as_u64()
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into());
            [
                name,
                j["trigger"].as_str().unwrap_or("").to_string(),
                time("nextRun"),
                time("lastRun"),
                outcome,
                duration,
            ]
        })
        .collect();
    let head = [
        "NAME", "SCHEDULE", "NEXT RUN", "LAST RUN", "OUTCOME", "DURATION",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().take(5).enumerate() {
            w[i] = w[i].max(c.chars().count().min(60));
        }
    }
    let line = |c: [&str; 6]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:<w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        )
    };
    println!("{}", line(head).trim_end());
    for r in &rows {
        let c = [
            r[0].as_str(),
            r[1].as_str(),
            r[2].as_str(),
            r[3].as_str(),
            crate::util::truncate(&r[4], 60),
            r[5].as_str(),
        ];
        println!("{}", line(c));
    }
}

/// The `cron` section of `pinch status`.
pub(super) fn print_status(c: &Value) {
    let jobs = c["jobs"].as_array().cloned().unwrap_or_default();
    println!("cron: {} job(s)", jobs.len());
    for j in &jobs {
        println!(
            "  {}: {}; next {}; last {} ({})",
            j["name"].as_str().unwrap_or(""),
            j["trigger"].as_str().unwrap_or(""),
            j["nextRun"]
                .as_str()
                .map(short_time)
                .unwrap_or_else(|| "-".into()),
            j["lastRun"]
                .as_str()
                .map(short_time)
                .unwrap_or_else(|| "-".into()),
            j["outcome"].as_str().unwrap_or("-")
        );
    }
    let h = &c["heartbeat"];
    if h.is_object() {
        println!(
            "heartbeat: every {}; next {}; last {} ({}); {} beat(s), {} alert(s)",
            h["every"].as_str().unwrap_or("?"),
            h["nextBeat"]
                .as_str()
                .map(short_time)
                .unwrap_or_else(|| "-".into()),
            h["lastBeat"]
                .as_str()
                .map(short_time)
                .unwrap_or_else(|| "-".into()),
            h["lastResult"].as_str().unwrap_or("-"),
            h["beats"],
            h["alerts"]
        );
    }
    if let Some(hooks) = c["hooks"].as_object() {
        for (name, last) in hooks {
            println!("hook {name}: last {}", last.as_str().unwrap_or("never run"));
        }
    }
    if let Some(to) = c["lastChat"].as_str() {
        println!("last chat: {to}");
    }
}
