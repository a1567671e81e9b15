//! A fake Discord on 127.0.0.1, written from Discord's documentation: REST
//! v10 (`GET /gateway/bot` naming its own Gateway, `POST
//! /channels/{id}/messages` with rate-limit headers, scripted 429s and
//! `nonce` + `enforce_nonce` (a repeat within minutes returns the first message),
//! `PATCH /channels/{id}/messages/{id}` editing the bot's own message (its
//! own rate-limit bucket; 10008 Unknown Message), `POST
//! /channels/{id}/typing`) and the Gateway v10 WebSocket (Hello,
//! Identify or Resume, heartbeats acked and recorded with their sequence,
//! READY, MESSAGE_CREATE dispatches replayed on Resume, op 7, op 9, close
//! codes, 4014 for a Message Content intent not enabled, and guild messages
//! without their text when that intent was not asked for).
#![allow(dead_code)]

#[path = "fake_server.rs"]
mod fake_server;

use serde_json::{json, Value};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

pub const TOKEN: &str = "MTEwMDAw.fake.discord-token";
pub const BOT_ID: &str = "1100000000000000001";
pub const MESSAGE_CONTENT: u64 = 1 << 15;

/// Something the test asks the current Gateway connection to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Send a close frame with this code.
    Close(u16),
    /// op 7 Reconnect.
    Reconnect,
    /// op 9 Invalid Session with `d`.
    InvalidSession(bool),
}

#[derive(Default)]
pub struct State {
    pub connections: usize,
    /// Every Identify's `d`.
    pub identifies: Vec<Value>,
    /// Every Resume's `d`.
    pub resumes: Vec<Value>,
    /// The `d` of every heartbeat.
    pub heartbeats: Vec<Value>,
    /// Close codes sent by the client.
    pub client_closes: Vec<u16>,
    /// Whether the Message Content intent is enabled for the application
    /// (in the Developer Portal); asking for it otherwise closes with 4014.
    pub message_content_disallowed: bool,
    /// While set, heartbeats get no ACK.
    pub no_ack: bool,
    pub heartbeat_interval: u64,
    /// Intents of the live session.
    pub intents: u64,
    pub session_id: Option<String>,
    /// Sequence of the last dispatch sent.
    pub seq: u64,
    /// Every dispatch of the session with its sequence, for Resume replay.
    pub history: Vec<(u64, Value)>,
    /// Dispatches waiting for a ready connection.
    pub outbox: Vec<Value>,
    /// Commands for the current connection.
    pub commands: Vec<Command>,
    /// Generation of the current connection.
    pub generation: u64,
    pub next_id: u64,
    /// Every message posted: (channel id, body).
    pub posted: Vec<(String, Value)>,
    /// Every message created, as answered (content kept up to date by edits).
    pub messages: Vec<Value>,
    /// Every edit applied: (message id, new content, when).
    pub edits: Vec<(String, String, Instant)>,
    /// Channels typing was posted to.
    pub typing: Vec<String>,
    /// The next this many message posts answer 429 with `retry_after`.
    pub rate_limit_next: usize,
    pub retry_after: f64,
    pub rate_limited: usize,
    /// Times a 429 was answered and the next post came.
    pub post_times: Vec<Instant>,
    /// REST requests with a wrong Authorization header.
    pub unauthorized: usize,
    pub gateway_bot_calls: usize,
    /// Messages created with a nonce: (nonce, when, the message), for
    /// `enforce_nonce` (the bot is the only author posting here).
    pub nonces: Vec<(String, Instant, Value)>,
    /// While set, dispatches get their sequence and go into the session's
    /// history but are not sent (lost with a connection that is dying).
    pub lose_dispatches: bool,
    /// READY or RESUMED answers sent: sessions that became ready.
    pub ready_sessions: usize,
    /// Posts answered with an existing message because of `enforce_nonce`.
    pub nonce_repeats: usize,
}

