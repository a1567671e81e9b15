//! The Discord adapter's I/O shell: a Gateway thread and a REST send thread,
//! both thin. The session logic, parsing, rate limits and splitting are the
//! pure code beside this file; this file moves bytes along the channel's own
//! network route (the shared WebSocket client of `net::websocket`, over
//! rustls, or plain ws:// for a loopback fake) and reports to the reactor through the [`Sink`].
//!
//! The send thread posts queued messages (each part with its nonce), typing
//! beats and drafts: a draft is posted once and edited with `PATCH`, and the
//! final answer's first part edits it.
//!
//! The Gateway thread reads with a socket timeout set to the session's next
//! heartbeat, so one thread serves frames and timers. It never gives up
//! except on the close codes Discord says must not be retried; those stop
//! the adapter with an error in `/status` that says what to change.

use super::codec::{Action, CloseVerdict, Phase, Session};
use super::{format, rest};
use crate::channel::adapter::{
    self, AdapterEvent, AdapterHealth, Handle, SendJob, SendResult, Sink, Start,
};
use crate::channel::envelope::Outbound;
use crate::net::websocket::{Incoming, ReadError, Socket};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

const MAX_BODY: u64 = 1024 * 1024;
/// Largest Gateway message accepted (READY of a bot in many servers is big).
const MAX_FRAME: usize = 4 << 20;
/// Longest wait for a rate-limit bucket inside one send; longer waits go
/// back to the queue as a retry-after.
const MAX_INLINE_WAIT_MS: u64 = 60_000;

struct Settings {
    channel: String,
    account: String,
    token: String,
    api_root: String,
    gateway_url: Option<String>,
    intents: u64,
    allow_bots: bool,
    text_limit: usize,
    max_lines: usize,
    route: crate::net::Route,
}

/// Starts the Discord adapter: checks the settings, spawns its two threads.
pub fn start(s: Start) -> Result<Handle, String> {
    let ch = &s.config;
    let token = ch
        .token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "channels.{}.token is required: put the bot token in $PINCH_HOME/.env as DISCORD_BOT_TOKEN=... and set \"token\": \"$DISCORD_BOT_TOKEN\"",
                s.channel
            )
        })?;
    let settings = Arc::new(Settings {
        channel: s.channel.clone(),
        account: s.account.clone(),
        token,
        api_root: s.api_root(super::DEFAULT_API_ROOT),
        gateway_url: ch.gateway_url.clone(),
        intents: super::intents(ch.intents.as_ref().is_some_and(|i| i.message_content)),
        allow_bots: ch.allow_bots,
        text_limit: ch
            .text_chunk_limit
            .unwrap_or(super::TEXT_LIMIT)
            .clamp(1, super::TEXT_LIMIT),
        max_lines: ch.max_lines_per_message.unwrap_or(super::MAX_LINES),
        route: s.route.clone(),
    });
    let agent = crate::net::agent_for(
        &settings.route,
        &settings.api_root,
        &adapter::api_timeouts(),
    )?;
    let (handle, send_rx) = Handle::new();
    {
        let (s2, sink, stop, agent, cursor) = (
            settings.clone(),
            s.sink.clone(),
            handle.stop.clone(),
            agent.clone(),
            s.cursor.clone(),
        );
        crate::channel::adapter::spawn_thread(
            format!("{}-gateway", settings.channel),
            256,
            move || gateway_loop(&s2, &agent, &sink, &stop, cursor.as_deref()),
        )?;
    }
    {
        let (s2, sink, stop) = (settings.clone(), s.sink, handle.stop.clone());
        crate::channel::adapter::spawn_thread(
            format!("{}-send", settings.channel),
            256,
            move || send_loop(&s2, &agent, send_rx, &sink, &stop),
        )?;
    }
    Ok(handle)
}

fn random() -> u64 {
    crate::util::random_u64()
}

fn now() -> u64 {
    crate::util::now_ms()
}

/// Sleeps until `ms` from now, waking early when asked to stop.
fn pause(ms: u64, stop: &AtomicBool) {
    adapter::sleep_until(now().saturating_add(ms), stop);
}

