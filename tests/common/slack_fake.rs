//! A fake Slack on 127.0.0.1, written from Slack's Web API and Socket Mode
//! documentation. Web API (HTTP, `{api}/<method>`, bearer tokens):
//! `auth.test` (bot token), `apps.connections.open` (app token; answers a
//! single-use `ws://` URL to the fake's own WebSocket listener) and
//! `chat.postMessage` (bot token; scripted 429 with `Retry-After`; message
//! `metadata`; answers can be held back to play a send whose answer was
//! lost), `chat.update` (the bot's own messages), and `conversations.history`
//! / `conversations.replies` (`oldest`/`latest`/`inclusive`, `limit` with
//! `has_more`, newest first for history and oldest first for a thread,
//! metadata only with `include_all_metadata`) over the conversation as the
//! fake saw it: the users' messages it delivered and the bot's. Message
//! `ts` are taken from the clock, as Slack's are. Socket
//! Mode (WebSocket): `hello` first, then the envelopes a test pushes; acks
//! (`{"envelope_id":…}`) are recorded; `disconnect` frames and abrupt socket
//! drops on demand. Used by `tests/slack.rs` and, with Slack's own Node
//! client, by `tests/slack_conformance.rs`.
#![allow(dead_code)]

use super::fake_server;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const APP_TOKEN: &str = "xapp-1-A0TEST-1-fake";
pub const BOT_TOKEN: &str = "xoxb-1-fake";
pub const BOT_USER: &str = "UBOT0001";
pub const BOT_ID: &str = "BBOT0001";

/// What the current socket should do next.
#[derive(Debug, Clone)]
pub enum Command {
    Frame(String),
    /// A `disconnect` frame with this reason, then the server closes.
    Disconnect(String),
    /// Close the TCP connection without a close frame.
    Drop,
}

/// One `chat.postMessage` accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub text: String,
    pub thread_ts: Option<String>,
    pub at: Instant,
    pub ts: String,
    pub metadata: Option<Value>,
}

/// One `chat.update` applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub at: Instant,
    pub metadata: Option<Value>,
}

/// A message in a conversation, as history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub user: String,
    pub from_bot: bool,
    pub text: String,
    pub metadata: Option<Value>,
}

/// One `conversations.history` / `conversations.replies` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub method: String,
    pub params: Value,
    /// `ts` of the messages answered.
    pub answered: Vec<String>,
}

#[derive(Default)]
pub struct State {
    pub auth_tests: usize,
    /// Tickets handed out by apps.connections.open, and those used.
    pub tickets_issued: u64,
    pub tickets_used: Vec<u64>,
    /// Handshakes refused (reused or unknown ticket).
    pub tickets_refused: usize,
    /// Sockets that completed the handshake, and those still open.
    pub connections: usize,
    pub open_sockets: usize,
    /// Envelope ids acked by the client, in order.
    pub acks: Vec<String>,
    /// Raw text frames the client sent that were not acks.
    pub other_frames: Vec<String>,
    pub posted: Vec<Posted>,
    pub post_attempts: usize,
    /// The next this many posts are taken but never answered (the
    /// connection is held until the client goes away).
    pub hold_answers: usize,
    pub edits: Vec<Edited>,
    /// Every message of every conversation, in ts order.
    pub messages: Vec<Stored>,
    pub lookups: Vec<Lookup>,
    /// Errors (`ok: false`) for the next history/replies calls, in order.
    pub lookup_errors: VecDeque<String>,
    last_ts_us: u64,
    /// Retry-After seconds for the next chat.postMessage calls, taken in order.
    pub rate_limits: VecDeque<u64>,
    pub rate_limited_at: Vec<Instant>,
    /// Commands for the open socket.
    pub commands: VecDeque<Command>,
    /// Requests with a wrong token.
    pub unauthorized: usize,
    next_event: u64,
}

impl State {
    /// A fresh `ts` from the clock (microseconds), always increasing.
    fn new_ts(&mut self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last_ts_us = now.max(self.last_ts_us + 1);
        format!(
            "{}.{:06}",
            self.last_ts_us / 1_000_000,
            self.last_ts_us % 1_000_000
        )
    }

