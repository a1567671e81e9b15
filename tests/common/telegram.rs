//! A fake Telegram Bot API on 127.0.0.1, written from the Bot API
//! documentation: `getMe`, `getUpdates` (offset confirms everything before
//! it; long poll waits up to `timeout` seconds for an update), `sendMessage`
//! (4096-character limit, HTML entity parsing errors, scripted 429 with
//! `retry_after` and 5xx), `editMessageText` (unknown message, unchanged
//! text), `sendChatAction`, and a 409 mode. Every call is logged with its
//! time, so tests can check cadences and count calls per answer.
#![allow(dead_code)]

use super::fake_server;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const BOT_ID: i64 = 999;
pub const BOT_NAME: &str = "pinch_test_bot";

#[derive(Default)]
pub struct State {
    /// Updates not yet confirmed by an offset.
    pub updates: Vec<Value>,
    pub next_update_id: i64,
    pub next_message_id: i64,
    /// Every sendMessage accepted: (chat_id, text, parse_mode).
    pub sent: Vec<(String, String, Option<String>)>,
    /// The `message_thread_id` of each accepted sendMessage, in order.
    pub sent_threads: Vec<Option<i64>>,
    /// The `message_thread_id` of each sendChatAction.
    pub typing_threads: Vec<Option<i64>>,
    /// Offsets seen in getUpdates calls.
    pub offsets: Vec<Option<i64>>,
    /// The longest long poll served, seconds (0: 2 s, to keep tests quick).
    pub poll_cap_s: u64,
    /// getUpdates calls parked now, waiting for an update.
    pub parked: usize,
    pub typing: usize,
    /// Scripted sendMessage failures, taken in order: (status, body).
    pub send_failures: Vec<(u16, String)>,
    pub send_attempts: usize,
    pub conflict: bool,
    /// While true, sendMessage answers 502.
    pub down: bool,
    /// Chats whose sendMessage answers 502 (the others are served).
    pub failing_chats: Vec<String>,
    /// sendMessage attempts per chat id, failed ones included.
    pub attempts_by_chat: std::collections::BTreeMap<String, usize>,
    /// Reject HTML markup (as if entities could not be parsed).
    pub reject_html: bool,
    /// The last setMyCommands list.
    pub commands: Value,
    /// Every API call but getUpdates: method and when it arrived.
    pub calls: Vec<(String, Instant)>,
    /// When each sendChatAction arrived.
    pub typing_at: Vec<Instant>,
    /// The message id of each accepted sendMessage, in order.
    pub sent_ids: Vec<i64>,
    /// Every accepted editMessageText: (message_id, text).
    pub edits: Vec<(i64, String)>,
    /// What each message the bot sent shows now (after edits), by id.
    pub texts: std::collections::BTreeMap<i64, String>,
}

pub struct FakeTelegram {
    pub addr: SocketAddr,
    pub state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeTelegram {
    pub fn start() -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = fake_server::shared(State {
            next_update_id: 1000,
            next_message_id: 1,
            ..State::default()
        });
        fake_server::serve_each(listener, &state, serve);
        FakeTelegram { addr, state }
    }

    pub fn api_root(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        fake_server::with(&self.state, f)
    }

    /// Queues a private message from `user` (id) as an update.
    pub fn dm(&self, user: i64, text: &str) -> i64 {
        self.push_message(
            json!({"id": user, "type": "private", "first_name": "U"}),
            user,
            text,
            vec![],
            None,
        )
    }

    /// Queues a group message; `mention` adds an @bot mention entity.
    pub fn group(&self, group: i64, user: i64, text: &str, mention: bool) -> i64 {
        let mut entities = vec![];
        let mut text = text.to_string();
        if mention {
            let m = format!("@{BOT_NAME}");
            entities
                .push(json!({"type": "mention", "offset": 0, "length": m.encode_utf16().count()}));
            text = format!("{m} {text}");
        }
        self.push_message(
            json!({"id": group, "type": "supergroup", "title": "G"}),
            user,
            &text,
            entities,
            None,
        )
    }