/// One REST call: status, the headers the limiter reads, the body (capped).
struct Answer {
    status: u16,
    rate: rest::RateInfo,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn call(
    s: &Settings,
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let [(auth_name, auth), (ua_name, ua)] = rest::headers(&s.token);
    let result = if method == "GET" {
        agent
            .get(url)
            .header(auth_name, auth.as_str())
            .header(ua_name, ua.as_str())
            .call()
    } else {
        let builder = if method == "PATCH" {
            agent.patch(url)
        } else {
            agent.post(url)
        };
        builder
            .header(auth_name, auth.as_str())
            .header(ua_name, ua.as_str())
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(b"{}"))
    };
    let resp = result.map_err(|e| super::redact(&e.to_string(), &s.token))?;
    let status = resp.status().as_u16();
    let headers = resp.headers();
    let rate = rest::parse_rate_headers(|k| headers.get(k).and_then(|v| v.to_str().ok()));
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut buf = Vec::new();
    resp.into_body()
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut buf)
        .map_err(|e| super::redact(&e.to_string(), &s.token))?;
    Ok(Answer {
        status,
        rate,
        retry_after,
        body: buf,
    })
}

/// Reports changes of health, and the age of the last event now and then.
struct Health {
    last: AdapterHealth,
    sent_ms: u64,
}

impl Health {
    fn report(
        &mut self,
        sink: &Sink,
        session: &Session,
        state: &'static str,
        detail: &str,
    ) -> bool {
        let t = now();
        let h = AdapterHealth {
            state,
            detail: detail.to_string(),
            last_event_ms: session.last_event_ms(),
            reconnects_today: session.reconnects_today(t),
            failures: session.failures(),
            error: session.fatal().map(str::to_string),
            ..AdapterHealth::default()
        };
        let same_state = h.state == self.last.state
            && h.detail == self.last.detail
            && h.reconnects_today == self.last.reconnects_today;
        if same_state && t.saturating_sub(self.sent_ms) < 10_000 {
            return true;
        }
        self.last = h.clone();
        self.sent_ms = t;
        sink(AdapterEvent::Health(h))
    }
}

/// `cursor`: the session stored with the last committed message (or at the
/// last READY), resumed on the first connection when fresh enough.
fn gateway_loop(
    s: &Settings,
    agent: &ureq::Agent,
    sink: &Sink,
    stop: &AtomicBool,
    cursor: Option<&str>,
) {
    let mut session = Session::new(&s.token, s.intents);
    let mut health = Health {
        last: AdapterHealth::default(),
        sent_ms: 0,
    };
    let mut base_url = s.gateway_url.clone();
    let mut resume = cursor.is_some_and(|c| session.restore(c, now()));
    if resume {
        log::info!("{}: resuming the stored Gateway session", s.channel);
    }
    while !stop.load(Ordering::Relaxed) {
        if base_url.is_none() {
            match call(s, agent, "GET", &rest::gateway_bot_url(&s.api_root), None) {
                Ok(a) if a.status == 200 => match rest::parse_gateway_bot(&a.body) {
                    Ok(u) => base_url = Some(u),
                    Err(e) => log::warn!("{}: {e}", s.channel),
                },
                Ok(a) => {
                    let why = match rest::classify(a.status, &a.body, a.retry_after.as_deref()) {
                        rest::Outcome::Permanent(e) | rest::Outcome::Transient(e) => e,
                        other => format!("{other:?}"),
                    };
                    log::warn!("{}: GET /gateway/bot: {why}", s.channel);
                    if !health.report(sink, &session, "down", &why) {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("{}: GET /gateway/bot: {e}", s.channel);
                    if !health.report(sink, &session, "down", &e) {
                        return;
                    }
                }
            }
            if base_url.is_none() {
                pause(session.on_connect_failed(random()), stop);
                continue;
            }
        }
        let default_url = base_url.clone().unwrap_or_default();
        let url = session.connect_url(&default_url, resume);
        let (ws, socket) = match connect(s, &url) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("{}: cannot connect to the Gateway: {e}", s.channel);
                if !health.report(sink, &session, "down", &e) {
                    return;
                }
                pause(session.on_connect_failed(random()), stop);
                continue;
            }
        };
        session.on_connected(resume, now());
        let ended = run_connection(s, &mut session, ws, &socket, sink, stop, &mut health);
        let _ = socket.shutdown(Shutdown::Both);
        match ended {
            Ended::Stop => return,
            Ended::Reconnect {
                resume: r,
                after_ms,
                why,
            } => {
                log::info!(
                    "{}: {why}; reconnecting ({})",
                    s.channel,
                    if r { "resume" } else { "new session" }
                );
                if !health.report(sink, &session, "down", &why) {
                    return;
                }
                resume = r;
                pause(after_ms, stop);
            }
            Ended::Fatal(e) => {
                log::error!("{}: {e}", s.channel);
                health.report(sink, &session, "error", &e);
                // Not retried: wait for the gateway to stop the adapter.
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                }
                return;
            }
        }
    }
}

