//! Shell: the Slack adapter's I/O, one thread on the Socket Mode WebSocket
//! and one posting replies, both thin. Frames, events, requests, formatting,
//! backoff and liveness are the pure code beside this file.
//!
//! Socket thread: `auth.test` once (the bot's own user id), then forever:
//! `apps.connections.open` for a fresh single-use URL, connect along the
//! channel's network route, read frames. Each envelope is acked as soon as
//! the reactor has committed its message to the inbox (or at once when it
//! carries nothing to act on); an envelope the reactor could not commit is
//! left unacked, so Slack delivers it again. A `disconnect` reconnects at
//! once; a lost or silent socket reconnects with backoff.
//!
//! Send thread: `chat.postMessage`, one chunk at a time, in the thread the
//! message came from; a 429 goes back to the queue with its `Retry-After`.
//! Drafts of an answer in progress are posted once and edited with
//! `chat.update`; the final answer edits its draft. Every queued message
//! carries its send id in the message metadata, and a send whose earlier
//! attempt may have reached Slack (queued before this start, or an attempt
//! that ended without an answer) is first looked up (`codec::lookup`): when
//! Slack has it, it is committed as sent instead of posted again.

use super::codec::{self, lookup, Classifier, Frame, Outcome};
use super::link::{Link, Tick};
use crate::channel::adapter::{
    self, sleep_until, AdapterEvent, Drafts, Handle, SendJob, SendResult, Sink, Start,
};
use crate::channel::envelope::Outbound;
use crate::net::websocket::{Incoming, ReadError, Socket};
use serde_json::Value;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

struct Settings {
    channel: String,
    account: String,
    api_root: String,
    app_token: String,
    bot_token: String,
    checks: SendChecks,
}

/// Lookups of sends that may already have reached Slack, shown in the
/// adapter's health (`sendChecks`).
#[derive(Default)]
struct SendChecks {
    made: AtomicU32,
    /// Slack had the message: committed as sent, not posted again.
    found: AtomicU32,
    /// The lookup itself failed: posted anyway.
    failed: AtomicU32,
}

/// Longest wait for the reactor to commit an envelope's message before the
/// ack (Slack wants the ack within 3 s and retries without it).
const COMMIT_WAIT: Duration = Duration::from_millis(2_500);
const MAX_BODY: u64 = codec::MAX_FRAME_BYTES as u64;

/// Starts the socket and send threads (the registry's start function).
pub fn start(start: Start) -> Result<Handle, String> {
    let name = &start.channel;
    let token = |v: &Option<String>, key: &str, prefix: &str| match v {
        Some(t) if !t.trim().is_empty() => {
            if !t.starts_with(prefix) {
                log::warn!(
                    "channels.{name}.{key} does not start with {prefix}: is it the right token?"
                );
            }
            Ok(t.trim().to_string())
        }
        _ => Err(format!(
            "channels.{name}.{key} is required ({prefix}…, e.g. \"$SLACK_{}\")",
            if key == "appToken" {
                "APP_TOKEN"
            } else {
                "BOT_TOKEN"
            }
        )),
    };
    let s = Arc::new(Settings {
        channel: start.channel.clone(),
        account: start.account.clone(),
        api_root: start.api_root(codec::DEFAULT_API_ROOT),
        app_token: token(&start.config.app_token, "appToken", "xapp-")?,
        bot_token: token(&start.config.bot_token, "botToken", "xoxb-")?,
        checks: SendChecks::default(),
    });
    let api = crate::net::agent_for(&start.route, &s.api_root, &adapter::api_timeouts())?;
    let (handle, send_rx) = Handle::new();
    {
        let (s, api, sink, stop, route) = (
            s.clone(),
            api.clone(),
            start.sink.clone(),
            handle.stop.clone(),
            start.route,
        );
        crate::channel::adapter::spawn_thread(format!("{}-socket", s.channel), 512, move || {
            socket_loop(&s, &api, &route, &sink, &stop)
        })?;
    }
    {
        let (s, sink) = (s, start.sink);
        crate::channel::adapter::spawn_thread(format!("{}-send", s.channel), 512, move || {
            send_loop(&s, &api, send_rx, &sink)
        })?;
    }
    Ok(handle)
}

