//! The Slack channel end to end: the real gateway binary against the fake
//! Slack (Web API + Socket Mode) and the fake model. DMs, channel posts with
//! and without a mention, the message + app_mention double delivery, a
//! retried envelope, disconnects and socket loss with fresh tickets, 429
//! with Retry-After, access control and pairing.

mod common;

use common::slack_fake::{Command, FakeSlack, APP_TOKEN, BOT_TOKEN, BOT_USER};
use common::*;
use std::time::Duration;

fn slack_config(llm: &FakeLlm, slack: &FakeSlack, access: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"slack": {{"appToken": "{APP_TOKEN}", "botToken": "{BOT_TOKEN}", "apiRoot": "{}" {access}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            slack.api_root()
        ),
    )
}

fn allow_ann() -> &'static str {
    r#", "dmPolicy": "allowlist", "allowFrom": ["U0ANN"], "groupPolicy": "allowlist", "groups": {"C0GEN": {}}"#
}

#[test]
fn a_direct_message_is_answered_through_chat_post_message() {
    let home = TempHome::new("slack-dm");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    assert!(slack.with(|s| s.auth_tests) >= 1, "auth.test at start");
    // Slack sends &, < and > as entities; the model sees them decoded.
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "hello **bot** &amp; &lt;friends&gt;");
    slack.wait_ack(&env, 10);
    let posted = slack.wait_posted(1, 15);
    assert_eq!(posted[0].channel, "D0ANN");
    assert_eq!(
        posted[0].text, "Hello from fake: hello *bot* &amp; &lt;friends&gt;",
        "Markdown became mrkdwn and the text was escaped"
    );
    assert_eq!(posted[0].thread_ts, None);
    assert_eq!(
        slack.with(|s| s.unauthorized),
        0,
        "each call used its own token"
    );
    // A sender not on the allowlist is acked, counted and never reaches the model.
    let before = llm.requests().len();
    let (env, _, _) = slack.dm("D0BOB", "U0BOB", "let me in");
    slack.wait_ack(&env, 10);
    assert!(
        wait_until(10, || status_json(&gw)["channels"]["queue"]
            .to_string()
            .contains("NotAllowlisted")),
        "drops are visible: {}",
        status_json(&gw)
    );
    assert_eq!(llm.requests().len(), before);
    let st = status_json(&gw);
    let health = &st["channels"]["channels"]["slack"]["health"];
    assert_eq!(health["state"], "up", "{st}");
    assert!(health["lastEventMs"].as_u64().is_some(), "{st}");
    assert!(health["error"].is_null() && health["failures"] == 0, "{st}");
}

#[test]
fn channel_posts_need_a_mention_answer_once_and_stay_in_their_thread() {
    let home = TempHome::new("slack-channel");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    let (quiet, _) = slack.channel_post("C0GEN", "U0CAROL", "just chatting", false, None);
    let (both, _) = slack.channel_post(
        "C0GEN",
        "U0CAROL",
        "what time is it?",
        true,
        Some("1790000000.000001"),
    );
    assert_eq!(both.len(), 2, "message + app_mention for one post");
    for id in quiet.iter().chain(&both) {
        slack.wait_ack(id, 10);
    }
    let posted = slack.wait_posted(1, 15);
    assert_eq!(posted[0].channel, "C0GEN");
    assert!(posted[0].text.contains("what time is it?"), "{posted:?}");
    assert!(
        !posted[0].text.contains(BOT_USER),
        "the mention is not echoed: {posted:?}"
    );
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1790000000.000001"));
    // Everything before the marker was handled; the marker's answer comes
    // after any answer to the duplicate would have been queued.
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "marker");
    slack.wait_ack(&env, 10);
    let posted = slack.wait_posted(2, 15);
    assert!(posted[1].text.contains("marker"), "{posted:?}");
    assert_eq!(
        llm.requests().len(),
        2,
        "one model call per post: {posted:?}"
    );
    assert_eq!(slack.posted().len(), 2);
}

