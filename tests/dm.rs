//! The daily DM experience end to end: in-chat commands over Telegram (the
//! fake Bot API), the WebSocket API and `pinch chat`; the owner's one
//! conversation (`main`) across Telegram, the web API and the CLI; a job's
//! answer reported into `main` and used by the follow-up question.

mod common;

use common::telegram::{FakeTelegram, BOT_NAME, TOKEN};
use common::*;
use serde_json::{json, Value};

fn tg_config(providers: &[(&str, &FakeLlm)], tg: &FakeTelegram, access: &str) -> String {
    config_for(
        providers,
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": 1 {access}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            tg.api_root()
        ),
    )
}

/// 42 is the owner (first allowFrom entry); 43 is allowed too.
const ACCESS: &str = r#", "dmPolicy": "allowlist", "allowFrom": ["42", "43"], "groupPolicy": "allowlist", "groups": {"-100": {}}"#;

/// A group message starting with a `bot_command` entity (`/status@name`).
fn group_command(tg: &FakeTelegram, group: i64, user: i64, text: &str) {
    let len = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .encode_utf16()
        .count();
    tg.with(|s| {
        let uid = s.next_update_id;
        s.next_update_id += 1;
        let mid = s.next_message_id;
        s.next_message_id += 1;
        s.updates.push(json!({"update_id": uid, "message": {"message_id": mid, "date": 1_790_000_000,
            "chat": {"id": group, "type": "supergroup", "title": "G"},
            "from": {"id": user, "is_bot": false, "first_name": "U", "username": format!("user{user}")},
            "text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len}]}}));
    });
}

/// Every user text the model was sent in one request.
fn request_text(seen: &Seen) -> String {
    seen.body["messages"].to_string()
}

fn in_flight(gw: &Gateway) -> u64 {
    let (_, body) = http_get(&format!("{}/status", gw.url()), None);
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["runs"]["inFlight"].as_u64().unwrap_or(99)
}

#[test]
fn telegram_commands_are_answered_by_pinch_and_never_reach_the_model() {
    let home = TempHome::new("dm-cmd");
    let (llm, other, tg) = (FakeLlm::openai(), FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(
        &[("fake", &llm), ("other", &other)],
        &tg,
        ACCESS,
    ));
    let gw = Gateway::start(&home, &[]);
    assert!(
        wait_until(15, || tg.with(|s| s.commands.as_array().map(Vec::len))
            == Some(9)),
        "the command menu is published with setMyCommands"
    );
    let menu = tg.with(|s| s.commands.clone());
    assert!(menu.to_string().contains("\"command\":\"new\""), "{menu}");

    tg.dm(42, "hello");
    assert_eq!(tg.wait_sent(1, 15)[0].1, "Hello from fake: hello");
    let ask = |text: &str, n: usize| -> String {
        tg.dm(42, text);
        tg.wait_sent(n, 15)[n - 1].1.clone()
    };
    let status = ask("/status", 2);
    assert!(status.contains("Model: fake/m1"), "{status}");
    assert!(status.contains("Session: main"), "{status}");
    assert!(status.contains("Context: about"), "{status}");
    assert!(ask("/whoami", 3).contains("Your sender id is 42"));
    assert!(ask("/help", 4).contains("/compact"));
    assert!(ask("/think high", 5).contains("Thinking: high"));
    assert!(ask("/model other/m1", 6).contains("now uses other/m1"));
    assert!(ask("/model nope/x", 7).contains("is not configured"));
    assert_eq!(ask("which model?", 8), "Hello from fake: which model?");
    assert_eq!(other.requests().len(), 1, "the switched model answered");
    assert!(ask("/model default", 9).contains("Back to the default model"));
    // An unknown /word is text for the model.
    assert_eq!(ask("/weather", 10), "Hello from fake: /weather");
    assert_eq!(llm.requests().len(), 2, "hello and /weather only");

    // A non-owner may look but not switch models.
    tg.dm(43, "/model other/m1");
    let sent = tg.wait_sent(11, 15);
    assert_eq!(sent[10].0, "43");
    assert!(sent[10].1.contains("Only the owner"), "{sent:?}");

    // In a group: someone else's command is ignored, ours is answered.
    group_command(&tg, -100, 42, "/status@other_bot");
    group_command(&tg, -100, 42, &format!("/status@{BOT_NAME}"));
    let sent = tg.wait_sent(12, 15);
    assert_eq!(sent[11].0, "-100");
    assert!(sent[11].1.contains("Session: telegram:-100"), "{sent:?}");
    assert!(
        wait_until(5, || tg.with(|s| s.updates.is_empty())),
        "both group updates were confirmed"
    );
    assert_eq!(tg.sent().len(), 12, "nothing answered /status@other_bot");

    // /new archives the conversation: the next request starts empty.
    let reply = ask("/new", 13);
    assert!(reply.contains("archived as main~"), "{reply}");
    assert_eq!(ask("fresh start", 14), "Hello from fake: fresh start");
    let last = llm.requests().last().map(request_text).unwrap_or_default();
    assert!(!last.contains("hello"), "the old turns are gone: {last}");
    let out = home.run(&["sessions", "list", "--url", &gw.url()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("main~"),
        "the old transcript is archived, not deleted"
    );
    assert_eq!(llm.requests().len(), 3);

    // /stop aborts a run that hangs; no apology follows.
    llm.push(Reply::Hang);
    tg.dm(42, "think hard");
    assert!(wait_until(10, || llm.requests().len() == 4));
    assert_eq!(ask("/stop", 15), "Stopped.");
    assert!(wait_until(20, || in_flight(&gw) == 0), "the run ended");
    assert!(wait_until(5, || tg.with(|s| s.updates.is_empty())));
    let sent = tg.sent();
    assert_eq!(sent.len(), 15, "{sent:?}");
}

#[test]
fn compact_from_telegram_summarises_the_conversation() {
    let home = TempHome::new("dm-compact");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&[("fake", &llm)], &tg, ACCESS));
    let _gw = Gateway::start(&home, &[]);
    tg.dm(42, "/compact");
    assert_eq!(tg.wait_sent(1, 15)[0].1, "Nothing to compact yet.");
    let long = "word ".repeat(300);
    for i in 0..4 {
        tg.dm(42, &format!("{i} {long}"));
        tg.wait_sent(2 + i, 15);
    }
    let before = llm.requests().len();
    tg.dm(42, "/compact");
    let sent = tg.wait_sent(6, 30);
    assert!(sent[5].1.starts_with("Compacted"), "{sent:?}");
    assert!(llm.requests().len() > before, "the model wrote the summary");
    tg.dm(42, "/status");
    let sent = tg.wait_sent(7, 15);
    assert!(sent[6].1.contains("compacted before"), "{}", sent[6].1);
}

#[test]
fn the_owner_has_one_conversation_across_telegram_web_and_cli() {
    let home = TempHome::new("dm-main");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&[("fake", &llm)], &tg, ACCESS));
    let gw = Gateway::start(&home, &[]);
    tg.dm(42, "the code word is kiwi");
    tg.wait_sent(1, 15);
    // The web chat without a session is the owner's main conversation.
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"text": "what is the code word?"}));
    assert_eq!(r["payload"]["session"], "main", "{r}");
    ws.until_done();
    let seen = llm.requests();
    assert!(request_text(&seen[1]).contains("kiwi"), "web sees the DM");
    // pinch chat too, and its commands.
    home.run_ok(&["chat", "--url", &gw.url(), "and again?"]);
    assert!(request_text(&llm.requests()[2]).contains("what is the code word"));
    let out = home.run(&["chat", "--url", &gw.url(), "/status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Session: main") && text.contains("Model: fake/m1"),
        "{text}"
    );
    assert_eq!(llm.requests().len(), 3, "/status never reached the model");
    // Someone else keeps their own conversation.
    tg.dm(43, "hi, what was the code word?");
    let sent = tg.wait_sent(2, 15);
    assert_eq!(sent[1].0, "43");
    assert!(!request_text(&llm.requests()[3]).contains("kiwi"));
    // The web chat's commands.
    let r = ws.call("chat.send", json!({"text": "/whoami"}));
    assert_eq!(r["payload"]["command"], "whoami", "{r}");
    assert!(r["payload"]["runId"].is_null());
    let r = ws.call("chat.send", json!({"text": "/new and now?"}));
    assert_eq!(r["payload"]["command"], "new", "{r}");
    assert!(r["payload"]["text"]
        .as_str()
        .unwrap_or("")
        .contains("archived"));
    ws.until_done();
    let last = request_text(llm.requests().last().expect("request"));
    assert!(
        last.contains("and now?") && !last.contains("kiwi"),
        "{last}"
    );
}