/// One Web API call, classified.
fn call(agent: &ureq::Agent, req: &codec::Request) -> Outcome {
    let resp = agent
        .post(&req.url)
        .header("Authorization", &req.authorization)
        .header("Content-Type", req.content_type)
        .send(&req.body[..]);
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return Outcome::Transient(e.to_string()),
    };
    let status = resp.status().as_u16();
    let retry_after = crate::net::header_text(resp.headers(), "retry-after");
    let mut body = Vec::new();
    if let Err(e) = resp
        .into_body()
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
    {
        return Outcome::Transient(e.to_string());
    }
    codec::classify(status, retry_after.as_deref(), &body)
}

fn socket_loop(
    s: &Settings,
    api: &ureq::Agent,
    route: &crate::net::Route,
    sink: &Sink,
    stop: &AtomicBool,
) {
    let mut link = Link::new(1_000, 60_000);
    let mut classifier: Option<Classifier> = None;
    let mut jitter = crate::util::random_u64;
    while !stop.load(Ordering::Relaxed) {
        let now = crate::util::now_ms();
        let failure = |link: &mut Link, e: &str, jitter: &mut dyn FnMut() -> u64| {
            log::warn!("{}: {e}", s.channel);
            link.on_failure(crate::util::now_ms(), e, jitter);
        };
        let c = match classifier.as_mut() {
            Some(c) => c,
            None => match call(api, &codec::auth_test(&s.api_root, &s.bot_token)) {
                Outcome::Ok(v) => match codec::BotIdentity::from_auth_test(&v) {
                    Ok(bot) => {
                        log::info!("{}: signed in as bot user {}", s.channel, bot.user_id);
                        classifier.insert(Classifier::new(bot, &s.account))
                    }
                    Err(e) => {
                        failure(&mut link, &e, &mut jitter);
                        report_health(s, sink, &link);
                        sleep_until(link.retry_at_ms(), stop);
                        continue;
                    }
                },
                other => {
                    match other {
                        Outcome::RetryAfter(secs) => {
                            link.on_retry_after(now, secs);
                        }
                        Outcome::Transient(e) | Outcome::Fatal(e) => {
                            failure(&mut link, &format!("auth.test: {e}"), &mut jitter)
                        }
                        Outcome::Ok(_) => {}
                    }
                    report_health(s, sink, &link);
                    sleep_until(link.retry_at_ms(), stop);
                    continue;
                }
            },
        };
        let url = match call(api, &codec::connections_open(&s.api_root, &s.app_token)) {
            Outcome::Ok(v) => codec::socket_url(&v),
            Outcome::RetryAfter(secs) => {
                link.on_retry_after(now, secs);
                Err(String::new())
            }
            Outcome::Transient(e) | Outcome::Fatal(e) => Err(e),
        };
        let session = url.and_then(|u| {
            crate::net::websocket::connect(&u, route, Duration::from_secs(10))
                .map_err(|e| crate::net::redact_url(&e))
        });
        let end = match session {
            Ok((mut socket, tcp)) => {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
                let end = read_frames(s, &mut socket, c, &mut link, sink, stop);
                socket.close();
                end
            }
            Err(e) if e.is_empty() => Ok(()),
            Err(e) => Err(format!("apps.connections.open: {e}")),
        };
        if let Err(e) = end {
            failure(&mut link, &e, &mut jitter);
        }
        report_health(s, sink, &link);
        sleep_until(link.retry_at_ms(), stop);
    }
}

fn report_health(s: &Settings, sink: &Sink, link: &Link) -> bool {
    let mut health = link.health(crate::util::now_ms());
    let count = |c: &AtomicU32| c.load(Ordering::Relaxed);
    health.extra.insert(
        "sendChecks".into(),
        serde_json::json!({
            "made": count(&s.checks.made),
            "found": count(&s.checks.found),
            "failed": count(&s.checks.failed),
        }),
    );
    sink(AdapterEvent::Health(health))
}

