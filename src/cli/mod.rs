//! The `pinch` command line: argument parsing (lexopt) and the small clients
//! that talk to a running gateway (`chat` over WebSocket, `status`,
//! `sessions` and `cron` over HTTP). Each command has `--help`; errors say
//! what to do.

mod backup;
mod config_migrate;
mod cron;
mod skills;

use crate::config::{self, Loaded};
use crate::home::Home;
use lexopt::prelude::*;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

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
        "gateway" => cmd_gateway(&mut p, &g, &home),
        "chat" => cmd_chat(&mut p, &g, &home),
        "status" => cmd_status(&mut p, &g, &home),
        "config" => cmd_config(&mut p, &g, &home),
        "sessions" => cmd_sessions(&mut p, &g, &home),
        "cron" => cron::cmd(&mut p, &g, &home),
        "backup" => backup::backup(&mut p, &g, &home),
        "restore" => backup::restore(&mut p, &g, &home),
        "doctor" => crate::doctor::cmd(&mut p, g.config.as_deref(), &home),
        "pairing" => cmd_pairing(&mut p, &g, &home),
        "queue" => cmd_queue(&mut p, &g, &home),
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

fn cmd_gateway(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch gateway run [--port N] [--bind loopback|lan|IP]

Runs the gateway in the foreground and logs `listening on ADDR` when ready.
Serves the web chat at /, the WebSocket API at /ws, /healthz and /status.
A bind other than loopback requires gateway.auth.token.";
    let mut sub = None;
    let mut opts = crate::gateway::RunOptions {
        port: None,
        bind: None,
    };
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("port") => {
                opts.port = Some(
                    val(p)?
                        .parse()
                        .map_err(|_| "--port takes a number 0-65535".to_string())?,
                )
            }
            Long("bind") => opts.bind = Some(val(p)?),
            Value(v) if sub.is_none() => sub = v.into_string().ok(),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    if sub.as_deref() != Some("run") {
        println!("{HELP}");
        return Ok(2);
    }
    crate::util::disable_thread_stack_cache();
    let loaded = load(g, home)?;
    init_logging(loaded.cfg.logging.level.as_deref().unwrap_or("info"));
    match &loaded.file {
        Some(f) => log::info!("config: {}", f.display()),
        None => log::info!(
            "config: built-in defaults (no {} yet)",
            home.config().display()
        ),
    }
    for k in &loaded.cfg.ignored {
        log::warn!("config: {}", k.message());
    }
    crate::gateway::run(home, loaded, opts)?;
    Ok(0)
}

/// Where the CLI finds the gateway: --url, else from the config.
struct GatewayEndpoint {
    host: String,
    port: u16,
    token: Option<String>,
}