fn connect(s: &Settings, url: &str) -> Result<(Socket, TcpStream), String> {
    let (mut ws, socket) = crate::net::websocket::connect(url, &s.route, Duration::from_secs(15))?;
    ws.set_max_message(MAX_FRAME);
    Ok((ws, socket))
}

enum Ended {
    Stop,
    Reconnect {
        resume: bool,
        after_ms: u64,
        why: String,
    },
    Fatal(String),
}

/// Serves one connection until it ends.
fn run_connection(
    s: &Settings,
    session: &mut Session,
    mut ws: Socket,
    socket: &TcpStream,
    sink: &Sink,
    stop: &AtomicBool,
    health: &mut Health,
) -> Ended {
    loop {
        if stop.load(Ordering::Relaxed) {
            // 4000, not 1000/1001: the session stays resumable for the
            // restart that usually follows a stop.
            ws.close_with(Some(4000));
            return Ended::Stop;
        }
        // Wake for the next heartbeat (and to notice a stop).
        let wait = session
            .next_deadline()
            .map(|d| d.saturating_sub(now()))
            .unwrap_or(1000)
            .clamp(10, 1000);
        let _ = socket.set_read_timeout(Some(Duration::from_millis(wait)));
        let actions = match ws.read() {
            Ok(Incoming::Text(t)) => session.on_frame(&t, now(), random()),
            Ok(Incoming::Other) => Vec::new(),
            Err(ReadError::Timeout) => session.on_tick(now()),
            Err(ReadError::Closed(why)) => {
                log::debug!("{}: gateway closed: {why}", s.channel);
                return closed(session, ws.close_code());
            }
            Err(ReadError::Failed(e)) => {
                log::debug!("{}: gateway read: {e}", s.channel);
                return closed(session, None);
            }
        };
        for action in actions {
            match action {
                Action::Send(text) => {
                    if let Err(e) = ws.send_text(&text) {
                        log::debug!("{}: gateway send: {e}", s.channel);
                        return closed(session, None);
                    }
                }
                Action::Ready { resumed } => {
                    log::info!(
                        "{}: Gateway session {} (bot {})",
                        s.channel,
                        if resumed { "resumed" } else { "ready" },
                        session.bot_id().unwrap_or("?")
                    );
                    if !health.report(sink, session, "up", "connected")
                        || !store_session(session, sink)
                    {
                        return Ended::Stop;
                    }
                }
                Action::Dispatch { kind, data } => {
                    if kind == "MESSAGE_CREATE" && !deliver(s, session, &data, sink) {
                        return Ended::Stop;
                    }
                }
                Action::Reconnect {
                    resume,
                    after_ms,
                    why,
                } => {
                    // 4000: not a normal closure, so the session stays resumable.
                    ws.close_with(Some(4000));
                    return Ended::Reconnect {
                        resume,
                        after_ms,
                        why,
                    };
                }
            }
        }
        if session.phase() == Phase::Ready && !health.report(sink, session, "up", "connected") {
            return Ended::Stop;
        }
    }
}

fn closed(session: &mut Session, code: Option<u16>) -> Ended {
    match session.on_close(code, now(), random()) {
        CloseVerdict::Fatal(e) => Ended::Fatal(e),
        CloseVerdict::Reconnect {
            resume,
            after_ms,
            why,
        } => Ended::Reconnect {
            resume,
            after_ms,
            why,
        },
    }
}

/// Has the session committed as the adapter's cursor (at READY / RESUMED),
/// so a restart resumes it even before a message arrives. False when the
/// reactor is gone.
fn store_session(session: &Session, sink: &Sink) -> bool {
    let (ack, _) = sync_channel(1);
    sink(AdapterEvent::Inbound {
        envelopes: Vec::new(),
        cursor: session.cursor(now()),
        ack,
    })
}