/// Reads one connection's frames until Slack asks us to move (`Ok`) or
/// the socket fails or falls silent (`Err`).
fn read_frames(
    s: &Settings,
    socket: &mut Socket,
    c: &mut Classifier,
    link: &mut Link,
    sink: &Sink,
    stop: &AtomicBool,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let now = crate::util::now_ms();
        let text = match socket.read() {
            Ok(Incoming::Text(t)) => t,
            Ok(Incoming::Other) => {
                // Pings (answered by the socket), pongs, binary.
                link.on_frame(now);
                continue;
            }
            Err(ReadError::Timeout) => {
                match link.tick(now) {
                    Tick::Dead => return Err("no answer to a ping: the socket is dead".into()),
                    Tick::SendPing => {
                        socket.send_ping().map_err(|e| format!("ping: {e}"))?;
                    }
                    Tick::Nothing => {}
                }
                continue;
            }
            Err(ReadError::Closed(why)) => return Err(why),
            Err(ReadError::Failed(e)) => return Err(format!("socket: {e}")),
        };
        match codec::parse_frame(&text) {
            Ok(Frame::Hello { .. }) => {
                link.on_hello(now);
                if !report_health(s, sink, link) {
                    return Ok(());
                }
            }
            Ok(Frame::Disconnect { reason }) => {
                log::info!("{}: Slack asked to reconnect ({reason})", s.channel);
                link.on_disconnect_requested(now, &reason);
                return Ok(());
            }
            Ok(Frame::Envelope {
                envelope_id,
                kind,
                payload,
                ..
            }) => {
                link.on_event(now);
                let ack = kind != "events_api" || deliver(s, c, &payload, sink);
                if ack {
                    socket
                        .send_text(&codec::ack_frame(&envelope_id))
                        .map_err(|e| format!("ack: {e}"))?;
                }
                report_health(s, sink, link);
            }
            Ok(Frame::Other(_)) => link.on_frame(now),
            Err(e) => log::warn!("{}: unusable frame: {e}", s.channel),
        }
    }
    Ok(())
}

/// Hands an event's message to the reactor; true when it may be acked
/// (committed, or nothing to commit).
fn deliver(s: &Settings, c: &mut Classifier, payload: &serde_json::Value, sink: &Sink) -> bool {
    let incoming = match c.classify(payload) {
        Ok(i) => i,
        Err(skip) => {
            log::debug!("{}: event skipped: {skip:?}", s.channel);
            c.remember_event(payload);
            return true;
        }
    };
    let (ack_tx, ack_rx) = sync_channel(1);
    let event = AdapterEvent::Inbound {
        envelopes: vec![incoming.envelope.clone()],
        cursor: None,
        ack: ack_tx,
    };
    if !sink(event) {
        return false;
    }
    match ack_rx.recv_timeout(COMMIT_WAIT) {
        Ok(true) => {
            c.remember(&incoming);
            true
        }
        _ => {
            log::warn!(
                "{}: message {} not committed; left unacked for Slack to resend",
                s.channel,
                incoming.envelope.platform_id
            );
            false
        }
    }
}

/// Queue entries remembered whose last attempt ended without an answer.
const MAX_UNSURE: usize = 256;

fn send_loop(s: &Settings, api: &ureq::Agent, rx: Receiver<SendJob>, sink: &Sink) {
    let started_ms = crate::util::now_ms();
    let mut drafts = Drafts::default();
    let mut unsure: Vec<u64> = Vec::new();
    for job in rx {
        // Slack has no typing indicator for bots: typing jobs are dropped.
        let (seq, out, queued_ms) = match job {
            SendJob::Message {
                seq,
                out,
                queued_ms,
            } => (seq, out, queued_ms),
            SendJob::Draft { out } => {
                if !matches!(send_one(s, api, &out, &mut drafts, None), Outcome::Ok(_)) {
                    log::debug!("{}: a draft was not shown", s.channel);
                }
                continue;
            }
            SendJob::Typing { .. } => continue,
        };
        let id = lookup::send_id(seq, queued_ms);
        let check = queued_ms < started_ms || unsure.contains(&seq);
        let outcome = match check.then(|| already_sent(s, api, &out, queued_ms, &id)) {
            Some(Lookup::Found) => Outcome::Ok(Value::Null),
            Some(Lookup::RateLimited(secs)) => Outcome::RetryAfter(secs),
            Some(Lookup::Absent) | None => send_one(s, api, &out, &mut drafts, Some(&id)),
        };
        // A send with no answer may have reached Slack: look before the
        // next attempt (a 429 leaves an earlier doubt standing).
        match outcome {
            Outcome::Ok(_) | Outcome::Fatal(_) => unsure.retain(|u| *u != seq),
            Outcome::Transient(_) if !unsure.contains(&seq) => {
                if unsure.len() >= MAX_UNSURE {
                    unsure.remove(0);
                }
                unsure.push(seq);
            }
            Outcome::Transient(_) | Outcome::RetryAfter(_) => {}
        }
        let result = match outcome {
            Outcome::Ok(_) => SendResult::Delivered,
            Outcome::RetryAfter(secs) => SendResult::rate_limited(secs),
            Outcome::Transient(error) => SendResult::retry(error),
            Outcome::Fatal(e) => SendResult::Permanent(e),
        };
        if !sink(AdapterEvent::Sent { seq, result }) {
            return;
        }
    }
}