/// How long Discord checks an enforced nonce for uniqueness ("the past few
/// minutes").
pub const NONCE_WINDOW: Duration = Duration::from_secs(300);

pub struct FakeDiscord {
    pub rest_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeDiscord {
    pub fn start() -> FakeDiscord {
        let rest = TcpListener::bind("127.0.0.1:0").expect("bind");
        let gateway = TcpListener::bind("127.0.0.1:0").expect("bind");
        let (rest_addr, gateway_addr) = (
            rest.local_addr().expect("addr"),
            gateway.local_addr().expect("addr"),
        );
        let state = fake_server::shared(State {
            heartbeat_interval: 1000,
            next_id: 1_200_000_000_000_000_000,
            retry_after: 0.3,
            ..State::default()
        });
        fake_server::serve_each(rest, &state, move |s, st| serve_rest(s, st, gateway_addr));
        fake_server::serve_each(gateway, &state, move |s, st| {
            serve_gateway(s, st, gateway_addr)
        });
        FakeDiscord {
            rest_addr,
            gateway_addr,
            state,
        }
    }

    /// The `apiRoot` to configure (`https://discord.com/api` in production).
    pub fn api_root(&self) -> String {
        format!("http://{}/api", self.rest_addr)
    }

    pub fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway_addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        fake_server::with(&self.state, f)
    }

    /// Waits until `cond` holds (true) or `secs` pass (false).
    pub fn wait(&self, secs: u64, mut cond: impl FnMut(&State) -> bool) -> bool {
        fake_server::wait(&self.state, secs, |s| cond(s)).is_ok()
    }

    pub fn command(&self, c: Command) {
        self.with(|s| s.commands.push(c));
    }

    fn new_id(s: &mut State) -> String {
        s.next_id += 1 << 22;
        s.next_id.to_string()
    }

    /// Queues a direct message from `user` in DM channel `channel`.
    pub fn dm(&self, channel: &str, user: &str, text: &str) -> String {
        self.with(|s| {
            let id = Self::new_id(s);
            s.outbox.push(json!({
                "id": id, "channel_id": channel, "type": 0, "content": text,
                "author": {"id": user, "username": format!("user{user}"), "global_name": "User", "discriminator": "0"},
                "mentions": [], "mention_roles": [], "mention_everyone": false,
                "attachments": [], "embeds": [], "pinned": false, "tts": false,
                "timestamp": "2026-12-01T10:00:00.000000+00:00", "edited_timestamp": null, "flags": 0
            }));
            id
        })
    }

    /// Queues a message in a server channel, mentioning the bot (`<@id>` and
    /// `mentions[]`) when `mention` is set. Without the Message Content
    /// intent its text is withheld unless it mentions the bot, as Discord does.
    pub fn guild(
        &self,
        guild: &str,
        channel: &str,
        user: &str,
        text: &str,
        mention: bool,
    ) -> String {
        self.with(|s| {
            let id = Self::new_id(s);
            let content = if mention { format!("<@{BOT_ID}> {text}") } else { text.to_string() };
            let mentions = if mention {
                json!([{"id": BOT_ID, "username": "pinch", "bot": true, "discriminator": "0"}])
            } else {
                json!([])
            };
            s.outbox.push(json!({
                "id": id, "channel_id": channel, "guild_id": guild, "type": 0, "content": content,
                "author": {"id": user, "username": format!("user{user}"), "global_name": "User", "discriminator": "0"},
                "member": {"roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false},
                "mentions": mentions, "mention_roles": [], "mention_everyone": false,
                "attachments": [], "embeds": [], "pinned": false, "tts": false,
                "timestamp": "2026-12-01T10:00:00.000000+00:00", "edited_timestamp": null, "flags": 0
            }));
            id
        })
    }

    /// Waits for `n` posted messages; panics with what was posted after `secs`.
    pub fn wait_posted(&self, n: usize, secs: u64) -> Vec<(String, Value)> {
        if !self.wait(secs, |s| s.posted.len() >= n) {
            panic!(
                "expected {n} posted messages within {secs} s, got {:?}",
                self.with(|s| s.posted.clone())
            );
        }
        self.with(|s| s.posted.clone())
    }
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &str) -> bool {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).is_ok() && stream.write_all(body.as_bytes()).is_ok()
}

