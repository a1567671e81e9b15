//! `pinch chat`: sends messages over the gateway's WebSocket API and
//! prints the streamed replies; reads lines from standard input without
//! text on the command line.

use super::ws_client::WsClient;
use super::{gateway_endpoint, val, Global};
use crate::home::Home;
use lexopt::prelude::*;
use std::io::{BufRead, Write};

pub(super) fn cmd(p: &mut lexopt::Parser, g: &Global, home: &Home) -> Result<i32, String> {
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