/// Hands one message to the reactor, with the session as the cursor (its
/// sequence is this message's), and waits for its commit. False when the
/// reactor is gone.
fn deliver(s: &Settings, session: &Session, data: &Value, sink: &Sink) -> bool {
    let Some(bot) = session.bot_id() else {
        return true;
    };
    let env = match super::parse_message(data, bot, &s.account, s.allow_bots) {
        Ok(env) => env,
        Err(skip) => {
            log::debug!("{}: message skipped: {skip:?}", s.channel);
            return true;
        }
    };
    let (ack_tx, ack_rx) = sync_channel(1);
    let ev = AdapterEvent::Inbound {
        envelopes: vec![env],
        cursor: session.cursor(now()),
        ack: ack_tx,
    };
    if !sink(ev) {
        return false;
    }
    if !matches!(ack_rx.recv_timeout(Duration::from_secs(10)), Ok(true)) {
        log::error!(
            "{}: a message could not be committed to the inbox",
            s.channel
        );
    }
    true
}

/// The send thread's state: the limiter, the parts of queued messages
/// already delivered (a retry goes on from there) and the drafts on screen.
#[derive(Default)]
struct Sender {
    limiter: rest::Limiter,
    progress: HashMap<u64, usize>,
    drafts: adapter::Drafts,
}

fn send_loop(
    s: &Settings,
    agent: &ureq::Agent,
    rx: Receiver<SendJob>,
    sink: &Sink,
    stop: &AtomicBool,
) {
    let mut sender = Sender::default();
    while !stop.load(Ordering::Relaxed) {
        // No timeout: the reactor drops its sender when the adapter
        // stops, which ends the wait; an idle sender never wakes.
        let job = match rx.recv() {
            Ok(job) => Some(job),
            Err(_) => return,
        };
        match job {
            Some(SendJob::Typing { target }) => {
                typing(s, agent, &mut sender.limiter, &target.chat_id)
            }
            Some(SendJob::Message { seq, out, .. }) => {
                let result = send_message(s, agent, &mut sender, seq, &out, stop);
                if !matches!(result, SendResult::Retry { .. }) {
                    sender.progress.remove(&seq);
                }
                if sender.progress.len() > 64 {
                    sender.progress.clear();
                }
                if !sink(AdapterEvent::Sent { seq, result }) {
                    return;
                }
            }
            Some(SendJob::Draft { out }) => draft(s, agent, &mut sender, &out, stop),
            None => {}
        }
    }
}

/// Shows a draft: a new message the first time, an edit afterwards (its
/// first part only). Best effort: skipped while its route is rate limited.
fn draft(
    s: &Settings,
    agent: &ureq::Agent,
    sender: &mut Sender,
    out: &Outbound,
    stop: &AtomicBool,
) {
    let Some(name) = out.edit.as_ref() else {
        return;
    };
    let Some(part) = format::render(&out.text, s.text_limit, s.max_lines)
        .into_iter()
        .next()
    else {
        return;
    };
    let known = sender.drafts.get(name);
    if known.is_some_and(|d| d.text == part) {
        return;
    }
    let (url, route, body) = match known {
        Some(d) => rest::edit_message(&s.api_root, &out.chat_id, &d.message_id, &part),
        None => {
            rest::create_message_plain(&s.api_root, &out.chat_id, &part, out.reply_to.as_deref())
        }
    };
    let method = if known.is_some() { "PATCH" } else { "POST" };
    let message_id = match request(
        s,
        agent,
        &mut sender.limiter,
        method,
        &url,
        &route,
        &body,
        false,
        stop,
    ) {
        Ok(answer) => known
            .map(|d| d.message_id.clone())
            .or_else(|| rest::message_id(&answer)),
        Err(_) => {
            log::debug!("{}: a draft was not shown", s.channel);
            return;
        }
    };
    if let Some(message_id) = message_id {
        sender.drafts.remember(name, message_id, part);
    }
}

