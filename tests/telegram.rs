//! The Telegram channel end to end against the fake Bot API: replies,
//! access control and pairing, mentions, splitting, retry-after, markup
//! fallback, an outage, restarts and crashes (kill -9).

mod common;

use common::telegram::{FakeTelegram, BOT_NAME, TOKEN};
use common::*;
use std::time::{Duration, Instant};

fn tg_config(llm: &FakeLlm, tg: &FakeTelegram, access: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": 1 {access}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            tg.api_root()
        ),
    )
}

fn allow42() -> &'static str {
    r#", "dmPolicy": "allowlist", "allowFrom": ["42"], "groupPolicy": "allowlist", "groups": {"-100": {}}"#
}

#[test]
fn a_direct_message_gets_the_models_answer_and_the_offset_advances() {
    let home = TempHome::new("tg-dm");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let gw = Gateway::start(&home, &[]);
    let uid = tg.dm(42, "hello bot");
    let sent = tg.wait_sent(1, 15);
    assert_eq!(sent[0].0, "42");
    assert_eq!(sent[0].1, "Hello from fake: hello bot");
    assert!(
        tg.with(|s| s.typing) >= 1,
        "typing indicator while the agent works"
    );
    assert!(
        wait_until(5, || tg.with(|s| s.offsets.contains(&Some(uid + 1)))),
        "the next poll confirms the update"
    );
    // Someone not on the allowlist is dropped, counted, and never reaches the model.
    let before = llm.requests().len();
    tg.dm(43, "let me in");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(llm.requests().len(), before);
    let st = status_json(&gw);
    assert_eq!(
        st["channels"]["channels"]["telegram"]["health"]["state"], "up",
        "{st}"
    );
    assert!(
        st["channels"]["queue"]
            .to_string()
            .contains("NotAllowlisted"),
        "drops are visible: {st}"
    );
}

#[test]
fn pairing_flow_approves_a_stranger_for_direct_messages() {
    let home = TempHome::new("tg-pair");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, ""));
    let gw = Gateway::start(&home, &[]);
    tg.dm(7, "hi there");
    let sent = tg.wait_sent(1, 15);
    assert_eq!(
        llm.requests().len(),
        0,
        "no model call for an unknown sender"
    );
    let code: String = sent[0]
        .1
        .split("pairing code is ")
        .nth(1)
        .expect("code in message")
        .chars()
        .take(8)
        .collect();
    assert_eq!(code.len(), 8);
    assert!(
        code.chars()
            .all(|c| "ABCDEFGHJKMNPQRSTUVWXYZ23456789".contains(c)),
        "{code}"
    );
    tg.dm(7, "hello?");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        tg.sent().len(),
        1,
        "the code is not re-sent on every message"
    );
    let out = home.run(&["pairing", "list", "--url", &gw.url()]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&code));
    assert!(
        listed.contains(&format!("{code}  from 7 ")),
        "the sender id is read from the camelCase wire shape: {listed}"
    );
    home.run_ok(&["pairing", "approve", "telegram", &code, "--url", &gw.url()]);
    tg.dm(7, "now?");
    let sent = tg.wait_sent(2, 15);
    assert_eq!(sent[1].1, "Hello from fake: now?");
    // Approval persists across a restart, and grants no group access.
    gw.stop();
    let gw = Gateway::start(&home, &[]);
    tg.group(-555, 7, "in a group", true);
    tg.dm(7, "after restart");
    let sent = tg.wait_sent(3, 15);
    assert_eq!(sent[2].1, "Hello from fake: after restart");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(tg.sent().len(), 3, "the group message was not answered");
    drop(gw);
}