#[test]
fn a_retried_envelope_is_answered_once() {
    let home = TempHome::new("slack-retry");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    let ts = "1790000100.000100";
    let event = serde_json::json!({"type": "message", "text": "once please", "user": "U0ANN", "ts": ts, "channel": "D0ANN", "event_ts": ts, "channel_type": "im"});
    let (env1, ev1, v) = slack.envelope(event.clone(), None);
    slack.push(v);
    slack.wait_ack(&env1, 10);
    slack.wait_posted(1, 15);
    // Slack resends the same event (same event_id) in a new envelope.
    let (env2, _, v) = slack.envelope(event, Some(&(env1.clone(), ev1)));
    slack.push(v);
    slack.wait_ack(&env2, 10);
    let (env3, _, _) = slack.dm("D0ANN", "U0ANN", "marker");
    slack.wait_ack(&env3, 10);
    let posted = slack.wait_posted(2, 15);
    assert!(posted[1].text.contains("marker"), "{posted:?}");
    assert_eq!(llm.requests().len(), 2);
}

#[test]
fn disconnects_and_lost_sockets_reconnect_with_fresh_tickets() {
    let home = TempHome::new("slack-reconnect");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.command(Command::Disconnect("refresh_requested".into()));
    slack.wait(15, "a second connection", |s| {
        s.connections >= 2 && s.open_sockets == 1
    });
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "after refresh");
    slack.wait_ack(&env, 10);
    assert!(slack.wait_posted(1, 15)[0].text.contains("after refresh"));
    // The socket vanishes without a close frame.
    slack.command(Command::Drop);
    slack.wait(15, "a third connection", |s| {
        s.connections >= 3 && s.open_sockets == 1
    });
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "after a drop");
    slack.wait_ack(&env, 10);
    assert!(slack.wait_posted(2, 15)[1].text.contains("after a drop"));
    slack.with(|s| {
        assert_eq!(
            s.tickets_used,
            vec![1, 2, 3],
            "each connection used a fresh URL"
        );
        assert_eq!(s.tickets_refused, 0);
    });
    assert_eq!(llm.requests().len(), 2);
    assert!(
        wait_until(5, || status_json(&gw)["channels"]["channels"]["slack"]
            ["health"]["reconnectsToday"]
            .as_u64()
            >= Some(2)),
        "{}",
        status_json(&gw)
    );
}

#[test]
fn a_rate_limited_reply_waits_for_retry_after() {
    let home = TempHome::new("slack-429");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.with(|s| s.rate_limits.push_back(1));
    slack.dm("D0ANN", "U0ANN", "slowly");
    let posted = slack.wait_posted(1, 15);
    let limited = slack.with(|s| s.rate_limited_at.clone());
    assert_eq!(limited.len(), 1);
    let waited = posted[0].at.duration_since(limited[0]);
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert_eq!(slack.with(|s| s.post_attempts), 2);
    assert_eq!(
        llm.requests().len(),
        1,
        "the answer is sent again, not regenerated"
    );
}

#[test]
fn pairing_opens_direct_messages_for_an_approved_stranger() {
    let home = TempHome::new("slack-pair");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(
        &llm,
        &slack,
        r#", "groupPolicy": "disabled""#,
    ));
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.dm("D0DAN", "U0DAN", "hi there");
    let posted = slack.wait_posted(1, 15);
    assert_eq!(
        llm.requests().len(),
        0,
        "no model call for an unknown sender"
    );
    let code: String = posted[0]
        .text
        .split("pairing code is ")
        .nth(1)
        .expect("a code in the message")
        .chars()
        .take(8)
        .collect();
    home.run_ok(&["pairing", "approve", "slack", &code, "--url", &gw.url()]);
    slack.dm("D0DAN", "U0DAN", "now?");
    let posted = slack.wait_posted(2, 15);
    assert_eq!(posted[1].text, "Hello from fake: now?");
    // Pairing grants no channel access; groupPolicy disabled drops channel posts.
    let (ids, _) = slack.channel_post("C0GEN", "U0DAN", "here too?", true, None);
    for id in &ids {
        slack.wait_ack(id, 10);
    }
    let (env, _, _) = slack.dm("D0DAN", "U0DAN", "marker");
    slack.wait_ack(&env, 10);
    let posted = slack.wait_posted(3, 15);
    assert!(posted[2].text.contains("marker"), "{posted:?}");
    assert_eq!(llm.requests().len(), 2);
}