    fn store(&mut self, m: Stored) {
        let at = self
            .messages
            .iter()
            .position(|o| ts_us(&o.ts) > ts_us(&m.ts))
            .unwrap_or(self.messages.len());
        self.messages.insert(at, m);
    }
}

/// A `ts` as microseconds (0 when malformed), for ordering and ranges.
fn ts_us(ts: &str) -> u64 {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let frac = format!("{frac:0<6}");
    secs.parse::<u64>().unwrap_or(0) * 1_000_000 + frac[..6].parse::<u64>().unwrap_or(0)
}

pub struct FakeSlack {
    pub api_addr: SocketAddr,
    pub ws_addr: SocketAddr,
    pub state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeSlack {
    pub fn start() -> FakeSlack {
        let api = TcpListener::bind("127.0.0.1:0").expect("bind api");
        let ws = TcpListener::bind("127.0.0.1:0").expect("bind ws");
        let (api_addr, ws_addr) = (
            api.local_addr().expect("addr"),
            ws.local_addr().expect("addr"),
        );
        let state = fake_server::shared(State::default());
        fake_server::serve_each(api, &state, move |s, st| serve_http(s, st, ws_addr));
        fake_server::serve_each(ws, &state, serve_socket);
        FakeSlack {
            api_addr,
            ws_addr,
            state,
        }
    }

    /// The `apiRoot` to configure: `http://127.0.0.1:<port>/api`.
    pub fn api_root(&self) -> String {
        format!("http://{}/api", self.api_addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        fake_server::with(&self.state, f)
    }

    /// Waits until `cond` holds (or panics after `secs`, showing `what`).
    pub fn wait(&self, secs: u64, what: &str, mut cond: impl FnMut(&State) -> bool) {
        if let Err(g) = fake_server::wait(&self.state, secs, |s| cond(s)) {
            panic!(
                "timed out waiting for {what}: connections {}, open {}, acks {:?}, posted {:?}",
                g.connections, g.open_sockets, g.acks, g.posted
            );
        }
    }

    pub fn wait_posted(&self, n: usize, secs: u64) -> Vec<Posted> {
        self.wait(secs, &format!("{n} posted messages"), |s| {
            s.posted.len() >= n
        });
        self.with(|s| s.posted.clone())
    }

    pub fn wait_ack(&self, envelope_id: &str, secs: u64) {
        self.wait(secs, &format!("the ack of {envelope_id}"), |s| {
            s.acks.iter().any(|a| a == envelope_id)
        });
    }

    /// Waits for the n-th socket to be open and greeted.
    pub fn wait_connected(&self, n: usize, secs: u64) {
        self.wait(secs, &format!("connection #{n}"), |s| {
            s.connections >= n && s.open_sockets >= 1
        });
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.with(|s| s.posted.clone())
    }

    /// Sends a raw envelope on the open socket; a user's message in it
    /// becomes part of its conversation's history.
    pub fn push(&self, envelope: Value) {
        self.with(|s| {
            let e = &envelope["payload"]["event"];
            let text = |k: &str| e[k].as_str().map(str::to_string);
            if let (Some("message"), Some(channel), Some(ts), Some(user)) = (
                e["type"].as_str(),
                text("channel"),
                text("ts"),
                text("user"),
            ) {
                if !s
                    .messages
                    .iter()
                    .any(|m| m.channel == channel && m.ts == ts)
                {
                    s.store(Stored {
                        channel,
                        ts,
                        thread_ts: text("thread_ts"),
                        user,
                        from_bot: false,
                        text: text("text").unwrap_or_default(),
                        metadata: None,
                    });
                }
            }
            s.commands.push_back(Command::Frame(envelope.to_string()))
        });
    }

    /// The text a message shows now (after its edits).
    pub fn text_of(&self, ts: &str) -> Option<String> {
        self.with(|s| {
            s.messages
                .iter()
                .find(|m| m.ts == ts)
                .map(|m| m.text.clone())
        })
    }

    pub fn command(&self, c: Command) {
        self.with(|s| s.commands.push_back(c));
    }

    /// An `events_api` envelope around `event`; returns (envelope_id, event_id).
    pub fn envelope(
        &self,
        event: Value,
        retry_of: Option<&(String, String)>,
    ) -> (String, String, Value) {
        let n = self.with(|s| {
            s.next_event += 1;
            s.next_event
        });
        let envelope_id = format!("env-{n}");
        let event_id = match retry_of {
            Some((_, ev)) => ev.clone(),
            None => format!("Ev{n:08}"),
        };
        let v = json!({
            "envelope_id": envelope_id,
            "payload": {
                "token": "XXYYZZ", "team_id": "T0TEAM", "api_app_id": "A0TEST",
                "event": event, "type": "event_callback", "event_id": event_id,
                "event_time": 1_790_000_000u64,
                "authorizations": [{"enterprise_id": null, "team_id": "T0TEAM", "user_id": BOT_USER, "is_bot": true, "is_enterprise_install": false}],
                "is_ext_shared_channel": false
            },
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": if retry_of.is_some() { 1 } else { 0 },
            "retry_reason": if retry_of.is_some() { "timeout" } else { "" }
        });
        (envelope_id, event_id, v)
    }

    fn next_ts(&self) -> String {
        let n = self.with(|s| {
            s.next_event += 1;
            s.next_event
        });
        format!("1790000000.{n:06}")
    }

    /// A `message.im` event: returns (envelope_id, event_id, ts).
    pub fn dm(&self, channel: &str, user: &str, text: &str) -> (String, String, String) {
        let ts = self.next_ts();
        let event = json!({"client_msg_id": format!("m-{ts}"), "type": "message", "text": text, "user": user, "ts": ts, "team": "T0TEAM", "channel": channel, "event_ts": ts, "channel_type": "im"});
        let (env, ev, v) = self.envelope(event, None);
        self.push(v);
        (env, ev, ts)
    }

    /// A channel post (`message.channels`), optionally mentioning the bot and
    /// in a thread; with a mention Slack also sends `app_mention` for the
    /// same post, as it does for real. Returns the envelope ids and the ts.
    pub fn channel_post(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        mention: bool,
        thread_ts: Option<&str>,
    ) -> (Vec<String>, String) {
        let ts = self.next_ts();
        let text = if mention {
            format!("<@{BOT_USER}> {text}")
        } else {
            text.to_string()
        };
        let mut event = json!({"client_msg_id": format!("m-{ts}"), "type": "message", "text": text, "user": user, "ts": ts, "team": "T0TEAM", "channel": channel, "event_ts": ts, "channel_type": "channel"});
        if let Some(t) = thread_ts {
            event["thread_ts"] = t.into();
        }
        let mut ids = Vec::new();
        let (env, _, v) = self.envelope(event.clone(), None);
        self.push(v);
        ids.push(env);
        if mention {
            let mut m = event;
            m["type"] = "app_mention".into();
            m.as_object_mut().map(|o| o.remove("channel_type"));
            let (env, _, v) = self.envelope(m, None);
            self.push(v);
            ids.push(env);
        }
        (ids, ts)
    }
}

fn respond(stream: &mut TcpStream, status: u16, extra: &str, body: &Value) {
    let b = body.to_string();
    let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len());
}

fn serve_http(mut stream: TcpStream, st: &(Mutex<State>, Condvar), ws_addr: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = fake_server::read_request(&mut stream, &mut Vec::new()) else {
        return;
    };
    let auth = request.header("authorization").unwrap_or("").to_string();
    let fake_server::HttpRequest {
        method,
        path,
        headers,
        body,
    } = request;
    let (m, cv) = st;
    let name = path
        .split('?')
        .next()
        .unwrap_or("")
        .strip_prefix("/api/")
        .unwrap_or("")
        .to_string();
    let want = if name == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if method != "POST" && method != "GET" {
        respond(
            &mut stream,
            405,
            "",
            &json!({"ok": false, "error": "method_not_allowed"}),
        );
        return;
    }
    if auth != format!("Bearer {want}") {
        m.lock().expect("state").unauthorized += 1;
        cv.notify_all();
        let error = if auth.is_empty() {
            "not_authed"
        } else {
            "invalid_auth"
        };
        respond(&mut stream, 200, "", &json!({"ok": false, "error": error}));
        return;
    }
    match name.as_str() {
        "auth.test" => {
            m.lock().expect("state").auth_tests += 1;
            cv.notify_all();
            respond(
                &mut stream,
                200,
                "",
                &json!({"ok": true, "url": "https://fake.slack.test/", "team": "Fake", "user": "pinch", "team_id": "T0TEAM", "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": false}),
            );
        }
        "apps.connections.open" => {
            let ticket = {
                let mut g = m.lock().expect("state");
                g.tickets_issued += 1;
                g.tickets_issued
            };
            cv.notify_all();
            respond(
                &mut stream,
                200,
                "",
                &json!({"ok": true, "url": format!("ws://{ws_addr}/link/?ticket={ticket}&app_id=A0TEST")}),
            );
        }
        "chat.postMessage" => {
            let params = params_of(&path, &headers, &body);
            let mut g = m.lock().expect("state");
            g.post_attempts += 1;
            if let Some(secs) = g.rate_limits.pop_front() {
                g.rate_limited_at.push(Instant::now());
                drop(g);
                cv.notify_all();
                respond(
                    &mut stream,
                    429,
                    &format!("Retry-After: {secs}\r\n"),
                    &json!({"ok": false, "error": "ratelimited"}),
                );
                return;
            }
            let (Some(channel), Some(text)) = (params["channel"].as_str(), params["text"].as_str())
            else {
                drop(g);
                respond(
                    &mut stream,
                    200,
                    "",
                    &json!({"ok": false, "error": "no_text"}),
                );
                return;
            };
            if text.chars().count() > 40_000 {
                drop(g);
                respond(
                    &mut stream,
                    200,
                    "",
                    &json!({"ok": false, "error": "msg_too_long"}),
                );
                return;
            }
            let metadata = match metadata_of(&params) {
                Ok(m) => m,
                Err(e) => {
                    drop(g);
                    respond(&mut stream, 200, "", &json!({"ok": false, "error": e}));
                    return;
                }
            };
            let ts = g.new_ts();
            let thread_ts = params["thread_ts"].as_str().map(str::to_string);
            g.posted.push(Posted {
                channel: channel.to_string(),
                text: text.to_string(),
                thread_ts: thread_ts.clone(),
                at: Instant::now(),
                ts: ts.clone(),
                metadata: metadata.clone(),
            });
            g.store(Stored {
                channel: channel.to_string(),
                ts: ts.clone(),
                thread_ts,
                user: BOT_USER.into(),
                from_bot: true,
                text: text.to_string(),
                metadata,
            });
            let hold = g.hold_answers > 0;
            g.hold_answers = g.hold_answers.saturating_sub(1);
            drop(g);
            cv.notify_all();
            if hold {
                // Taken, never answered: wait for the client to go away.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let until = Instant::now() + Duration::from_secs(60);
                let mut byte = [0u8; 1];
                while Instant::now() < until {
                    match std::io::Read::read(&mut stream, &mut byte) {
                        Ok(0) => return,
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut => {}
                        _ => return,
                    }
                }
                return;
            }
            respond(
                &mut stream,
                200,
                "",
                &json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text, "user": BOT_USER, "bot_id": BOT_ID, "ts": ts}}),
            );
        }
        "chat.update" => {
            let params = params_of(&path, &headers, &body);
            let mut g = m.lock().expect("state");
            let (channel, ts) = (
                params["channel"].as_str().unwrap_or(""),
                params["ts"].as_str().unwrap_or(""),
            );
            let text = params["text"].as_str().unwrap_or("");
            let answer = match (
                g.messages
                    .iter()
                    .position(|m| m.channel == channel && m.ts == ts),
                metadata_of(&params),
            ) {
                _ if channel.is_empty() => json!({"ok": false, "error": "channel_not_found"}),
                _ if text.is_empty() => json!({"ok": false, "error": "no_text"}),
                _ if text.chars().count() > 40_000 => {
                    json!({"ok": false, "error": "msg_too_long"})
                }
                (None, _) => json!({"ok": false, "error": "message_not_found"}),
                (Some(i), _) if !g.messages[i].from_bot => {
                    json!({"ok": false, "error": "cant_update_message"})
                }
                (_, Err(e)) => json!({"ok": false, "error": e}),
                (Some(i), Ok(metadata)) => {
                    let message = &mut g.messages[i];
                    message.text = text.to_string();
                    if metadata.is_some() {
                        message.metadata = metadata.clone();
                    }
                    g.edits.push(Edited {
                        channel: channel.to_string(),
                        ts: ts.to_string(),
                        text: text.to_string(),
                        at: Instant::now(),
                        metadata,
                    });
                    json!({"ok": true, "channel": channel, "ts": ts, "text": text,
                        "message": {"type": "message", "text": text, "user": BOT_USER, "bot_id": BOT_ID, "edited": {"user": BOT_USER, "ts": ts}}})
                }
            };
            drop(g);
            cv.notify_all();
            respond(&mut stream, 200, "", &answer);
        }
        "conversations.history" | "conversations.replies" => {
            let params = params_of(&path, &headers, &body);
            let mut g = m.lock().expect("state");
            let answer = match g.lookup_errors.pop_front() {
                Some(error) => json!({"ok": false, "error": error}),
                None => history(&g.messages, &name, &params),
            };
            let answered = answer["messages"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["ts"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            g.lookups.push(Lookup {
                method: name.clone(),
                params,
                answered,
            });
            drop(g);
            cv.notify_all();
            respond(&mut stream, 200, "", &answer);
        }
        _ => respond(
            &mut stream,
            404,
            "",
            &json!({"ok": false, "error": "unknown_method"}),
        ),
    }
}

