//! `pinch gateway run`: loads the config, starts logging and runs the
//! gateway in the foreground.

use super::{init_logging, load, val, Global};
use crate::home::Home;
use lexopt::prelude::*;

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
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
