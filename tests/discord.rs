//! The Discord channel end to end: the real binary against the fake Discord
//! (REST v10 + Gateway v10 on loopback) and the fake model. DMs and guild
//! messages with and without a mention, Resume after a dropped socket and
//! after a restart (the missed message replayed and answered once),
//! op 7 and op 9, a zombie connection, close 4014 reported without a
//! reconnect loop, and a 429 retried after its `retry_after`.

mod common;
#[path = "common/discord_fake.rs"]
mod discord_fake;

use common::*;
use discord_fake::{Command, FakeDiscord, BOT_ID, TOKEN};
use serde_json::Value;
use std::time::Duration;

const ANN: &str = "2200000000000000002";
const DM_CHANNEL: &str = "1300000000000000200";
const GUILD: &str = "3300000000000000003";
const GUILD_CHANNEL: &str = "1400000000000000300";

fn discord_config(llm: &FakeLlm, dc: &FakeDiscord, extra: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"discord": {{"token": "{TOKEN}", "apiRoot": "{}", "replyToMode": "first", "dmPolicy": "allowlist", "allowFrom": ["{ANN}"], "groupPolicy": "allowlist", "guilds": {{"{GUILD}": {{"requireMention": true}}}} {extra}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            dc.api_root()
        ),
    )
}

fn discord_health(gw: &Gateway) -> Value {
    status_json(gw)["channels"]["channels"]["discord"]["health"].clone()
}

/// Starts the gateway and waits for the Gateway session to be READY.
fn start_ready(home: &TempHome, dc: &FakeDiscord) -> Gateway {
    let gw = Gateway::start(home, &[]);
    assert!(
        dc.wait(15, |s| s.identifies.len() == 1 && !s.heartbeats.is_empty()),
        "identify and a first heartbeat; log:\n{}",
        gw.log()
    );
    gw
}