/// A method's arguments: a JSON body, or a form body (what Slack's own
/// Node client sends), or the query string of a GET.
fn params_of(path: &str, headers: &[(String, String)], body: &[u8]) -> Value {
    if headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json"))
    {
        return serde_json::from_slice(body).unwrap_or(json!({}));
    }
    match path.split_once('?') {
        Some((_, query)) if body.is_empty() => form(query.as_bytes()),
        _ => form(body),
    }
}

/// A send's `metadata` (an object, or its JSON text in a form): it must
/// have an `event_type` and an object `event_payload`.
fn metadata_of(params: &Value) -> Result<Option<Value>, &'static str> {
    let metadata = match &params["metadata"] {
        Value::Null => return Ok(None),
        Value::String(text) => serde_json::from_str(text).map_err(|_| "invalid_metadata_format")?,
        other => other.clone(),
    };
    match (
        metadata["event_type"].as_str(),
        metadata["event_payload"].is_object(),
    ) {
        (Some(t), true) if !t.is_empty() => Ok(Some(metadata)),
        _ => Err("invalid_metadata_schema"),
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v.as_str(), Some("true") | Some("1")) || v.as_bool() == Some(true)
}

/// A `conversations.history` (top-level messages, newest first) or
/// `conversations.replies` (the thread of `ts`, oldest first) answer.
fn history(messages: &[Stored], method: &str, params: &Value) -> Value {
    let Some(channel) = params["channel"].as_str() else {
        return json!({"ok": false, "error": "channel_not_found"});
    };
    let number = |k: &str| -> Option<u64> {
        match &params[k] {
            Value::String(t) => Some(ts_us(t)),
            Value::Number(n) => n.as_f64().map(|f| (f * 1e6) as u64),
            _ => None,
        }
    };
    let (oldest, latest) = (number("oldest").unwrap_or(0), number("latest"));
    let inclusive = truthy(&params["inclusive"]);
    let limit = params["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .or(params["limit"].as_u64())
        .unwrap_or(if method == "conversations.history" {
            100
        } else {
            1000
        })
        .clamp(1, 999) as usize;
    let in_range = |ts: &str| {
        let t = ts_us(ts);
        let after = if inclusive { t >= oldest } else { t > oldest };
        let before = latest.is_none_or(|l| if inclusive { t <= l } else { t < l });
        after && before
    };
    let mut picked: Vec<&Stored> = if method == "conversations.history" {
        messages
            .iter()
            .rev()
            .filter(|m| m.channel == channel)
            .filter(|m| m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
            .filter(|m| in_range(&m.ts))
            .collect()
    } else {
        let Some(parent) = params["ts"].as_str() else {
            return json!({"ok": false, "error": "thread_not_found"});
        };
        if !messages
            .iter()
            .any(|m| m.channel == channel && m.ts == parent)
        {
            return json!({"ok": false, "error": "thread_not_found"});
        }
        messages
            .iter()
            .filter(|m| m.channel == channel)
            .filter(|m| m.ts == parent || m.thread_ts.as_deref() == Some(parent))
            .filter(|m| m.ts == parent || in_range(&m.ts))
            .collect()
    };
    let has_more = picked.len() > limit;
    picked.truncate(limit);
    let with_metadata = truthy(&params["include_all_metadata"]);
    let shown: Vec<Value> = picked
        .iter()
        .map(|m| {
            let mut v = json!({"type": "message", "user": m.user, "text": m.text, "ts": m.ts});
            if m.from_bot {
                v["bot_id"] = BOT_ID.into();
            }
            if let Some(t) = &m.thread_ts {
                v["thread_ts"] = t.clone().into();
            }
            if let (true, Some(meta)) = (with_metadata, &m.metadata) {
                v["metadata"] = meta.clone();
            }
            v
        })
        .collect();
    json!({"ok": true, "messages": shown, "has_more": has_more, "pin_count": 0,
        "response_metadata": {"next_cursor": if has_more { "bmV4dA==" } else { "" }}})
}

/// An `application/x-www-form-urlencoded` body as a JSON object of strings.
fn form(body: &[u8]) -> Value {
    let mut out = serde_json::Map::new();
    for pair in String::from_utf8_lossy(body).split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), Value::String(decode(v)));
    }
    Value::Object(out)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[allow(clippy::result_large_err)]