/// One REST request through the limiter: waits for its bucket and retries
/// 429s (up to 5 tries) when `patient`, gives up at once otherwise. The
/// answer's body on success; what the queue should do on failure.
#[allow(clippy::too_many_arguments)]
fn request(
    s: &Settings,
    agent: &ureq::Agent,
    limiter: &mut rest::Limiter,
    method: &str,
    url: &str,
    route: &str,
    body: &[u8],
    patient: bool,
    stop: &AtomicBool,
) -> Result<Vec<u8>, SendResult> {
    let mut attempts = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(SendResult::Retry {
                after_s: None,
                error: "stopping".into(),
            });
        }
        let wait = limiter.wait_ms(route, now());
        if wait > MAX_INLINE_WAIT_MS || (wait > 0 && !patient) {
            return Err(SendResult::Retry {
                after_s: Some(wait.div_ceil(1000)),
                error: format!("rate limited for {wait} ms"),
            });
        }
        pause(wait, stop);
        attempts += 1;
        let answer =
            call(s, agent, method, url, Some(body)).map_err(|error| SendResult::Retry {
                after_s: None,
                error,
            })?;
        limiter.on_response(route, &answer.rate, now());
        match rest::classify(answer.status, &answer.body, answer.retry_after.as_deref()) {
            rest::Outcome::Ok => return Ok(answer.body),
            rest::Outcome::RateLimited {
                retry_after_ms,
                global,
            } => {
                log::info!("{}: 429, retrying after {retry_after_ms} ms", s.channel);
                limiter.on_429(route, retry_after_ms, global, now());
                if attempts >= 5 || !patient {
                    return Err(SendResult::Retry {
                        after_s: Some(retry_after_ms.div_ceil(1000)),
                        error: "rate limited (429)".into(),
                    });
                }
            }
            rest::Outcome::Transient(error) => {
                return Err(SendResult::Retry {
                    after_s: None,
                    error,
                })
            }
            rest::Outcome::Permanent(e) => return Err(SendResult::Permanent(e)),
        }
    }
}

/// One typing beat (the runtime repeats it while a run is in flight),
/// skipped while the route is rate limited.
fn typing(s: &Settings, agent: &ureq::Agent, limiter: &mut rest::Limiter, chat: &str) {
    let t = now();
    let (url, route) = rest::typing(&s.api_root, chat);
    if limiter.wait_ms(&route, t) > 0 {
        return;
    }
    match call(s, agent, "POST", &url, None) {
        Ok(a) => {
            limiter.on_response(&route, &a.rate, now());
            if let rest::Outcome::RateLimited {
                retry_after_ms,
                global,
            } = rest::classify(a.status, &a.body, a.retry_after.as_deref())
            {
                limiter.on_429(&route, retry_after_ms, global, now());
            }
        }
        Err(e) => log::debug!("{}: typing: {e}", s.channel),
    }
}

/// Sends the Discord messages of one queued chunk, in order, from where a
/// previous attempt stopped. A chunk naming a known draft edits it with its
/// first part (a new message if the draft is gone); the rest follow as new
/// messages.
fn send_message(
    s: &Settings,
    agent: &ureq::Agent,
    sender: &mut Sender,
    seq: u64,
    out: &Outbound,
    stop: &AtomicBool,
) -> SendResult {
    let parts = format::render(&out.text, s.text_limit, s.max_lines);
    let first = sender.progress.get(&seq).copied().unwrap_or(0);
    let draft = out
        .edit
        .as_ref()
        .and_then(|name| sender.drafts.get(name))
        .map(|d| d.message_id.clone());
    for (index, part) in parts.iter().enumerate().skip(first) {
        if let (0, Some(message_id)) = (index, &draft) {
            let (url, route, body) =
                rest::edit_message(&s.api_root, &out.chat_id, message_id, part);
            match request(
                s,
                agent,
                &mut sender.limiter,
                "PATCH",
                &url,
                &route,
                &body,
                true,
                stop,
            ) {
                Ok(_) => {
                    sender.progress.insert(seq, 1);
                    continue;
                }
                Err(SendResult::Permanent(e)) => {
                    log::info!(
                        "{}: the draft could not be edited ({e}); sending anew",
                        s.channel
                    );
                }
                Err(other) => return other,
            }
        }
        let reply_to = if index == 0 {
            out.reply_to.as_deref()
        } else {
            None
        };
        let nonce = rest::nonce(seq, index);
        let (url, route, body) =
            rest::create_message(&s.api_root, &out.chat_id, part, reply_to, &nonce);
        if let Err(result) = request(
            s,
            agent,
            &mut sender.limiter,
            "POST",
            &url,
            &route,
            &body,
            true,
            stop,
        ) {
            return result;
        }
        sender.progress.insert(seq, index + 1);
    }
    if let Some(name) = &out.edit {
        sender.drafts.forget(name);
    }
    SendResult::Delivered
}