    /// Queues a message in forum topic `thread` of supergroup `group`.
    pub fn topic(&self, group: i64, thread: i64, user: i64, text: &str, mention: bool) -> i64 {
        let uid = self.group(group, user, text, mention);
        self.with(|s| {
            if let Some(u) = s.updates.iter_mut().find(|u| u["update_id"] == uid) {
                u["message"]["message_thread_id"] = json!(thread);
                u["message"]["is_topic_message"] = json!(true);
                u["message"]["chat"]["is_forum"] = json!(true);
            }
        });
        uid
    }

    /// Queues a private message from `user` in topic `thread` of the
    /// private chat (Bot API private-chat topics).
    pub fn dm_topic(&self, user: i64, thread: i64, text: &str) -> i64 {
        let uid = self.dm(user, text);
        self.with(|s| {
            if let Some(u) = s.updates.iter_mut().find(|u| u["update_id"] == uid) {
                u["message"]["message_thread_id"] = json!(thread);
                u["message"]["is_topic_message"] = json!(true);
            }
        });
        uid
    }

    fn push_message(
        &self,
        chat: Value,
        user: i64,
        text: &str,
        entities: Vec<Value>,
        reply: Option<Value>,
    ) -> i64 {
        self.with(|s| {
            let uid = s.next_update_id;
            s.next_update_id += 1;
            let mid = s.next_message_id;
            s.next_message_id += 1;
            let mut msg = json!({"message_id": mid, "date": 1_790_000_000, "chat": chat, "from": {"id": user, "is_bot": false, "first_name": "U", "username": format!("user{user}")}, "text": text});
            if !entities.is_empty() {
                msg["entities"] = json!(entities);
            }
            if let Some(r) = reply {
                msg["reply_to_message"] = r;
            }
            s.updates.push(json!({"update_id": uid, "message": msg}));
            uid
        })
    }

    /// Waits until `n` messages were sent (or panics after `secs`).
    pub fn wait_sent(&self, n: usize, secs: u64) -> Vec<(String, String, Option<String>)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let (m, cv) = &*self.state;
        let mut g = m.lock().expect("state");
        while g.sent.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "expected {n} sent messages, got {}: {:?}",
                    g.sent.len(),
                    g.sent
                );
            }
            g = cv.wait_timeout(g, left).expect("wait").0;
        }
        g.sent.clone()
    }

    pub fn sent(&self) -> Vec<(String, String, Option<String>)> {
        self.with(|s| s.sent.clone())
    }

    /// Waits until `condition` holds on the state (or panics after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, mut condition: impl FnMut(&State) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let (m, cv) = &*self.state;
        let mut g = m.lock().expect("state");
        while !condition(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for {what}; calls: {:?}", g.calls);
            }
            g = cv.wait_timeout(g, left).expect("wait").0;
        }
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let b = body.to_string();
    let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len());
}