fn gateway_endpoint(
    url: Option<String>,
    token: Option<String>,
    g: &Global,
    home: &Home,
) -> Result<GatewayEndpoint, String> {
    let loaded = load(g, home).ok();
    let token = token
        .or_else(|| {
            std::env::var("PINCH_GATEWAY_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            loaded
                .as_ref()
                .and_then(|l| l.cfg.gateway.auth.token.clone())
        });
    if let Some(u) = url {
        let rest = u
            .strip_prefix("ws://")
            .or_else(|| u.strip_prefix("http://"))
            .ok_or("--url must start with http:// or ws://")?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or("--url needs a port, like http://127.0.0.1:18789")?;
        return Ok(GatewayEndpoint {
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.parse().map_err(|_| "bad port in --url")?,
            token,
        });
    }
    let cfg = loaded.map(|l| l.cfg).unwrap_or_default();
    let host = match config::parse_bind(&cfg.gateway.bind) {
        Some(ip) if !ip.is_unspecified() => ip.to_string(),
        _ => "127.0.0.1".to_string(),
    };
    Ok(GatewayEndpoint {
        host,
        port: cfg.gateway.port,
        token,
    })
}

impl GatewayEndpoint {
    pub(super) fn http(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
    fn unreachable(&self, e: impl std::fmt::Display) -> String {
        format!("cannot reach the gateway at {}: {e}\n  is it running? start it with `pinch gateway run` (or `systemctl start pinch`)", self.http())
    }
    /// One JSON request to the gateway: (status, body). A missing token
    /// and an unreachable gateway become messages that say what to do.
    pub(crate) fn http_json(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build()
            .into();
        let url = format!("{}{path}", self.http());
        let mut rq = match method {
            "POST" => agent.post(&url).header("Content-Type", "application/json"),
            "DELETE" => agent.delete(&url).force_send_body(),
            _ => agent.get(&url).force_send_body(),
        };
        if let Some(t) = &self.token {
            rq = rq.header("Authorization", &format!("Bearer {t}"));
        }
        let sent = match body {
            Some(b) => rq.send(b.to_string()),
            None => rq.send_empty(),
        };
        let resp = sent.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if status == 401 {
            return Err("the gateway wants a token: pass --token, set PINCH_GATEWAY_TOKEN, or gateway.auth.token in the config".into());
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(json!({"error": text}));
        Ok((status, v))
    }

    /// Calls a reactor method through `POST /api/call`.
    pub(super) fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        match self.http_json(
            "POST",
            "/api/call",
            Some(json!({"method": method, "params": params})),
        )? {
            (200, v) => Ok(v),
            (_, v) => Err(v["error"]
                .as_str()
                .unwrap_or("the gateway refused the call")
                .to_string()),
        }
    }

    pub(super) fn get(&self, path: &str) -> Result<Value, String> {
        self.request("GET", path)
    }

    fn request(&self, method: &str, path: &str) -> Result<Value, String> {
        match self.http_json(method, path, None)? {
            (200, v) => Ok(v),
            (status, v) => Err(format!(
                "HTTP {status}: {}",
                v["error"].as_str().unwrap_or("?")
            )),
        }
    }
}

fn cmd_status(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
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
    for key in ["channels", "queue"] {
        if !s[key].is_null() {
            println!("{key}: {}", s[key]);
        }
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

fn cmd_chat(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str = "Usage: pinch chat [--url URL] [--token T] [--session KEY] [TEXT...]

Sends TEXT to the assistant and prints the reply as it streams. Without TEXT,
reads one message per line from standard input (an interactive prompt on a
terminal). Without --session the gateway picks it: `main` (the owner's one
conversation, shared with the web chat and the owner's direct messages)
under session.dmScope \"main\". In-chat commands work here too: /new, /status,
/model, /think, /compact, /stop, /help, /whoami.";
    let (mut url, mut token, mut session) = (None, None, None);
    let mut words: Vec<String> = Vec::new();
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("url") => url = Some(val(p)?),
            Long("token") => token = Some(val(p)?),
            Long("session") => session = Some(val(p)?),
            Value(v) => words.push(
                v.string()
                    .map_err(|_| "text is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let t = gateway_endpoint(url, token, g, home)?;
    let session = session.as_deref();
    let mut ws = WsClient::connect(&t)?;
    if !words.is_empty() {
        return ws.chat(session, &words.join(" "));
    }
    let stdin = std::io::stdin();
    let tty = std::io::IsTerminal::is_terminal(&stdin);
    let mut code = 0;
    loop {
        if tty {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        code = ws.chat(session, line)?;
    }
    Ok(code)
}

/// A minimal client of the gateway's WebSocket API.
struct WsClient {
    ws: crate::net::websocket::Socket,
    next_id: u64,
}

impl WsClient {
    fn connect(t: &GatewayEndpoint) -> Result<WsClient, String> {
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
    fn chat(&mut self, session: Option<&str>, text: &str) -> Result<i32, String> {
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

fn cmd_config(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch config <check | get PATH | set PATH VALUE | migrate [--dry-run] | explain-route NAME [URL]>

check            validate the config (and .env); exit 1 with the error otherwise
get PATH         print a field as written in the file (secrets shown as ***)
set PATH VALUE   set a field (VALUE is JSON, or a plain string), validate the
                 whole file, write it (previous copy kept as pinch.json.bak)
                 and record the change in logs/config-audit.jsonl
migrate [--dry-run]
                 rewrite renamed keys to their new names (keeps comments;
                 previous copy kept as pinch.json.bak; prints the diff)
explain-route NAME [URL]
                 the network route a provider or channel (or \"webFetch\",
                 \"webSearch\") takes

PATH looks like gateway.port or models.providers.local.models[0].id";
    let mut args: Vec<String> = Vec::new();
    let mut dry_run = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('h') | Long("help") => {
                println!("{HELP}");
                return Ok(0);
            }
            Long("dry-run") => dry_run = true,
            Value(v) => args.push(
                v.string()
                    .map_err(|_| "argument is not valid UTF-8".to_string())?,
            ),
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let file = g.config.clone().unwrap_or_else(|| home.config());
    if args == ["migrate"] {
        return config_migrate::migrate(&file, dry_run);
    }
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check"] => match config::load(home, g.config.as_deref()) {
            Ok(l) => {
                let what = l
                    .file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "built-in defaults".into());
                if let Err(e) = crate::channel::registry::check_config(&l.cfg) {
                    eprintln!("{what}: {e}");
                    return Ok(1);
                }
                for k in &l.cfg.ignored {
                    println!("warning: {} ({what}:{}:{})", k.message(), k.line, k.column);
                }
                println!("ok: {what}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
        ["get", path] => {
            let mut raw = config::read_raw(&file)?;
            config::redact(&mut raw, "");
            match config::get_path(&raw, path)? {
                Some(v) => {
                    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
                    Ok(0)
                }
                None => {
                    eprintln!(
                        "{path} is not set in {} (the built-in default applies)",
                        file.display()
                    );
                    Ok(1)
                }
            }
        }
        ["set", path, value] => {
            home.ensure()?;
            config::set(home, &file, path, value, "cli")?;
            println!("set {path} in {}", file.display());
            Ok(0)
        }
        ["explain-route", name, rest @ ..] => {
            let cfg = load(g, home)?.cfg;
            let (owner, default_url) = if cfg.models.providers.contains_key(*name) {
                (
                    crate::routes::Owner::Provider(name),
                    cfg.models.providers[*name].base_url.clone(),
                )
            } else if *name == "webFetch" {
                (
                    crate::routes::Owner::WebFetch,
                    "https://example.com/".to_string(),
                )
            } else if *name == "webSearch" {
                (
                    crate::routes::Owner::WebSearch,
                    crate::agent::search::base_url(&cfg.tools.web_search),
                )
            } else if cfg.channels.contains_key(*name) || config::CHANNELS.contains(name) {
                let api = cfg
                    .channels
                    .get(*name)
                    .and_then(|c| c.api_root.clone())
                    .unwrap_or_else(|| crate::doctor::channel_default_url(name));
                (crate::routes::Owner::Channel(name), api)
            } else {
                let known: Vec<String> = cfg
                    .models
                    .providers
                    .keys()
                    .cloned()
                    .chain(cfg.channels.keys().cloned())
                    .collect();
                return Err(format!(
                    "{name:?} is neither a provider nor a channel; known: {}, webFetch, webSearch",
                    known.join(", ")
                ));
            };
            let route = crate::routes::route_for(&cfg, owner)?;
            let url = rest.first().map(|s| s.to_string()).unwrap_or(default_url);
            println!("{}", crate::net::explain(&route, &url));
            Ok(0)
        }
        _ => {
            println!("{HELP}");
            Ok(2)
        }
    }
}

fn cmd_sessions(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
    const HELP: &str =
        "Usage: pinch sessions <list | show KEY | reset KEY> [--url URL] [--token T] [--json]

Talks to the running gateway; when none runs, reads $PINCH_HOME/state.redb directly.";
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
    let running = TcpStream::connect_timeout(
        &format!("{}:{}", t.host, t.port)
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], t.port))),
        Duration::from_millis(500),
    )
    .is_ok();
    let v = if running {
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
                    let text: String = t
                        .message
                        .parts
                        .iter()
                        .filter_map(|p| {
                            if let crate::llm::Part::Text(s) = p {
                                Some(s.as_str())
                            } else {
                                None
                            }
                        })
                        .collect();
                    let role = if t.kind == crate::store::TurnKind::Summary {
                        "summary"
                    } else if t.message.role == crate::llm::Role::User {
                        "user"
                    } else {
                        "assistant"
                    };
                    let text = if role == "user" {
                        crate::agent::prompt::strip_envelope(&text).to_string()
                    } else {
                        text
                    };
                    json!({"seq": seq, "role": role, "text": text, "model": t.model})
                })
                .collect();
            Ok(json!({"session": k, "turns": items}))
        }
        ("reset", Some(k)) => Ok(json!({"reset": store.reset(k)?})),
        _ => Err("unknown sessions command".into()),
    }
}

fn encode(s: &str) -> String {
    crate::net::percent::encode(s)
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

fn cmd_pairing(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
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

fn cmd_queue(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
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