#[test]
fn a_missing_app_token_stops_the_start_and_says_which_key() {
    let home = TempHome::new("slack-notoken");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    let cfg = slack_config(&llm, &slack, allow_ann())
        .replace(&format!(r#""appToken": "{APP_TOKEN}", "#), "");
    home.write_config(&cfg);
    let err = match Gateway::try_start(&home, &[]) {
        Ok(_) => panic!("the gateway started without channels.slack.appToken"),
        Err(log) => log,
    };
    assert!(err.contains("channels.slack.appToken is required"), "{err}");
    assert_eq!(slack.with(|s| s.tickets_issued), 0);
}

#[test]
fn openclaw_channel_rules_dm_block_and_reply_to_mode_are_honoured() {
    let home = TempHome::new("slack-openclaw");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    // OpenClaw's spellings: channels.<id> rules (requireMention, users,
    // enabled), the older dm.policy / dm.allowFrom, an unsupported dm key,
    // and replyToMode "all" (answers start a thread under the message).
    let access = r#", "groupPolicy": "allowlist", "replyToMode": "all",
        "dm": {"policy": "allowlist", "allowFrom": ["U0ANN"], "groupEnabled": false},
        "channels": {"C0OPEN": {"requireMention": false, "users": ["U0CAROL"]},
                     "C0OFF": {"enabled": false, "requireMention": false}}"#;
    home.write_config(&slack_config(&llm, &slack, access));
    let out = home.run(&["config", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: channels.slack.dm.groupEnabled: ignored: not supported by pinch"),
        "{stdout}"
    );
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    let (off, _) = slack.channel_post("C0OFF", "U0CAROL", "switched off", false, None);
    let (stranger, _) = slack.channel_post("C0OPEN", "U0DAVE", "not on the list", false, None);
    let (dm_bob, _, _) = slack.dm("D0BOB", "U0BOB", "dm from someone else");
    for id in off.iter().chain(&stranger).chain([&dm_bob]) {
        slack.wait_ack(id, 10);
    }
    let (open, ts) = slack.channel_post("C0OPEN", "U0CAROL", "no mention needed", false, None);
    slack.wait_ack(&open[0], 10);
    let posted = slack.wait_posted(1, 15);
    assert_eq!(posted[0].channel, "C0OPEN");
    assert!(posted[0].text.contains("no mention needed"), "{posted:?}");
    assert_eq!(
        posted[0].thread_ts.as_deref(),
        Some(ts.as_str()),
        "threaded"
    );
    let (dm, _, _) = slack.dm("D0ANN", "U0ANN", "dm allowed by dm.allowFrom");
    slack.wait_ack(&dm, 10);
    let posted = slack.wait_posted(2, 15);
    assert!(posted[1].text.contains("dm allowed"), "{posted:?}");
    assert_eq!(
        llm.requests().len(),
        2,
        "the other three were dropped: {posted:?}"
    );
}

/// Sends in the chat of `text`'s answer, in the order Slack took them.
fn answers_to(slack: &FakeSlack, text: &str) -> usize {
    slack
        .posted()
        .iter()
        .filter(|p| p.text.contains(text))
        .count()
}

#[test]
fn a_send_slack_took_before_a_kill_is_found_by_its_metadata_and_not_posted_again() {
    let home = TempHome::new("slack-exactly-once");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    // Slack takes the answer but its reply never comes back; the process
    // dies before it could commit the send.
    slack.with(|s| s.hold_answers = 1);
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "first question");
    slack.wait_ack(&env, 10);
    let posted = slack.wait_posted(1, 15);
    let metadata = posted[0]
        .metadata
        .clone()
        .expect("the send carries metadata");
    assert_eq!(metadata["event_type"], "pinch_send", "{metadata}");
    let id = metadata["event_payload"]["id"].as_str().unwrap_or("");
    assert!(!id.is_empty(), "{metadata}");
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    slack.wait(10, "the killed socket to close", |s| s.open_sockets == 0);
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(2, 15);
    slack.wait(15, "the lookup", |s| !s.lookups.is_empty());
    // The next message's answer follows only once the first is committed.
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "second question");
    slack.wait_ack(&env, 10);
    slack.wait(15, "the second answer", |s| {
        s.posted.iter().any(|p| p.text.contains("second question"))
    });
    assert_eq!(
        answers_to(&slack, "first question"),
        1,
        "{:?}",
        slack.posted()
    );
    slack.with(|s| {
        let lookup = &s.lookups[0];
        assert_eq!(lookup.method, "conversations.history");
        assert_eq!(lookup.params["channel"], "D0ANN");
        assert_eq!(lookup.params["include_all_metadata"], "true");
        assert!(lookup.answered.contains(&posted[0].ts), "{lookup:?}");
        assert_eq!(s.lookups.len(), 1, "the second answer needed no lookup");
    });
    assert!(
        gw.log().contains(&format!("send {id} is already in D0ANN")),
        "{}",
        gw.log()
    );
    let st = status_json(&gw);
    let checks = &st["channels"]["channels"]["slack"]["health"]["sendChecks"];
    assert!(
        wait_until(5, || status_json(&gw)["channels"]["channels"]["slack"]
            ["health"]["sendChecks"]["found"]
            == 1),
        "{checks}"
    );
}

#[test]
fn a_thread_reply_is_looked_up_in_its_thread_and_a_failed_lookup_posts() {
    let home = TempHome::new("slack-exactly-once-thread");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, allow_ann()));
    // A thread under a post that needs no answer (no mention).
    let (_, parent) = slack.channel_post("C0GEN", "U0ANN", "a thread starts", false, None);
    let kill_with_answer_held = |gw: Gateway, question: &str| {
        slack.with(|s| s.hold_answers = 1);
        let before = slack.posted().len();
        slack.channel_post("C0GEN", "U0ANN", question, true, Some(&parent));
        slack.wait_posted(before + 1, 15);
        unsafe_kill(gw.child.id(), 9);
        drop(gw);
        slack.wait(10, "the killed socket to close", |s| s.open_sockets == 0);
    };
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    kill_with_answer_held(gw, "in a thread");
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(2, 15);
    slack.wait(15, "the thread lookup", |s| !s.lookups.is_empty());
    slack.with(|s| {
        let lookup = &s.lookups[0];
        assert_eq!(lookup.method, "conversations.replies", "{lookup:?}");
        assert_eq!(lookup.params["ts"], parent.as_str());
        assert_eq!(s.posted[0].thread_ts.as_deref(), Some(parent.as_str()));
        assert!(lookup.answered.contains(&s.posted[0].ts), "{lookup:?}");
    });
    // Found: no second post. Then a lookup that fails posts (fail open).
    kill_with_answer_held(gw, "lookup fails");
    slack.with(|s| s.lookup_errors.push_back("missing_scope".into()));
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(3, 15);
    slack.wait(15, "the repost after a failed lookup", |s| {
        s.posted
            .iter()
            .filter(|p| p.text.contains("lookup fails"))
            .count()
            == 2
    });
    assert_eq!(answers_to(&slack, "in a thread"), 1, "{:?}", slack.posted());
    assert!(
        gw.log().contains("could not check whether send"),
        "{}",
        gw.log()
    );
}
