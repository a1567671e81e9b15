//! Shell: the Telegram adapter's I/O, a long-poll thread and a send thread,
//! both thin. Parsing, classification, backoff and formatting are the pure
//! codec in `channel::telegram`; this file only moves bytes along the
//! channel's own network route and reports through the adapter sink.
//!
//! The poll thread advances its `getUpdates` offset only after the reactor
//! has committed the batch (inbox + cursor in one transaction), so a crash
//! never skips a message; a redelivered one is caught by the inbox dedup.
//! It never gives up: failures back off (capped) and show in `/status`.
//!
//! A long poll may be parked at Telegram for `pollTimeoutSeconds`, longer
//! than the gateway's shutdown grace, so each `getUpdates` is made by a
//! fetch thread (one for the adapter's life, started with the first long
//! poll: a thread per poll would map thread start-up code back in at every
//! poll of an idle gateway) while the poll thread waits for either its
//! answer or the send thread's word that the adapter is stopping (its queue
//! closed). At shutdown the poll thread then ends at once; the fetch thread
//! is left to finish its request (bounded by the poll timeout plus 15 s)
//! and ends when it finds nobody waiting; an answer nobody reads was never
//! committed, so its updates come again from the committed offset at the
//! next start.
//!
//! The cursor is the next `getUpdates` offset as decimal text.

use crate::channel::adapter::{
    self, sleep_until, AdapterEvent, Handle, SendJob, SendResult, Sink, Start,
};
use crate::channel::telegram::{self as tg, ApiOutcome, BotIdentity, PollState};
use crate::channel::Outbound;
use serde_json::Value;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// The adapter's own settings, read from its `Start`.
struct Settings {
    channel: String,
    account: String,
    api_root: String,
    token: String,
    poll_timeout_s: u32,
    offset: Option<i64>,
}

/// Starts the poll and send threads (the registry's start function).
pub fn start(start: Start) -> Result<Handle, String> {
    let name = &start.channel;
    let token = start.config.bot_token.clone().ok_or_else(|| {
        format!("channels.{name}.botToken is required (e.g. \"$TELEGRAM_BOT_TOKEN\")")
    })?;
    let settings = Settings {
        channel: start.channel.clone(),
        account: start.account.clone(),
        api_root: start.api_root(tg::DEFAULT_API_ROOT),
        token,
        poll_timeout_s: start.config.poll_timeout_seconds.clamp(1, 50),
        offset: start.cursor.as_deref().and_then(|c| c.parse().ok()),
    };
    spawn(settings, &start.route, start.sink)
}

const MAX_BODY: u64 = 8 * 1024 * 1024;

fn spawn(s: Settings, route: &crate::net::Route, sink: Sink) -> Result<Handle, String> {
    let long = Duration::from_secs(u64::from(s.poll_timeout_s) + 15);
    let poll_agent = crate::net::agent_for(
        route,
        &s.api_root,
        &crate::net::Timeouts {
            connect: Duration::from_secs(10),
            recv_response: long,
            per_read: Some(long),
        },
    )?;
    let send_agent = crate::net::agent_for(route, &s.api_root, &adapter::api_timeouts())?;
    let (handle, send_rx) = Handle::new();
    let s = Arc::new(s);
    // The poll thread's one wait: a getUpdates answer or the stop word.
    let (wake, woken) = sync_channel::<PollWake>(2);
    {
        let (s, tx, stop, wake) = (s.clone(), sink.clone(), handle.stop.clone(), wake.clone());
        crate::channel::adapter::spawn_thread(format!("{}-poll", s.channel), 512, move || {
            poll_loop(&s, &poll_agent, &tx, &stop, &wake, &woken)
        })?;
    }
    {
        let (s, tx) = (s.clone(), sink);
        crate::channel::adapter::spawn_thread(format!("{}-send", s.channel), 512, move || {
            send_loop(&s, &send_agent, send_rx, &tx);
            // The send queue closes when the adapter is stopped: the poll
            // thread stops waiting for its long poll.
            let _ = wake.try_send(PollWake::Stop);
        })?;
    }
    Ok(handle)
}

/// What ends the poll thread's wait for a long poll.
enum PollWake {
    Answer(Result<(u16, Vec<u8>), String>),
    Stop,
}

