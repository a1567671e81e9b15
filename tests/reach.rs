//! Reaching people from a run, end to end against the fake Telegram: the
//! `message` tool (a job posting to two allowed chats, a refused target, a
//! message queued before a kill -9 delivered after the restart), heartbeat
//! alerts to an unreachable chat dead-lettered after their own bounded
//! attempts while later beats go on, and the owner's last chat remembered
//! with its thread, where the `"owner"` target and job reports go (and
//! read from the format an earlier release stored).

mod common;

use common::telegram::{FakeTelegram, TOKEN};
use common::*;
use serde_json::{json, Value};

/// Telegram with 42 as the owner; `extra` is appended at the top level.
fn config(llm: &FakeLlm, tg: &FakeTelegram, extra: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": 1, "dmPolicy": "allowlist", "allowFrom": ["42"]}}}}, "queue": {{"baseBackoffMs": 50, "maxBackoffMs": 200}} {extra}"#,
            tg.api_root()
        ),
    )
}

fn message_call(id: &str, to: &str, text: &str) -> Reply {
    Reply::ToolCall {
        id: id.into(),
        name: "message".into(),
        args: json!({"to": to, "text": text}).to_string(),
    }
}

/// The result the model got for its tool call `id`.
fn tool_result(llm: &FakeLlm, id: &str) -> String {
    llm.requests()
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
        .and_then(|m| m["content"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no result for tool call {id}"))
}

fn sent_to(tg: &FakeTelegram, chat: &str) -> Vec<String> {
    tg.sent()
        .into_iter()
        .filter(|(c, _, _)| c == chat)
        .map(|(_, text, _)| text)
        .collect()
}

fn queue_list(gw: &Gateway) -> Value {
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("queue.list", json!({}));
    assert_eq!(r["ok"], true, "{r}");
    r["payload"].clone()
}

#[test]
fn a_job_posts_to_two_allowed_chats_and_a_target_outside_the_list_is_refused() {
    let home = TempHome::new("reach-job");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config(
        &llm,
        &tg,
        r#", "tools": {"message": {"allowTargets": ["telegram:501", "telegram:502", "owner"]}}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    llm.push(message_call("m1", "telegram:501", "Digest: rain at noon"));
    llm.push(message_call("m2", "telegram:502", "Digest: rain at noon"));
    llm.push(message_call("m3", "telegram:999", "psst"));
    llm.push(Reply::Text(vec!["Posted the digest.".into()]));
    home.run_ok(&[
        "cron",
        "add",
        "--name",
        "digest",
        "--every",
        "1d",
        "--message",
        "Post the digest",
        "--to",
        "telegram:42",
        "--url",
        &gw.url(),
    ]);
    home.run_ok(&["cron", "run-now", "digest", "--url", &gw.url()]);
    tg.wait_sent(3, 20);
    let tools: Vec<String> = llm.requests()[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(tools.iter().any(|t| t == "message"), "{tools:?}");
    assert!(tool_result(&llm, "m1").starts_with("queued for telegram:501"));
    assert!(tool_result(&llm, "m2").starts_with("queued for telegram:502"));
    let refused = tool_result(&llm, "m3");
    assert!(
        refused.contains("not an allowed target") && refused.contains("tools.message.allowTargets"),
        "{refused}"
    );
    // Nothing more is on its way: the queue is empty once the answer is out.
    assert!(wait_until(10, || queue_list(&gw)["queued"]
        .as_array()
        .is_some_and(|q| q.is_empty())));
    assert_eq!(sent_to(&tg, "501"), ["Digest: rain at noon"], "once");
    assert_eq!(sent_to(&tg, "502"), ["Digest: rain at noon"], "once");
    assert!(sent_to(&tg, "999").is_empty());
    assert_eq!(sent_to(&tg, "42"), ["Posted the digest."]);
    // The same refusal for a client calling message.send directly.
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("message.send", json!({"to": "telegram:7", "text": "hi"}));
    assert_eq!(r["error"]["code"], "UNAUTHORIZED", "{r}");
    // One message is bounded.
    let big = "x".repeat(16 * 1024 + 1);
    let r = ws.call("message.send", json!({"to": "telegram:501", "text": big}));
    assert_eq!(r["error"]["code"], "TOO_LARGE", "{r}");
    assert_eq!(sent_to(&tg, "501").len(), 1);
}

#[test]
fn the_tool_is_not_offered_without_allowed_targets() {
    let home = TempHome::new("reach-off");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config(&llm, &tg, ""));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    ws.call("chat.send", json!({"session": "t:off", "text": "hello"}));
    ws.until_done();
    let tools: Vec<String> = llm.requests()[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        tools.iter().any(|t| t == "cron") && !tools.iter().any(|t| t == "message"),
        "{tools:?}"
    );
    let r = ws.call("message.send", json!({"to": "telegram:42", "text": "hi"}));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tools.message.allowTargets"),
        "{r}"
    );
    // A target on a channel this build has no adapter for is a config error.
    home.write_config(&config(
        &llm,
        &tg,
        r#", "tools": {"message": {"allowTargets": ["wechat:1"]}}"#,
    ));
    let e = Gateway::try_start(&home, &[]).err().expect("refused");
    assert!(
        e.contains("tools.message.allowTargets") && e.contains("no adapter"),
        "{e}"
    );
}

#[test]
fn a_message_queued_before_a_kill_is_delivered_after_the_restart() {
    let home = TempHome::new("reach-kill");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config(
        &llm,
        &tg,
        r#", "tools": {"message": {"allowTargets": ["telegram:601"]}}"#,
    ));
    tg.with(|s| s.failing_chats.push("601".into()));
    let gw = Gateway::start(&home, &[]);
    llm.push(message_call("k1", "telegram:601", "the backup finished"));
    llm.push(Reply::Text(vec!["I will tell them.".into()]));
    let mut ws = Ws::connect(gw.addr);
    ws.call(
        "chat.send",
        json!({"session": "t:kill", "text": "tell 601 when the backup is done"}),
    );
    ws.until_done();
    assert!(tool_result(&llm, "k1").starts_with("queued for telegram:601"));
    assert!(
        wait_until(10, || tg.with(|s| s.attempts_by_chat.get("601").copied())
            >= Some(1)),
        "a first attempt failed"
    );
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    assert!(sent_to(&tg, "601").is_empty());
    tg.with(|s| s.failing_chats.clear());
    let _gw = Gateway::start(&home, &[]);
    let sent = tg.wait_sent(1, 20);
    assert_eq!(sent_to(&tg, "601"), ["the backup finished"], "{sent:?}");
}

#[test]
fn undeliverable_heartbeat_alerts_are_dead_lettered_and_later_beats_still_run() {
    let home = TempHome::new("reach-beat");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    let cfg = config(&llm, &tg, "").replace(
        r#""fallbacks": []}"#,
        r#""fallbacks": []}, "heartbeat": {"every": "12h", "to": "telegram:77", "maxAttempts": 2}"#,
    );
    assert!(cfg.contains("maxAttempts"), "{cfg}");
    home.write_config(&cfg);
    tg.with(|s| s.failing_chats.push("77".into()));
    let gw = Gateway::start(&home, &[]);
    std::fs::write(
        home.path.join("workspace/HEARTBEAT.md"),
        "- check the disk\n",
    )
    .expect("write");
    let url = format!("{}/api/heartbeat/run", gw.url());
    for beat in 1..=3u64 {
        llm.push(Reply::Text(vec![format!("alert {beat}: the disk is full")]));
        let (status, body) = http_post(&url, None, "");
        assert_eq!(status, 200, "beat {beat} runs: {body}");
        assert!(body.contains("\"started\":true"), "{body}");
        assert!(
            wait_until(15, || {
                let h = &status_json(&gw)["cron"]["heartbeat"];
                h["beats"].as_u64() >= Some(beat) && h["running"] == false
            }),
            "beat {beat} ends"
        );
    }
    // Each alert gets exactly its two attempts, then goes to the dead letters.
    assert!(
        wait_until(20, || queue_list(&gw)["dead"].as_array().map(Vec::len)
            == Some(3)),
        "three dead letters: {}",
        queue_list(&gw)
    );
    let q = queue_list(&gw);
    for dead in q["dead"].as_array().expect("dead") {
        assert_eq!(dead["attempts"], 2, "{dead}");
        assert!(
            dead["reason"].as_str().unwrap_or("").contains("own limit"),
            "{dead}"
        );
    }
    assert_eq!(q["queued"].as_array().map(Vec::len), Some(0));
    let texts: Vec<&str> = q["dead"]
        .as_array()
        .expect("dead")
        .iter()
        .filter_map(|d| d["outbound"]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "alert 1: the disk is full",
            "alert 2: the disk is full",
            "alert 3: the disk is full"
        ]
    );
    // The owner's own chat is not held by them.
    llm.push(Reply::Text(vec!["pong".into()]));
    tg.dm(42, "ping");
    let sent = tg.wait_sent(1, 15);
    assert_eq!(sent[0].0, "42");
    assert_eq!(tg.with(|s| s.attempts_by_chat.get("77").copied()), Some(6));
}