#[test]
fn groups_need_a_mention() {
    let home = TempHome::new("tg-group");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let _gw = Gateway::start(&home, &[]);
    tg.group(-100, 5, "just chatting", false);
    tg.group(-100, 5, "what time is it?", true);
    let sent = tg.wait_sent(1, 15);
    assert_eq!(sent[0].0, "-100");
    assert!(sent[0].1.contains("what time is it?"), "{sent:?}");
    assert!(
        !sent[0].1.contains(&format!("@{BOT_NAME}")),
        "the mention is not echoed back as text: {sent:?}"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(tg.sent().len(), 1);
}

#[test]
fn a_forum_topic_message_is_answered_in_its_topic() {
    let home = TempHome::new("tg-topic");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let _gw = Gateway::start(&home, &[]);
    tg.topic(-100, 77, 42, "in the topic", true);
    let sent = tg.wait_sent(1, 15);
    assert_eq!(sent[0].0, "-100");
    assert_eq!(
        tg.with(|s| s.sent_threads.clone()),
        vec![Some(77)],
        "the reply carries message_thread_id, so it lands in the topic, not General"
    );
    assert!(
        tg.with(|s| s.typing_threads.contains(&Some(77))),
        "typing shows in the topic"
    );
    // A plain group message (no topic) is answered without a thread.
    tg.group(-100, 42, "no topic", true);
    tg.wait_sent(2, 15);
    assert_eq!(tg.with(|s| s.sent_threads.clone()), vec![Some(77), None]);
}

#[test]
fn long_replies_are_split_in_order_within_the_limit() {
    let home = TempHome::new("tg-split");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let paragraphs: Vec<String> = (0..40)
        .map(|i| format!("Paragraph {i}. {}", "word ".repeat(50)))
        .collect();
    let long = paragraphs.join("\n\n");
    llm.push(Reply::Text(vec![long.clone()]));
    let _gw = Gateway::start(&home, &[]);
    tg.dm(42, "write a lot");
    let n = long.len() / 4096 + 1;
    let sent = tg.wait_sent(n, 15);
    assert!(sent.len() >= 3);
    for (_, text, _) in &sent {
        assert!(text.encode_utf16().count() <= 4096);
    }
    let joined: String = sent
        .iter()
        .map(|(_, t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(
        joined.split_whitespace().collect::<Vec<_>>(),
        long.split_whitespace().collect::<Vec<_>>(),
        "nothing lost or reordered"
    );
    assert!(sent[0].1.starts_with("Paragraph 0."));
}

#[test]
fn retry_after_markup_fallback_and_an_outage() {
    let home = TempHome::new("tg-retry");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let _gw = Gateway::start(&home, &[]);
    // 429 with retry_after: the send waits at least that long, then succeeds.
    tg.with(|s| s.send_failures.push((429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#.into())));
    let t0 = Instant::now();
    tg.dm(42, "first");
    tg.wait_sent(1, 15);
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "retry_after honoured"
    );
    assert_eq!(tg.with(|s| s.send_attempts), 2);
    // Markup the platform rejects goes out as plain text.
    tg.with(|s| s.reject_html = true);
    tg.dm(42, "second");
    let sent = tg.wait_sent(2, 15);
    assert_eq!(sent[1].2, None, "resent without parse_mode");
    tg.with(|s| s.reject_html = false);
    // An outage: replies queue up, then arrive in order when it ends.
    tg.with(|s| s.down = true);
    for i in 0..3 {
        tg.dm(42, &format!("queued {i}"));
    }
    assert!(
        wait_until(15, || llm.requests().len() >= 5),
        "the model answered all three during the outage: {} requests\n{}",
        llm.requests().len(),
        _gw.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tg.sent().len(), 2, "nothing delivered while down");
    tg.with(|s| s.down = false);
    let sent = tg.wait_sent(5, 30);
    let texts: Vec<&str> = sent[2..].iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Hello from fake: queued 0",
            "Hello from fake: queued 1",
            "Hello from fake: queued 2"
        ]
    );
}

#[test]
fn restarts_and_crashes_neither_lose_nor_repeat() {
    let home = TempHome::new("tg-crash");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    // 1. A clean restart does not replay an answered message.
    let gw = Gateway::start(&home, &[]);
    tg.dm(42, "once");
    tg.wait_sent(1, 15);
    std::thread::sleep(Duration::from_millis(300));
    gw.stop();
    let gw = Gateway::start(&home, &[]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(tg.sent().len(), 1, "no replay after restart");
    // 2. kill -9 while the model is working: after restart the message is
    //    answered exactly once.
    llm.push(Reply::Hang);
    tg.dm(42, "during crash");
    assert!(
        wait_until(10, || llm.requests().len() >= 2),
        "the model got the message"
    );
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    let gw = Gateway::start(&home, &[]);
    let sent = tg.wait_sent(2, 20);
    assert_eq!(sent[1].1, "Hello from fake: during crash");
    // 3. kill -9 after the reply is committed but before Telegram takes it.
    tg.with(|s| s.down = true);
    tg.dm(42, "committed");
    assert!(
        wait_until(10, || tg.with(|s| s.send_attempts) >= 4),
        "a send was attempted and failed"
    );
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    tg.with(|s| s.down = false);
    let _gw = Gateway::start(&home, &[]);
    let sent = tg.wait_sent(3, 20);
    assert_eq!(sent[2].1, "Hello from fake: committed");
    std::thread::sleep(Duration::from_millis(1500));
    let texts: Vec<String> = tg.sent().into_iter().map(|(_, t, _)| t).collect();
    assert_eq!(
        texts.iter().filter(|t| t.ends_with("during crash")).count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.ends_with("committed")).count(),
        1,
        "{texts:?}"
    );
}

#[test]
fn conflict_is_reported_plainly_and_its_end_is_a_reconnect() {
    let home = TempHome::new("tg-409");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    tg.with(|s| s.conflict = true);
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let gw = Gateway::start(&home, &[]);
    assert!(
        wait_until(10, || {
            let (_, body) = http_get(&format!("{}/status", gw.url()), None);
            body.contains("\"conflict\"")
        }),
        "status shows the 409 conflict"
    );
    assert!(gw.log().contains("409 Conflict"), "{}", gw.log());
    let health =
        |gw: &Gateway| status_json(gw)["channels"]["channels"]["telegram"]["health"].clone();
    let h = health(&gw);
    assert_eq!(h["reconnectsToday"], 0, "{h}");
    assert!(h["error"].as_str().unwrap_or("").contains("409"), "{h}");
    // The other consumer goes away: the next poll works, and that recovery
    // is one reconnect; the last answered poll is the last event.
    tg.with(|s| s.conflict = false);
    assert!(
        wait_until(30, || health(&gw)["state"] == "up"),
        "{}",
        health(&gw)
    );
    let h = health(&gw);
    assert_eq!(h["reconnectsToday"], 1, "{h}");
    assert!(h["lastEventMs"].as_u64().is_some(), "{h}");
    assert!(h["error"].is_null() && h["failures"] == 0, "{h}");
    let out = home.run_ok(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("adapter telegram: "))
        .unwrap_or_else(|| panic!("no adapter line in:\n{text}"));
    assert!(
        line.starts_with("adapter telegram: up, last event ")
            && line.ends_with(" 1 reconnects today"),
        "{line}"
    );
}

/// The crash benchmark (not run by default): `PINCH_CRASH_TRIALS` (100)
/// rounds of messages from three chats, each round cut by kill -9 at a
/// random moment, then a restart. Checks that every message is answered,
/// in order per chat, never lost; counts repeated sends (the documented
/// window between Telegram accepting a send and our commit). Run with
/// `cargo test --release --test telegram crash_trials -- --ignored --nocapture`.
#[test]
#[ignore]
fn crash_trials() {
    let trials: usize = std::env::var("PINCH_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let home = TempHome::new("tg-trials");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(
        &llm,
        &tg,
        r#", "dmPolicy": "allowlist", "allowFrom": ["41", "42", "43"]"#,
    ));
    let mut expected: Vec<(String, String)> = Vec::new();
    let t0 = Instant::now();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for trial in 0..trials {
        let gw = Gateway::start(&home, &[]);
        for chat in ["41", "42", "43"] {
            let text = format!("t{trial} c{chat}");
            tg.dm(chat.parse().expect("id"), &text);
            expected.push((chat.to_string(), format!("Hello from fake: {text}")));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 400));
        unsafe_kill(gw.child.id(), 9);
        drop(gw);
    }
    let gw = Gateway::start(&home, &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = tg.sent();
        let all = expected
            .iter()
            .all(|(c, t)| sent.iter().any(|(sc, st, _)| sc == c && st == t));
        if all || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = tg.sent();
    let mut missing = 0;
    let mut repeated = 0;
    for (c, t) in &expected {
        let n = sent.iter().filter(|(sc, st, _)| sc == c && st == t).count();
        if n == 0 {
            missing += 1;
        }
        repeated += n.saturating_sub(1);
    }
    for chat in ["41", "42", "43"] {
        let order: Vec<&String> = sent
            .iter()
            .filter(|(c, _, _)| c == chat)
            .map(|(_, t, _)| t)
            .collect();
        let mut firsts: Vec<&String> = Vec::new();
        for t in order {
            if !firsts.contains(&t) {
                firsts.push(t);
            }
        }
        let want: Vec<&String> = expected
            .iter()
            .filter(|(c, _)| c == chat)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(firsts, want, "chat {chat}: replies out of order");
    }
    println!("crash trials: {trials}, messages: {}, lost: {missing}, repeated sends: {repeated}, model calls: {}, total {:.1} s", expected.len(), llm.requests().len(), t0.elapsed().as_secs_f64());
    drop(gw);
    assert_eq!(missing, 0, "messages lost");
}

#[test]
fn a_scheduled_job_delivers_to_the_chat_without_a_prompt() {
    let home = TempHome::new("tg-cron");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&tg_config(&llm, &tg, allow42()));
    let gw = Gateway::start(&home, &[]);
    let at = pinch::util::rfc3339(pinch::util::now_ms() + 2500);
    home.run_ok(&[
        "cron",
        "add",
        "--name",
        "digest",
        "--at",
        &at,
        "--message",
        "Morning digest please",
        "--to",
        "telegram:42",
        "--url",
        &gw.url(),
    ]);
    let sent = tg.wait_sent(1, 20);
    assert_eq!(sent[0].0, "42");
    assert!(sent[0].1.contains("Morning digest please"), "{sent:?}");
    let out = home.run(&["cron", "list", "--url", &gw.url()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("digest") && text.to_lowercase().contains("ok"),
        "{text}"
    );
}
