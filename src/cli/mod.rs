//! The `pinch` command line: argument parsing (lexopt) and the small clients
//! that talk to a running gateway (`chat` over WebSocket, `status`,
//! `sessions` and `cron` over HTTP). Each command has `--help`; errors say
//! what to do.
//!
//! This file is the dispatcher and the usage text; each command (or group
//! of commands) lives in its own file, the gateway clients in `client.rs`
//! (HTTP) and `ws_client.rs` (WebSocket).

mod backup;
mod chat;
mod client;
mod config_command;
mod config_migrate;
mod cron;
mod gateway;
mod pairing;
mod queue;
mod sessions;
mod skills;
mod status;
mod ws_client;

use client::{encode, gateway_endpoint, GatewayEndpoint};

use crate::config::{self, Loaded};
use crate::home::Home;
use lexopt::prelude::*;
use std::path::PathBuf;

const USAGE: &str = "pinch — a small self-hosted AI assistant gateway

Usage: pinch [--config PATH] <command> [options]

Commands:
  gateway run            run the gateway in the foreground (what systemd runs)
  chat [TEXT]            talk to the assistant (no TEXT: interactive prompt)
  status                 show the running gateway's status
  config check|get|set|explain-route
                         validate, read or change pinch.json
  sessions list|show|reset
                         list, print or delete conversations
  pairing list|approve|reject
                         approve people who asked to talk to the assistant
  queue list|retry|drop  outgoing channel messages and dead letters
  cron add|list|show|edit|remove|run-now
                         scheduled jobs (the gateway must be running)
  backup [FILE]          archive config, .env, workspace and store (gateway may run)
  restore FILE           put a backup back (--to HOME, --force)
  doctor                 check connectivity, exposure, permissions and clock
  skills list|install|remove
                         the skills the assistant can use
  migrate openclaw       carry an OpenClaw home over (config, workspace, skills, jobs, transcripts)
  service install --user|--openrc|print-unit
                         run as a systemd user service or an OpenRC
                         service, or print the unit
  version [--check]      print the version (--check: against update.feedUrl)

Global options:
  --config PATH          config file (default $PINCH_HOME/pinch.json; PINCH_HOME defaults to ~/.pinch)
  -h, --help             help for pinch or for a command

Logging: RUST_LOG=debug pinch gateway run";

struct Global {
    config: Option<PathBuf>,
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    match run() {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("pinch: {msg}");
            1
        }
    }
}

fn init_logging(default: &str) {
    let env = env_logger::Env::default().filter_or("RUST_LOG", default);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

fn run() -> Result<i32, String> {
    let mut p = lexopt::Parser::from_env();
    let mut g = Global { config: None };
    let cmd = loop {
        match p.next().map_err(|e| e.to_string())? {
            Some(Long("config")) => {
                g.config = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?))
            }
            Some(Short('h')) | Some(Long("help")) => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some(Short('V')) | Some(Long("version")) => {
                println!("pinch {}", env!("CARGO_PKG_VERSION"));
                return Ok(0);
            }
            Some(Value(v)) => {
                break v
                    .string()
                    .map_err(|_| "command is not valid UTF-8".to_string())?
            }
            Some(a) => return Err(format!("{}\n\n{USAGE}", a.unexpected())),
            None => {
                println!("{USAGE}");
                return Ok(2);
            }
        }
    };
    let home = Home::from_env();
    match cmd.as_str() {
        "gateway" => gateway::cmd(&mut p, &g, &home),
        "chat" => chat::cmd(&mut p, &g, &home),
        "status" => status::cmd(&mut p, &g, &home),
        "config" => config_command::cmd(&mut p, &g, &home),
        "sessions" => sessions::cmd(&mut p, &g, &home),
        "cron" => cron::cmd(&mut p, &g, &home),
        "backup" => backup::backup(&mut p, &g, &home),
        "restore" => backup::restore(&mut p, &g, &home),
        "doctor" => crate::doctor::cmd(&mut p, g.config.as_deref(), &home),
        "pairing" => pairing::cmd(&mut p, &g, &home),
        "queue" => queue::cmd(&mut p, &g, &home),
        "service" => crate::service::cmd(&mut p, g.config.as_deref(), &home),
        "migrate" => crate::migrate::cmd(&mut p, &home),
        "skills" => skills::cmd(&mut p, &g, &home),
        "version" => config_migrate::version(&mut p, &g, &home),
        other => {
            let near = crate::util::nearest(
                other,
                [
                    "gateway", "chat", "status", "config", "sessions", "cron", "pairing", "queue",
                    "doctor", "service", "version", "migrate", "skills", "backup", "restore",
                ],
            );
            let hint = near
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            Err(format!("unknown command {other:?}{hint}\n\n{USAGE}"))
        }
    }
}

fn load(g: &Global, home: &Home) -> Result<Loaded, String> {
    config::load(home, g.config.as_deref()).map_err(|e| e.to_string())
}

fn val(p: &mut lexopt::Parser) -> Result<String, String> {
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|_| "value is not valid UTF-8".to_string())
}

/// Parses `--url`, `--token`, `--json` and positional arguments.
fn common_args(
    p: &mut lexopt::Parser,
    help: &str,
) -> Result<Option<(Option<String>, Option<String>, bool, Vec<String>)>, String> {
    let (mut url, mut token, mut as_json) = (None, None, false);
    let mut args = Vec::new();
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{help}");
                return Ok(None);
            }
            Long("url") => url = Some(val(p)?),
            Long("token") => token = Some(val(p)?),
            Long("json") => as_json = true,
            Value(v) => args.push(
                v.string()
                    .map_err(|_| "argument is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{help}", other.unexpected())),
        }
    }
    Ok(Some((url, token, as_json, args)))
}

/// One gateway method with its params, as a command's arguments name it.
struct MethodCall {
    method: &'static str,
    params: serde_json::Value,
}

/// A gateway command of the `list` / change kind (`pairing`, `queue`):
/// `method_for` maps the arguments to a call (`None`: the usage, exit 2); a
/// change, or `--json`, prints the answer as JSON, `list` prints it with
/// `show_list`.
fn list_or_change(
    p: &mut lexopt::Parser,
    g: &Global,
    home: &Home,
    help: &str,
    method_for: &dyn Fn(&[&str]) -> Result<Option<MethodCall>, String>,
    show_list: fn(&serde_json::Value),
) -> Result<i32, String> {
    let Some((url, token, as_json, args)) = common_args(p, help)? else {
        return Ok(0);
    };
    let t = gateway_endpoint(url, token, g, home)?;
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(call) = method_for(&words)? else {
        println!("{help}");
        return Ok(2);
    };
    let v = t.call(call.method, call.params)?;
    if as_json || words[0] != "list" {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        show_list(&v);
    }
    Ok(0)
}