#[test]
fn a_jobs_report_lands_in_the_thread_the_owner_last_used() {
    let home = TempHome::new("reach-thread");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config(
        &llm,
        &tg,
        r#", "tools": {"message": {"allowTargets": ["owner"]}}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    tg.dm_topic(42, 7, "hi from topic 7");
    tg.wait_sent(1, 15);
    llm.push(message_call("o1", "owner", "a note on the way"));
    llm.push(Reply::Text(vec!["the report".into()]));
    home.run_ok(&[
        "cron",
        "add",
        "--name",
        "report",
        "--every",
        "1d",
        "--message",
        "Report",
        "--url",
        &gw.url(),
    ]);
    home.run_ok(&["cron", "run-now", "report", "--url", &gw.url()]);
    let sent = tg.wait_sent(3, 20);
    assert!(tool_result(&llm, "o1").starts_with("queued for telegram:42"));
    assert_eq!(
        sent[1],
        ("42".into(), "a note on the way".into(), sent[1].2.clone())
    );
    assert_eq!(
        sent[2],
        ("42".into(), "the report".into(), sent[2].2.clone())
    );
    assert_eq!(
        tg.with(|s| s.sent_threads.clone()),
        [Some(7), Some(7), Some(7)],
        "the reply, the message to \"owner\" and the job's report all go to topic 7"
    );
    let s = status_json(&gw);
    assert_eq!(s["cron"]["lastChat"], "telegram:42", "{s}");
    assert_eq!(s["cron"]["lastChatThread"], "7", "{s}");
}

#[test]
fn a_last_chat_stored_by_an_earlier_release_still_works() {
    let home = TempHome::new("reach-oldlast");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config(&llm, &tg, ""));
    {
        // The first format: a bare `channel:chat` string.
        let store = pinch::store::Store::open(&home.path.join("state.redb")).expect("store");
        store.kv_put("sched/lastChat", b"telegram:42").expect("put");
    }
    let gw = Gateway::start(&home, &[]);
    assert_eq!(status_json(&gw)["cron"]["lastChat"], "telegram:42");
    llm.push(Reply::Text(vec!["old format, still delivered".into()]));
    home.run_ok(&[
        "cron",
        "add",
        "--name",
        "old",
        "--every",
        "1d",
        "--message",
        "Report",
        "--url",
        &gw.url(),
    ]);
    home.run_ok(&["cron", "run-now", "old", "--url", &gw.url()]);
    let sent = tg.wait_sent(1, 20);
    assert_eq!(sent[0].0, "42");
    assert_eq!(sent[0].1, "old format, still delivered");
    assert_eq!(tg.with(|s| s.sent_threads.clone()), [None]);
}