/// What a lookup of a send found.
enum Lookup {
    /// Slack has the message: commit it as sent.
    Found,
    /// Not there, or the lookup failed (counted and logged): post.
    Absent,
    /// The lookup was rate limited: try again after this many seconds.
    RateLimited(u64),
}

/// Looks for send `id` in its conversation.
fn already_sent(
    s: &Settings,
    api: &ureq::Agent,
    out: &Outbound,
    queued_ms: u64,
    id: &str,
) -> Lookup {
    s.checks.made.fetch_add(1, Ordering::Relaxed);
    let thread = out.thread_id.as_deref().or(out.reply_to.as_deref());
    let req = lookup::lookup(&s.api_root, &s.bot_token, &out.chat_id, thread, queued_ms);
    match call(api, &req) {
        Outcome::Ok(answer) => match lookup::find(&answer, id) {
            Some(ts) => {
                s.checks.found.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "{}: send {id} is already in {} (ts {ts}): committed, not posted again",
                    s.channel,
                    out.chat_id
                );
                Lookup::Found
            }
            None => Lookup::Absent,
        },
        Outcome::RetryAfter(secs) => Lookup::RateLimited(secs),
        Outcome::Transient(e) | Outcome::Fatal(e) => {
            s.checks.failed.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "{}: could not check whether send {id} already reached Slack ({e}); posting it",
                s.channel
            );
            Lookup::Absent
        }
    }
}

/// Sends one chunk as mrkdwn, in the thread the message came from. A chunk
/// naming a known draft (`edit`) is edited into it with `chat.update` (a
/// new message if the draft is gone); a new message with a draft name is
/// remembered as that draft. `send_id` is set for queued messages.
fn send_one(
    s: &Settings,
    api: &ureq::Agent,
    out: &Outbound,
    drafts: &mut Drafts,
    send_id: Option<&str>,
) -> Outcome {
    let text = super::format::to_mrkdwn(&out.text);
    // replyToMode "first"/"all": the answer starts a thread under the
    // message (its `ts`) unless it already is in one.
    let thread = out.thread_id.as_deref().or(out.reply_to.as_deref());
    let post = || {
        let req = codec::post_message(
            &s.api_root,
            &s.bot_token,
            &out.chat_id,
            &text,
            thread,
            send_id,
        );
        call(api, &req)
    };
    let Some(name) = out.edit.as_ref() else {
        return post();
    };
    // A draft is named after its chat's message: it is in `out.chat_id`.
    let known = drafts.get(name).map(|d| d.message_id.clone());
    if send_id.is_none() && drafts.get(name).is_some_and(|d| d.text == out.text) {
        // The draft already shows this text.
        return Outcome::Ok(Value::Null);
    }
    let mut outcome = match &known {
        Some(ts) => call(
            api,
            &codec::update_message(&s.api_root, &s.bot_token, &out.chat_id, ts, &text, send_id),
        ),
        None => post(),
    };
    let mut ts = known;
    if let (Some(_), Outcome::Fatal(e)) = (&ts, &outcome) {
        log::info!(
            "{}: the draft could not be edited ({e}); posting anew",
            s.channel
        );
        ts = None;
        outcome = post();
    }
    if let Outcome::Ok(answer) = &outcome {
        match (send_id, ts.or_else(|| codec::posted_ts(answer))) {
            // The final answer replaced the draft: it is no longer one.
            (Some(_), _) => drafts.forget(name),
            (None, Some(ts)) => drafts.remember(name, ts, out.text.clone()),
            (None, None) => {}
        }
    }
    outcome
}