fn serve(mut stream: TcpStream, st: &(Mutex<State>, Condvar)) {
    let Some(fake_server::HttpRequest {
        path: target, body, ..
    }) = fake_server::read_request(&mut stream, &mut Vec::new())
    else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let Some(rest) = path.strip_prefix(&format!("/bot{TOKEN}/")) else {
        respond(
            &mut stream,
            401,
            &json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        );
        return;
    };
    let params: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let (m, cv) = st;
    if rest != "getUpdates" {
        m.lock()
            .expect("state")
            .calls
            .push((rest.to_string(), Instant::now()));
    }
    match rest {
        "getMe" => respond(
            &mut stream,
            200,
            &json!({"ok": true, "result": {"id": BOT_ID, "is_bot": true, "first_name": "Pinch", "username": BOT_NAME}}),
        ),
        "getUpdates" => {
            let q = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
            };
            let offset: Option<i64> = q("offset").and_then(|v| v.parse().ok());
            let timeout: u64 = q("timeout").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut g = m.lock().expect("state");
            let cap = if g.poll_cap_s == 0 { 2 } else { g.poll_cap_s };
            let deadline = Instant::now() + Duration::from_secs(timeout.min(cap));
            g.offsets.push(offset);
            if g.conflict {
                drop(g);
                respond(
                    &mut stream,
                    409,
                    &json!({"ok": false, "error_code": 409, "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}),
                );
                return;
            }
            if let Some(o) = offset {
                g.updates
                    .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= o);
            }
            g.parked += 1;
            cv.notify_all();
            while g.updates.is_empty() && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                g = cv.wait_timeout(g, left).expect("wait").0;
            }
            g.parked -= 1;
            let result: Vec<Value> = g.updates.iter().take(100).cloned().collect();
            drop(g);
            respond(&mut stream, 200, &json!({"ok": true, "result": result}));
        }
        "setMyCommands" => {
            m.lock().expect("state").commands = params["commands"].clone();
            respond(&mut stream, 200, &json!({"ok": true, "result": true}));
        }
        "sendChatAction" => {
            let mut g = m.lock().expect("state");
            g.typing += 1;
            g.typing_threads.push(params["message_thread_id"].as_i64());
            g.typing_at.push(Instant::now());
            drop(g);
            cv.notify_all();
            respond(&mut stream, 200, &json!({"ok": true, "result": true}));
        }
        "sendMessage" => {
            let mut g = m.lock().expect("state");
            g.send_attempts += 1;
            let text = params["text"].as_str().unwrap_or("").to_string();
            let mode = params["parse_mode"].as_str().map(str::to_string);
            let chat = match &params["chat_id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            *g.attempts_by_chat.entry(chat.clone()).or_default() += 1;
            if g.down || g.failing_chats.contains(&chat) {
                drop(g);
                respond(
                    &mut stream,
                    502,
                    &json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
                );
                return;
            }
            if !g.send_failures.is_empty() {
                let (status, b) = g.send_failures.remove(0);
                drop(g);
                let v: Value = serde_json::from_str(&b).unwrap_or(json!({}));
                respond(&mut stream, status, &v);
                return;
            }
            if text.encode_utf16().count() > 4096 {
                drop(g);
                respond(
                    &mut stream,
                    400,
                    &json!({"ok": false, "error_code": 400, "description": "Bad Request: message is too long"}),
                );
                return;
            }
            if mode.is_some() && g.reject_html {
                drop(g);
                respond(
                    &mut stream,
                    400,
                    &json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: Unsupported start tag \"foo\" at byte offset 0"}),
                );
                return;
            }
            let mid = g.next_message_id;
            g.next_message_id += 1;
            g.texts.insert(mid, text.clone());
            g.sent_ids.push(mid);
            g.sent.push((chat, text, mode));
            g.sent_threads.push(params["message_thread_id"].as_i64());
            drop(g);
            cv.notify_all();
            respond(
                &mut stream,
                200,
                &json!({"ok": true, "result": {"message_id": mid, "date": 1, "chat": {"id": 1, "type": "private"}}}),
            );
        }
        "editMessageText" => {
            let mut g = m.lock().expect("state");
            let id = params["message_id"].as_i64().unwrap_or(0);
            let text = params["text"].as_str().unwrap_or("").to_string();
            let refusal = match g.texts.get(&id) {
                None => Some("Bad Request: message to edit not found"),
                Some(old) if *old == text => Some("Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"),
                Some(_) if text.encode_utf16().count() > 4096 => Some("Bad Request: MESSAGE_TOO_LONG"),
                Some(_) if params["parse_mode"].is_string() && g.reject_html => Some("Bad Request: can't parse entities: Unsupported start tag \"foo\" at byte offset 0"),
                Some(_) => None,
            };
            if let Some(description) = refusal {
                drop(g);
                respond(
                    &mut stream,
                    400,
                    &json!({"ok": false, "error_code": 400, "description": description}),
                );
                return;
            }
            g.texts.insert(id, text.clone());
            g.edits.push((id, text.clone()));
            drop(g);
            cv.notify_all();
            respond(
                &mut stream,
                200,
                &json!({"ok": true, "result": {"message_id": id, "date": 1, "chat": {"id": 1, "type": "private"}, "text": text}}),
            );
        }
        _ => respond(
            &mut stream,
            404,
            &json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        ),
    }
}