#[test]
fn a_direct_message_is_answered_and_guild_messages_need_a_mention() {
    let home = TempHome::new("dc-dm");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    let gw = start_ready(&home, &dc);
    let identify = dc.with(|s| s.identifies[0].clone());
    assert_eq!(identify["token"], TOKEN);
    assert_eq!(
        identify["intents"], 4609,
        "no Message Content intent by default"
    );
    assert_eq!(
        dc.with(|s| s.gateway_bot_calls),
        1,
        "the Gateway URL comes from GET /gateway/bot"
    );

    let id = dc.dm(DM_CHANNEL, ANN, "hello bot");
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].0, DM_CHANNEL);
    assert_eq!(posted[0].1["content"], "Hello from fake: hello bot");
    assert_eq!(
        posted[0].1["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert_eq!(posted[0].1["message_reference"]["message_id"], id.as_str());
    assert!(
        dc.with(|s| s.typing.contains(&DM_CHANNEL.to_string())),
        "typing while the agent works"
    );
    assert!(
        dc.wait(10, |s| s.heartbeats.iter().any(|h| h.as_u64() == Some(2))),
        "heartbeats carry the last sequence (READY 1, MESSAGE_CREATE 2)"
    );
    assert_eq!(
        dc.with(|s| s.unauthorized),
        0,
        "every request carries Authorization: Bot <token>"
    );

    // A guild message without a mention arrives without its text (no
    // Message Content intent) and is dropped, counted, never sent to the model.
    let calls = llm.requests().len();
    dc.guild(GUILD, GUILD_CHANNEL, ANN, "anyone there?", false);
    assert!(
        wait_until(10, || status_json(&gw)["channels"]["queue"]
            .to_string()
            .contains("Empty")
            || status_json(&gw)["channels"]["queue"]
                .to_string()
                .contains("NoMention")),
        "the drop is visible: {}",
        status_json(&gw)
    );
    assert_eq!(llm.requests().len(), calls);
    // With a mention it is answered in the guild channel.
    dc.guild(GUILD, GUILD_CHANNEL, ANN, "what is up?", true);
    let posted = dc.wait_posted(2, 20);
    assert_eq!(posted[1].0, GUILD_CHANNEL);
    assert_eq!(posted[1].1["content"], "Hello from fake: what is up?");
    let h = discord_health(&gw);
    assert_eq!(h["state"], "up", "{h}");
    assert!(h["lastEventMs"].as_u64().is_some(), "{h}");
}

#[test]
fn with_the_content_intent_guild_rules_without_mention_are_answered() {
    let home = TempHome::new("dc-nomention");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    let mut cfg = discord_config(&llm, &dc, r#", "intents": {"messageContent": true}"#);
    cfg = cfg.replace(r#""requireMention": true"#, r#""requireMention": false"#);
    home.write_config(&cfg);
    let gw = start_ready(&home, &dc);
    assert_eq!(dc.with(|s| s.identifies[0]["intents"].clone()), 37377);
    dc.guild(GUILD, GUILD_CHANNEL, ANN, "no mention here", false);
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].1["content"], "Hello from fake: no mention here");
    let line = doctor_adapter_line(&home, &gw);
    assert_eq!(line["status"], "ok", "{line}");
    let detail = line["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with("up, last event ") && detail.ends_with(" 0 reconnects today"),
        "{line}"
    );
}

#[test]
fn a_dropped_socket_is_resumed_with_the_last_sequence_not_identified_again() {
    let home = TempHome::new("dc-resume");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    let gw = start_ready(&home, &dc);
    dc.dm(DM_CHANNEL, ANN, "first");
    dc.wait_posted(1, 20);
    let (seq, session) = dc.with(|s| (s.seq, s.session_id.clone()));
    dc.command(Command::Drop);
    assert!(
        dc.wait(15, |s| s.resumes.len() == 1),
        "resumed; log:\n{}",
        gw.log()
    );
    let resume = dc.with(|s| s.resumes[0].clone());
    assert_eq!(resume["seq"].as_u64(), Some(seq), "{resume}");
    assert_eq!(resume["session_id"].as_str(), session.as_deref());
    assert_eq!(resume["token"], TOKEN);
    assert_eq!(dc.with(|s| s.identifies.len()), 1, "no second Identify");
    // Messages keep flowing on the resumed session.
    dc.dm(DM_CHANNEL, ANN, "second");
    let posted = dc.wait_posted(2, 20);
    assert_eq!(posted[1].1["content"], "Hello from fake: second");
    // op 7: reconnect and resume.
    dc.command(Command::Reconnect);
    assert!(dc.wait(15, |s| s.resumes.len() == 2), "op 7 resumes");
    // A zombie: heartbeats go unacknowledged, the client closes and resumes.
    dc.with(|s| s.no_ack = true);
    assert!(
        dc.wait(20, |s| s.resumes.len() == 3),
        "no ACK → reconnect and resume; log:\n{}",
        gw.log()
    );
    dc.with(|s| s.no_ack = false);
    assert!(
        dc.with(|s| s.client_closes.iter().all(|c| *c != 1000)),
        "never a 1000 close, which would end the session"
    );
    assert_eq!(dc.with(|s| s.identifies.len()), 1);
    let h = discord_health(&gw);
    assert!(h["reconnectsToday"].as_u64().unwrap_or(0) >= 3, "{h}");
}

#[test]
fn a_restart_resumes_the_stored_session_and_answers_the_missed_message_once() {
    let home = TempHome::new("dc-restart");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    let gw = start_ready(&home, &dc);
    dc.dm(DM_CHANNEL, ANN, "before the crash");
    dc.wait_posted(1, 20);
    let (committed_seq, session) = dc.with(|s| (s.seq, s.session_id.clone()));
    // The next dispatch is lost with the dying connection, then kill -9.
    dc.with(|s| s.lose_dispatches = true);
    dc.dm(DM_CHANNEL, ANN, "missed");
    assert!(dc.wait(10, |s| s.seq > committed_seq), "dispatched");
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    dc.with(|s| s.lose_dispatches = false);

    let gw = Gateway::start(&home, &[]);
    assert!(
        dc.wait(15, |s| s.resumes.len() == 1),
        "op 6 Resume at start; log:\n{}",
        gw.log()
    );
    let resume = dc.with(|s| s.resumes[0].clone());
    assert_eq!(resume["seq"].as_u64(), Some(committed_seq), "{resume}");
    assert_eq!(resume["session_id"].as_str(), session.as_deref());
    let posted = dc.wait_posted(2, 20);
    assert_eq!(posted[1].1["content"], "Hello from fake: missed");
    assert_eq!(dc.with(|s| s.identifies.len()), 1, "no new Identify");
    // The replayed message is committed with its sequence: answered once,
    // and the next restart resumes after it.
    gw.stop();
    let gw = Gateway::start(&home, &[]);
    assert!(dc.wait(15, |s| s.resumes.len() == 2), "{}", gw.log());
    let seq_after_replay = dc.with(|s| s.resumes[1]["seq"].as_u64());
    assert!(
        seq_after_replay > Some(committed_seq),
        "{seq_after_replay:?}"
    );

    // A stored session Discord no longer knows: op 9, then Identify.
    drop(gw);
    dc.with(|s| s.session_id = Some("expired".into()));
    let gw = Gateway::start(&home, &[]);
    assert!(
        dc.wait(20, |s| s.resumes.len() == 3 && s.identifies.len() == 2),
        "op 9 → Identify; log:\n{}",
        gw.log()
    );
    dc.dm(DM_CHANNEL, ANN, "after op 9");
    let posted = dc.wait_posted(3, 20);
    assert_eq!(
        posted[2].1["content"], "Hello from fake: after op 9",
        "the missed message was answered once: {posted:?}"
    );
}

#[test]
fn an_invalid_session_that_cannot_be_resumed_identifies_anew() {
    let home = TempHome::new("dc-op9");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    let _gw = start_ready(&home, &dc);
    dc.command(Command::InvalidSession(false));
    assert!(
        dc.wait(20, |s| s.identifies.len() == 2),
        "a new Identify after op 9 false"
    );
    assert_eq!(
        dc.with(|s| s.resumes.len()),
        0,
        "no Resume of an invalid session"
    );
    dc.dm(DM_CHANNEL, ANN, "after op 9");
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].1["content"], "Hello from fake: after op 9");
}