/// One HTTP/1.1 connection, kept alive across requests.
fn serve_rest(mut stream: TcpStream, st: &(Mutex<State>, Condvar), gateway: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(request) = fake_server::read_request(&mut stream, &mut buf) else {
            return;
        };
        let auth = request.header("authorization").unwrap_or("").to_string();
        let fake_server::HttpRequest {
            method, path, body, ..
        } = request;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (m, cv) = st;
        let mut g = m.lock().expect("state");
        if auth != format!("Bot {TOKEN}") {
            g.unauthorized += 1;
            drop(g);
            cv.notify_all();
            if !respond(
                &mut stream,
                401,
                &[],
                r#"{"message": "401: Unauthorized", "code": 0}"#,
            ) {
                return;
            }
            continue;
        }
        let path = path.split('?').next().unwrap_or("").to_string();
        let parts: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
        let ok = match (method.as_str(), parts.as_slice()) {
            ("GET", ["gateway", "bot"]) if path.starts_with("/api/v10/") => {
                g.gateway_bot_calls += 1;
                let b = json!({"url": format!("ws://{gateway}"), "shards": 1,
                    "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}});
                respond(&mut stream, 200, &[], &b.to_string())
            }
            ("POST", ["channels", channel, "messages"]) if path.starts_with("/api/v10/") => {
                let limit_headers = |remaining: u32, reset_after: f64| {
                    vec![
                        ("X-RateLimit-Limit", "5".to_string()),
                        ("X-RateLimit-Remaining", remaining.to_string()),
                        ("X-RateLimit-Reset", "1790000000.000".to_string()),
                        ("X-RateLimit-Reset-After", format!("{reset_after:.3}")),
                        ("X-RateLimit-Bucket", "fake-bucket-messages".to_string()),
                    ]
                };
                g.post_times.push(Instant::now());
                if g.rate_limit_next > 0 {
                    g.rate_limit_next -= 1;
                    g.rate_limited += 1;
                    let ra = g.retry_after;
                    let mut h = limit_headers(0, ra);
                    h.push(("Retry-After", format!("{}", ra.ceil() as u64)));
                    h.push(("X-RateLimit-Scope", "user".to_string()));
                    let b = json!({"message": "You are being rate limited.", "retry_after": ra, "global": false, "code": 0});
                    respond(&mut stream, 429, &h, &b.to_string())
                } else {
                    // nonce: an integer or a string of up to 25 characters.
                    let nonce = match &body["nonce"] {
                        Value::String(n) => Some(n.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    };
                    let enforce = body["enforce_nonce"] == json!(true);
                    let now = Instant::now();
                    g.nonces
                        .retain(|(_, at, _)| now.duration_since(*at) < NONCE_WINDOW);
                    let earlier = match (&nonce, enforce) {
                        (Some(n), true) => g
                            .nonces
                            .iter()
                            .find(|(k, _, _)| k == n)
                            .map(|(_, _, m)| m.clone()),
                        _ => None,
                    };
                    if nonce.as_ref().is_some_and(|n| n.chars().count() > 25) {
                        let b = json!({"message": "Invalid Form Body", "code": 50035,
                            "errors": {"nonce": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]}}});
                        respond(&mut stream, 400, &[], &b.to_string())
                    } else if let Some(msg) = earlier {
                        g.nonce_repeats += 1;
                        respond(&mut stream, 200, &limit_headers(4, 0.05), &msg.to_string())
                    } else {
                        let id = FakeDiscord::new_id(&mut g);
                        g.posted.push((channel.to_string(), body.clone()));
                        let mut msg = json!({"id": id, "channel_id": channel, "type": if body.get("message_reference").is_some() {19} else {0},
                            "content": body["content"], "author": {"id": BOT_ID, "username": "pinch", "bot": true, "discriminator": "0"},
                            "timestamp": "2026-12-01T10:00:01.000000+00:00", "mentions": [], "attachments": [], "embeds": []});
                        if let Some(n) = nonce {
                            msg["nonce"] = body["nonce"].clone();
                            g.nonces.push((n, now, msg.clone()));
                        }
                        g.messages.push(msg.clone());
                        respond(&mut stream, 200, &limit_headers(4, 0.05), &msg.to_string())
                    }
                }
            }
            ("PATCH", ["channels", channel, "messages", id]) if path.starts_with("/api/v10/") => {
                let headers = vec![
                    ("X-RateLimit-Limit", "5".to_string()),
                    ("X-RateLimit-Remaining", "4".to_string()),
                    ("X-RateLimit-Reset-After", "0.050".to_string()),
                    ("X-RateLimit-Bucket", "fake-bucket-edits".to_string()),
                ];
                let content = body["content"].as_str().map(str::to_string);
                let found = g
                    .messages
                    .iter()
                    .position(|m| m["id"] == *id && m["channel_id"] == *channel);
                match (found, content) {
                    (None, _) => respond(
                        &mut stream,
                        404,
                        &headers,
                        r#"{"message": "Unknown Message", "code": 10008}"#,
                    ),
                    (Some(_), Some(c)) if c.chars().count() > 2000 => {
                        let b = json!({"message": "Invalid Form Body", "code": 50035,
                            "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}});
                        respond(&mut stream, 400, &headers, &b.to_string())
                    }
                    (Some(i), content) => {
                        if let Some(c) = &content {
                            g.messages[i]["content"] = c.clone().into();
                            g.edits.push((id.to_string(), c.clone(), Instant::now()));
                        }
                        g.messages[i]["edited_timestamp"] =
                            "2026-12-01T10:00:02.000000+00:00".into();
                        let msg = g.messages[i].clone();
                        respond(&mut stream, 200, &headers, &msg.to_string())
                    }
                }
            }
            ("POST", ["channels", channel, "typing"]) if path.starts_with("/api/v10/") => {
                g.typing.push(channel.to_string());
                respond(&mut stream, 204, &[], "")
            }
            _ => respond(
                &mut stream,
                404,
                &[],
                r#"{"message": "404: Not Found", "code": 0}"#,
            ),
        };
        drop(g);
        cv.notify_all();
        if !ok {
            return;
        }
    }
}

fn send(ws: &mut WebSocket<TcpStream>, v: &Value) -> bool {
    ws.send(Message::text(v.to_string())).is_ok()
}

/// One Gateway connection.
fn serve_gateway(stream: TcpStream, st: &(Mutex<State>, Condvar), gateway: SocketAddr) {
    let raw = match stream.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(_) => return,
    };
    let _ = raw.set_read_timeout(Some(Duration::from_millis(20)));
    let (m, cv) = st;
    let (generation, interval) = {
        let mut g = m.lock().expect("state");
        g.connections += 1;
        g.generation += 1;
        g.commands.clear();
        (g.generation, g.heartbeat_interval)
    };
    cv.notify_all();
    if !send(
        &mut ws,
        &json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null}),
    ) {
        return;
    }
    let mut ready = false;
    loop {
        // what the test asked for, and dispatches waiting
        let mut out: Vec<Value> = Vec::new();
        let mut close: Option<Option<u16>> = None;
        {
            let mut g = m.lock().expect("state");
            if g.generation != generation {
                return;
            }
            for c in std::mem::take(&mut g.commands) {
                match c {
                    Command::Drop => close = Some(None),
                    Command::Close(code) => close = Some(Some(code)),
                    Command::Reconnect => {
                        out.push(json!({"op": 7, "d": null, "s": null, "t": null}))
                    }
                    Command::InvalidSession(r) => {
                        out.push(json!({"op": 9, "d": r, "s": null, "t": null}))
                    }
                }
            }
            if ready && close.is_none() {
                for mut d in std::mem::take(&mut g.outbox) {
                    let mentions_bot = d["mentions"].as_array().is_some_and(|a| !a.is_empty());
                    if d.get("guild_id").is_some()
                        && g.intents & MESSAGE_CONTENT == 0
                        && !mentions_bot
                    {
                        d["content"] = json!("");
                    }
                    g.seq += 1;
                    let ev = json!({"op": 0, "s": g.seq, "t": "MESSAGE_CREATE", "d": d});
                    let seq = g.seq;
                    g.history.push((seq, ev.clone()));
                    if !g.lose_dispatches {
                        out.push(ev);
                    }
                }
            }
        }
        for v in &out {
            if !send(&mut ws, v) {
                return;
            }
        }
        match close {
            Some(None) => {
                let _ = raw.shutdown(Shutdown::Both);
                return;
            }
            Some(Some(code)) => {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                }));
                let _ = ws.flush();
                let _ = raw.shutdown(Shutdown::Write);
                return;
            }
            None => {}
        }
        let frame = match ws.read() {
            Ok(f) => f,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Close(c) => {
                if let Some(c) = c {
                    m.lock()
                        .expect("state")
                        .client_closes
                        .push(u16::from(c.code));
                    cv.notify_all();
                }
                return;
            }
            _ => continue,
        };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut g = m.lock().expect("state");
        let reply: Vec<Value> = match v["op"].as_u64() {
            Some(1) => {
                g.heartbeats.push(v["d"].clone());
                if g.no_ack {
                    vec![]
                } else {
                    vec![json!({"op": 11, "d": null, "s": null, "t": null})]
                }
            }
            Some(2) => {
                g.identifies.push(v["d"].clone());
                let intents = v["d"]["intents"].as_u64().unwrap_or(0);
                if v["d"]["token"] != TOKEN {
                    drop(g);
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::from(4004),
                        reason: "Authentication failed.".into(),
                    }));
                    let _ = ws.flush();
                    cv.notify_all();
                    return;
                }
                if intents & MESSAGE_CONTENT != 0 && g.message_content_disallowed {
                    drop(g);
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::from(4014),
                        reason: "Disallowed intent(s).".into(),
                    }));
                    let _ = ws.flush();
                    cv.notify_all();
                    return;
                }
                g.intents = intents;
                let n = g.identifies.len();
                g.session_id = Some(format!("fake-session-{n}"));
                g.history.clear();
                g.seq += 1;
                g.ready_sessions += 1;
                ready = true;
                vec![json!({"op": 0, "s": g.seq, "t": "READY", "d": {
                    "v": 10, "user": {"id": BOT_ID, "username": "pinch", "bot": true, "discriminator": "0"},
                    "guilds": [], "session_id": g.session_id, "resume_gateway_url": format!("ws://{gateway}"),
                    "application": {"id": BOT_ID, "flags": 0}, "private_channels": [], "relationships": []
                }})]
            }
            Some(6) => {
                g.resumes.push(v["d"].clone());
                let ok = v["d"]["token"] == TOKEN
                    && g.session_id.is_some()
                    && v["d"]["session_id"].as_str() == g.session_id.as_deref();
                if ok {
                    let after = v["d"]["seq"].as_u64().unwrap_or(0);
                    let mut replay: Vec<Value> = g
                        .history
                        .iter()
                        .filter(|(s, _)| *s > after)
                        .map(|(_, e)| e.clone())
                        .collect();
                    g.seq += 1;
                    replay.push(json!({"op": 0, "s": g.seq, "t": "RESUMED", "d": null}));
                    g.ready_sessions += 1;
                    ready = true;
                    replay
                } else {
                    vec![json!({"op": 9, "d": false, "s": null, "t": null})]
                }
            }
            _ => vec![],
        };
        drop(g);
        cv.notify_all();
        for r in &reply {
            if !send(&mut ws, r) {
                return;
            }
        }
    }
}