/// Starts the fetch thread: it makes each `getUpdates` call whose URL it
/// is handed and posts the answer to the poll thread's wait; it ends when
/// the poll thread drops its end or nobody reads the answer any more.
fn start_fetcher(
    s: &Settings,
    agent: &ureq::Agent,
    wake: &SyncSender<PollWake>,
) -> Result<SyncSender<String>, String> {
    let (urls, todo) = sync_channel::<String>(1);
    let (agent, answer) = (agent.clone(), wake.clone());
    std::thread::Builder::new()
        .name(format!("{}-fetch", s.channel))
        .stack_size(512 * 1024)
        .spawn(move || {
            for url in todo {
                if answer
                    .send(PollWake::Answer(call(&agent, &url, None)))
                    .is_err()
                {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the fetch thread: {e}"))?;
    Ok(urls)
}

/// `getUpdates` on the fetch thread (started on first use, again after a
/// failure), waited for until its answer or the stop word; `None` when the
/// adapter stops first (the answer is dropped unread).
fn long_poll(
    s: &Settings,
    agent: &ureq::Agent,
    fetcher: &mut Option<SyncSender<String>>,
    url: String,
    wake: &SyncSender<PollWake>,
    woken: &Receiver<PollWake>,
) -> Option<Result<(u16, Vec<u8>), String>> {
    let f = match fetcher.take() {
        Some(f) => f,
        None => match start_fetcher(s, agent, wake) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        },
    };
    if f.send(url).is_err() {
        return Some(Err("the fetch thread ended; starting another".into()));
    }
    *fetcher = Some(f);
    match woken.recv() {
        Ok(PollWake::Answer(result)) => Some(result),
        Ok(PollWake::Stop) | Err(_) => None,
    }
}

fn jitter() -> u64 {
    crate::util::random_u64()
}

/// One HTTP call; returns status and body (capped), or a transport error.
fn call(agent: &ureq::Agent, url: &str, body: Option<&[u8]>) -> Result<(u16, Vec<u8>), String> {
    let resp = match body {
        Some(b) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(b),
        None => agent.get(url).call(),
    };
    let resp = resp.map_err(|e| tg::redact(&e.to_string()))?;
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    resp.into_body()
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut buf)
        .map_err(|e| tg::redact(&e.to_string()))?;
    Ok((status, buf))
}

fn poll_loop(
    s: &Settings,
    agent: &ureq::Agent,
    tx: &Sink,
    stop: &AtomicBool,
    wake: &SyncSender<PollWake>,
    woken: &Receiver<PollWake>,
) {
    let mut state = PollState::with_backoff(1_000, 60_000);
    let mut bot: Option<BotIdentity> = None;
    let mut offset = s.offset;
    let mut last_health = None;
    let mut fetcher = None;
    while !stop.load(Ordering::Relaxed) {
        let now = crate::util::now_ms();
        let outcome = if bot.is_none() {
            let (url, body) = tg::get_me_request(&s.api_root, &s.token);
            match call(agent, &url, Some(&body)) {
                Ok((status, b)) => {
                    let o = tg::classify_response(status, &b);
                    if let ApiOutcome::Ok(v) = &o {
                        match BotIdentity::from_get_me(v) {
                            Ok(id) => {
                                log::info!("{}: connected as @{}", s.channel, id.username);
                                bot = Some(id);
                                set_commands(s, agent);
                            }
                            Err(e) => log::warn!("{}: getMe: {e:?}", s.channel),
                        }
                    }
                    o
                }
                Err(e) => ApiOutcome::Transient(e),
            }
        } else {
            state.on_poll_start(now);
            let url = tg::get_updates_url(&s.api_root, &s.token, offset, s.poll_timeout_s);
            let Some(answer) = long_poll(s, agent, &mut fetcher, url, wake, woken) else {
                return;
            };
            match answer {
                Ok((status, b)) => {
                    let o = tg::classify_response(status, &b);
                    if let (ApiOutcome::Ok(_), Some(id)) = (&o, &bot) {
                        match tg::parse_updates(&b, id, &s.account) {
                            Ok(batch) => {
                                for sk in &batch.skipped {
                                    log::debug!(
                                        "{}: update {:?} skipped: {}",
                                        s.channel,
                                        sk.update_id,
                                        sk.reason
                                    );
                                }
                                if batch.next_offset.is_some() {
                                    let (ack_tx, ack_rx) = sync_channel(1);
                                    let ev = AdapterEvent::Inbound {
                                        envelopes: batch.envelopes,
                                        cursor: batch.next_offset.map(|o| o.to_string()),
                                        ack: ack_tx,
                                    };
                                    if !tx(ev) {
                                        return;
                                    }
                                    // Only a committed batch moves the offset on.
                                    if let Ok(true) = ack_rx.recv_timeout(Duration::from_secs(60)) {
                                        offset = batch.next_offset;
                                    }
                                }
                            }
                            Err(e) => {
                                log::warn!("{}: unusable getUpdates answer: {e:?}", s.channel)
                            }
                        }
                    }
                    o
                }
                Err(e) => ApiOutcome::Transient(e),
            }
        };
        if let ApiOutcome::Conflict = outcome {
            log::error!("{}: Telegram answered 409 Conflict: another program is polling this bot token (or a webhook is set). Stop the other consumer; pinch keeps retrying.", s.channel);
        }
        if let ApiOutcome::Fatal(e) = &outcome {
            log::error!("{}: {e} (check channels.{}.botToken)", s.channel, s.channel);
        }
        let now = crate::util::now_ms();
        let next = state.on_outcome(&outcome, now, &mut jitter);
        let health = state.report(now);
        if last_health.as_ref() != Some(&health) {
            last_health = Some(health.clone());
            if !tx(AdapterEvent::Health(health)) {
                return;
            }
        }
        sleep_until(next, stop);
    }
}

/// Publishes the command menu once per connection; a failure only costs the menu.
fn set_commands(s: &Settings, agent: &ureq::Agent) {
    let (url, body) =
        tg::set_my_commands_request(&s.api_root, &s.token, &crate::channel::commands::MENU);
    if let Err(e) = call(agent, &url, Some(&body)) {
        log::info!(
            "{}: setMyCommands failed ({e}); the command menu is not shown",
            s.channel
        );
    }
}

/// A draft on screen: its message and the text it shows.
struct Draft {
    message_id: i64,
    text: String,
}
/// Drafts sent and not yet replaced, by name (`Outbound::edit`).
type Drafts = std::collections::HashMap<String, Draft>;
/// Drafts remembered at once (one per run in flight is enough).
const MAX_DRAFTS: usize = 64;

fn send_loop(s: &Settings, agent: &ureq::Agent, rx: Receiver<SendJob>, tx: &Sink) {
    let mut drafts = Drafts::new();
    for job in rx {
        match job {
            SendJob::Typing { target } => {
                let (url, body) = tg::send_chat_action_request(
                    &s.api_root,
                    &s.token,
                    &target.chat_id,
                    target.thread_id.as_deref(),
                );
                let _ = call(agent, &url, Some(&body));
            }
            SendJob::Draft { out } => {
                if !matches!(send_one(s, agent, &out, &mut drafts), ApiOutcome::Ok(_)) {
                    log::debug!("{}: a draft was not shown", s.channel);
                }
            }
            SendJob::Message { seq, out, .. } => {
                let result = send_result(send_one(s, agent, &out, &mut drafts));
                if let (SendResult::Delivered, Some(name)) = (&result, &out.edit) {
                    drafts.remove(name);
                }
                if !tx(AdapterEvent::Sent { seq, result }) {
                    return;
                }
            }
        }
    }
}

/// Sends one chunk: formatted first, plain text if Telegram rejects the
/// markup. A chunk naming a known draft (`edit`) is edited into it, and a
/// new message if that edit fails for good (the draft is gone); a new
/// message with a draft name is remembered as that draft.
fn send_one(s: &Settings, agent: &ureq::Agent, out: &Outbound, drafts: &mut Drafts) -> ApiOutcome {
    let html = Outbound {
        text: tg::markdown_to_html(&out.text),
        ..out.clone()
    };
    let attempt = |o: &Outbound, mode: Option<&str>, draft: Option<i64>| {
        let (url, body) = match draft {
            Some(id) => tg::edit_message_text_request(&s.api_root, &s.token, o, id, mode),
            None => tg::send_message_request(&s.api_root, &s.token, o, mode),
        };
        match call(agent, &url, Some(&body)) {
            Ok((status, b)) => tg::classify_response(status, &b),
            Err(e) => ApiOutcome::Transient(e),
        }
    };
    let formatted = |draft: Option<i64>| {
        let outcome = attempt(&html, Some("HTML"), draft);
        if let ApiOutcome::MarkupRejected = outcome {
            log::info!("{}: markup rejected; resending as plain text", s.channel);
            return attempt(out, None, draft);
        }
        outcome
    };
    let Some(name) = out.edit.as_ref() else {
        return formatted(None);
    };
    let known = drafts.get(name);
    if known.is_some_and(|d| d.text == out.text) {
        // The draft already shows this text.
        return ApiOutcome::Ok(Value::Null);
    }
    let mut message_id = known.map(|d| d.message_id);
    let mut outcome = formatted(message_id);
    if let (Some(_), ApiOutcome::Fatal(e)) = (message_id, &outcome) {
        log::info!(
            "{}: the draft could not be edited ({e}); sending anew",
            s.channel
        );
        message_id = None;
        outcome = formatted(None);
    }
    if let ApiOutcome::Ok(v) = &outcome {
        if let Some(id) = message_id.or_else(|| v.get("message_id").and_then(Value::as_i64)) {
            if drafts.len() >= MAX_DRAFTS && !drafts.contains_key(name) {
                drafts.clear();
            }
            let text = out.text.clone();
            drafts.insert(
                name.clone(),
                Draft {
                    message_id: id,
                    text,
                },
            );
        }
    }
    outcome
}

/// What a send's outcome means for the queued message.
fn send_result(outcome: ApiOutcome) -> SendResult {
    match outcome {
        ApiOutcome::Ok(_) => SendResult::Delivered,
        ApiOutcome::RetryAfter(secs) => SendResult::rate_limited(secs),
        ApiOutcome::Transient(e) => SendResult::retry(e),
        ApiOutcome::Conflict => SendResult::retry("409 conflict".into()),
        ApiOutcome::MarkupRejected => {
            SendResult::Permanent("Telegram rejected the message even as plain text".into())
        }
        ApiOutcome::TooLong => SendResult::Permanent("message is too long for Telegram".into()),
        ApiOutcome::Migrated(id) => SendResult::Permanent(format!(
            "the group became supergroup {id}; messages must go there"
        )),
        ApiOutcome::Fatal(e) => SendResult::Permanent(e),
    }
}