#[test]
fn a_jobs_answer_lands_in_main_and_the_follow_up_dm_has_it() {
    let home = TempHome::new("dm-job");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&[("fake", &llm)], &tg, ACCESS));
    let gw = Gateway::start(&home, &[]);
    // A friend writes last: the job's answer must still go to the owner.
    tg.dm(42, "hi");
    tg.wait_sent(1, 15);
    tg.dm(43, "hello from a friend");
    tg.wait_sent(2, 15);
    llm.push(Reply::Text(vec![
        "1. rain 2. a solar eclipse at noon".into()
    ]));
    home.run_ok(&[
        "cron",
        "add",
        "--name",
        "digest",
        "--every",
        "1d",
        "--message",
        "Morning digest please",
        "--url",
        &gw.url(),
    ]);
    home.run_ok(&["cron", "run-now", "digest", "--url", &gw.url()]);
    let sent = tg.wait_sent(3, 20);
    assert_eq!(
        sent[2].0, "42",
        "the owner's chat, not the friend's: {sent:?}"
    );
    assert!(sent[2].1.contains("solar eclipse"));
    tg.dm(42, "tell me more about the second item");
    tg.wait_sent(4, 15);
    let last = request_text(llm.requests().last().expect("request"));
    assert!(
        last.contains("solar eclipse") && last.contains("job digest"),
        "the follow-up has the digest in context: {last}"
    );
}