fn serve_socket(stream: TcpStream, st: &(Mutex<State>, Condvar)) {
    let (m, cv) = st;
    let check = |req: &tungstenite::handshake::server::Request,
                 resp: tungstenite::handshake::server::Response|
     -> Result<
        tungstenite::handshake::server::Response,
        tungstenite::handshake::server::ErrorResponse,
    > {
        let q = req.uri().query().unwrap_or("");
        let t: Option<u64> = q
            .split('&')
            .find_map(|kv| kv.strip_prefix("ticket="))
            .and_then(|t| t.parse().ok());
        let mut g = m.lock().expect("state");
        match t {
            Some(t) if t <= g.tickets_issued && !g.tickets_used.contains(&t) => {
                g.tickets_used.push(t);
                Ok(resp)
            }
            _ => {
                g.tickets_refused += 1;
                let mut r = tungstenite::handshake::server::ErrorResponse::new(Some(
                    "invalid ticket".into(),
                ));
                *r.status_mut() = tungstenite::http::StatusCode::UNAUTHORIZED;
                Err(r)
            }
        }
    };
    let Ok(raw) = stream.try_clone() else { return };
    let mut ws = match tungstenite::accept_hdr(stream, check) {
        Ok(ws) => ws,
        Err(_) => {
            cv.notify_all();
            return;
        }
    };
    let _ = raw.set_read_timeout(Some(Duration::from_millis(20)));
    let hello = json!({"type": "hello", "num_connections": 1, "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060}, "connection_info": {"app_id": "A0TEST"}});
    if ws
        .send(tungstenite::Message::text(hello.to_string()))
        .is_err()
    {
        return;
    }
    {
        let mut g = m.lock().expect("state");
        g.connections += 1;
        g.open_sockets += 1;
        // Commands queued for an earlier socket that died are not replayed.
    }
    cv.notify_all();
    let mut closing: Option<Instant> = None;
    loop {
        let cmd = m.lock().expect("state").commands.pop_front();
        match cmd {
            Some(Command::Frame(text))
                if ws.send(tungstenite::Message::text(text.clone())).is_err() =>
            {
                break
            }
            Some(Command::Frame(_)) => {}
            Some(Command::Disconnect(reason)) => {
                let f = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}});
                let _ = ws.send(tungstenite::Message::text(f.to_string()));
                closing = Some(Instant::now() + Duration::from_secs(1));
            }
            Some(Command::Drop) => {
                let _ = raw.shutdown(std::net::Shutdown::Both);
                break;
            }
            None => {}
        }
        if closing.is_some_and(|t| Instant::now() > t) {
            let _ = ws.close(None);
            let _ = ws.flush();
            break;
        }
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                let mut g = m.lock().expect("state");
                match v.get("envelope_id").and_then(Value::as_str) {
                    Some(id) => g.acks.push(id.to_string()),
                    None => g.other_frames.push(t.to_string()),
                }
                drop(g);
                cv.notify_all();
            }
            Ok(tungstenite::Message::Close(_)) => {
                // tungstenite queued the reply close frame: send it.
                let _ = ws.flush();
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        let _ = ws.flush();
    }
    m.lock().expect("state").open_sockets -= 1;
    cv.notify_all();
}