#[test]
fn close_4014_stops_the_adapter_and_status_says_what_to_do() {
    let home = TempHome::new("dc-4014");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    dc.with(|s| s.message_content_disallowed = true);
    home.write_config(&discord_config(
        &llm,
        &dc,
        r#", "intents": {"messageContent": true}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    assert!(
        wait_until(15, || discord_health(&gw)["state"] == "error"),
        "health shows the error: {}; log:\n{}",
        discord_health(&gw),
        gw.log()
    );
    let h = discord_health(&gw);
    let error = h["error"].as_str().unwrap_or("");
    assert!(error.contains("4014"), "{h}");
    assert!(
        error.contains("Message Content intent") && error.contains("intents.messageContent"),
        "{h}"
    );
    // No reconnect loop: within the time several backoff rounds would take,
    // no second connection.
    assert!(
        !dc.wait(4, |s| s.connections > 1),
        "reconnected after 4014: {} connections",
        dc.with(|s| s.connections)
    );
    assert!(gw.log().contains("4014"), "logged");
    // `pinch doctor` gives the adapter its own failing line with the fix.
    let line = doctor_adapter_line(&home, &gw);
    assert_eq!(line["status"], "fail", "{line}");
    assert!(
        line["detail"].as_str().unwrap_or("").starts_with("error"),
        "{line}"
    );
    assert!(
        line["hint"]
            .as_str()
            .unwrap_or("")
            .contains("intents.messageContent"),
        "{line}"
    );
}

/// The `adapter discord` check of `pinch doctor --json`.
fn doctor_adapter_line(home: &TempHome, gw: &Gateway) -> Value {
    let out = home.run(&["doctor", "--json", "--timeout", "2", "--url", &gw.url()]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("doctor json");
    v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == "adapter discord")
        .cloned()
        .unwrap_or_else(|| panic!("no adapter line: {v}"))
}

#[test]
fn a_429_is_retried_after_retry_after() {
    let home = TempHome::new("dc-429");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    dc.with(|s| {
        s.rate_limit_next = 1;
        s.retry_after = 0.4;
    });
    home.write_config(&discord_config(&llm, &dc, ""));
    let _gw = start_ready(&home, &dc);
    dc.dm(DM_CHANNEL, ANN, "rate me");
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].1["content"], "Hello from fake: rate me");
    let (limited, times) = dc.with(|s| (s.rate_limited, s.post_times.clone()));
    assert_eq!(limited, 1);
    assert_eq!(times.len(), 2, "one 429, one retry");
    let gap = times[1].duration_since(times[0]);
    assert!(
        gap >= Duration::from_millis(400),
        "waited retry_after: {gap:?}"
    );
    assert_eq!(dc.with(|s| s.posted.len()), 1, "sent once");
    let _ = BOT_ID;
}