#[test]
fn an_idle_session_starts_over_under_the_reset_policy() {
    let home = TempHome::new("dm-reset");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    let cfg = tg_config(&[("fake", &llm)], &tg, ACCESS).replace(
        r#""queue": {"baseBackoffMs": 200}"#,
        r#""queue": {"baseBackoffMs": 200}, "session": {"reset": {"mode": "idle", "idleMinutes": 60}}"#,
    );
    assert!(cfg.contains("idleMinutes"), "{cfg}");
    home.write_config(&cfg);
    let clock = home.path.join("clock");
    std::fs::write(&clock, "0").expect("clock");
    let gw = Gateway::start_with_env(&home, &[], &[("PINCH_TEST_CLOCK_FILE", &clock)]);
    tg.dm(42, "the code word is kiwi");
    tg.wait_sent(1, 15);
    tg.dm(42, "still there?");
    tg.wait_sent(2, 15);
    assert!(
        request_text(&llm.requests()[1]).contains("kiwi"),
        "within the hour"
    );
    // Two hours later (the injected clock), the conversation starts over.
    std::fs::write(&clock, (2 * 3_600_000).to_string()).expect("clock");
    tg.dm(42, "good morning");
    tg.wait_sent(3, 15);
    let last = request_text(&llm.requests()[2]);
    assert!(
        last.contains("good morning") && !last.contains("kiwi"),
        "{last}"
    );
    let out = home.run(&["sessions", "list", "--url", &gw.url()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("main~"),
        "archived"
    );
}

#[test]
fn heartbeats_skip_an_idle_owner_and_use_their_own_model() {
    let home = TempHome::new("dm-beat");
    let (llm, cheap, tg) = (FakeLlm::openai(), FakeLlm::openai(), FakeTelegram::start());
    let cfg = tg_config(&[("fake", &llm), ("cheap", &cheap)], &tg, ACCESS).replace(
        r#""primary": "fake/m1", "fallbacks": []}"#,
        r#""primary": "fake/m1", "fallbacks": []}, "heartbeat": {"every": "12h", "skipIdleDays": 2, "model": "cheap/m1"}"#,
    );
    assert!(cfg.contains("skipIdleDays"), "{cfg}");
    home.write_config(&cfg);
    let gw = Gateway::start(&home, &[]);
    std::fs::write(
        home.path.join("workspace/HEARTBEAT.md"),
        "- check the mail\n",
    )
    .expect("write");
    let url = format!("{}/api/heartbeat/run", gw.url());
    let (status, body) = http_post(&url, None, "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("idle"),
        "no conversation yet: skipped: {body}"
    );
    assert_eq!(
        llm.requests().len() + cheap.requests().len(),
        0,
        "no model call"
    );
    tg.dm(42, "hi");
    tg.wait_sent(1, 15);
    cheap.push(Reply::Text(vec!["You have mail.".into()]));
    let (status, body) = http_post(&url, None, "");
    assert_eq!(status, 200, "{body}");
    let sent = tg.wait_sent(2, 15);
    assert_eq!(
        sent[1],
        (
            "42".to_string(),
            "You have mail.".to_string(),
            sent[1].2.clone()
        )
    );
    assert_eq!(
        cheap.requests().len(),
        1,
        "heartbeat.model answered the beat"
    );
}
