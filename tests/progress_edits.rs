//! Answers streamed by editing a draft on Slack (`chat.update`) and Discord
//! (`PATCH /channels/{id}/messages/{id}`), end to end against their fakes,
//! as tests/progress.rs does for Telegram: the first draft, edits at most
//! about once a second, the final answer replacing the draft, a long answer
//! filling the draft and going on in new messages, and after a restart the
//! answer in a new message (the killed process's draft is unknown to the
//! new one). The fake model's pieces wait for events the fakes record, so
//! nothing depends on sleeping.

mod common;
#[path = "common/discord_fake.rs"]
mod discord_fake;

use common::slack_fake::{self, FakeSlack, APP_TOKEN, BOT_TOKEN};
use common::*;
use std::time::{Duration, Instant};

const FIRST: &str = "The first sentence is here.";
const FULL: &str = "The first sentence is here. Then a second one, and the end.";

/// A slow model: pieces may be seconds apart.
fn slow(config: String) -> String {
    config.replace(
        r#""firstToken": 3, "idle": 3, "total": 20"#,
        r#""firstToken": 60, "idle": 60, "total": 120"#,
    )
}

fn slack_config(llm: &FakeLlm, slack: &FakeSlack, extra: &str) -> String {
    slow(config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"slack": {{"appToken": "{APP_TOKEN}", "botToken": "{BOT_TOKEN}", "apiRoot": "{}", "dmPolicy": "allowlist", "allowFrom": ["U0ANN"] {extra}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            slack.api_root()
        ),
    ))
}

fn when_slack(slack: &FakeSlack, condition: fn(&slack_fake::State) -> bool) -> Gate {
    let state = slack.state.clone();
    Gate::when(move || condition(&state.0.lock().expect("state")))
}

/// The answer streams in three pieces; the second waits for the first
/// draft, the third for its first edit.
fn three_pieces(first_shown: Gate, edited: Gate) -> Reply {
    Reply::Gated {
        steps: vec![
            Step::new("The first sentence is here. ", Gate::open()),
            Step::new("Then a second", first_shown),
            Step::new(" one, and", edited),
            Step::new(" the end.", Gate::after(Duration::from_millis(200))),
        ],
        finish: true,
    }
}

/// A draft's worth of text, then a model that hangs (until a kill).
fn draft_then_hang() -> Reply {
    Reply::Gated {
        steps: vec![
            Step::new("The first sentence is here. ", Gate::open()),
            Step::new("never", Gate::when(|| false)),
        ],
        finish: true,
    }
}

/// An answer of about 380 characters whose bulk waits for the first draft;
/// returns it with its whole text.
fn long_answer(first_shown: Gate) -> (Reply, String) {
    let rest: Vec<String> = (1..=12)
        .map(|i| format!(" Sentence number {i} goes on."))
        .collect();
    let reply = Reply::Gated {
        steps: vec![
            Step::new("It starts with this.", Gate::open()),
            Step::new(&rest.concat(), first_shown),
        ],
        finish: true,
    };
    (reply, format!("It starts with this.{}", rest.concat()))
}

/// Edits after the first at least ~1 s apart (the last, the final answer,
/// may follow sooner).
fn at_most_once_a_second(times: &[Instant]) {
    for pair in times.windows(2).take(times.len().saturating_sub(2)) {
        assert!(
            pair[1].duration_since(pair[0]) >= Duration::from_millis(900),
            "edits {:?} apart",
            pair[1].duration_since(pair[0])
        );
    }
}

#[test]
fn slack_streams_a_dm_answer_into_a_draft_edited_with_chat_update() {
    let home = TempHome::new("edits-slack");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, ""));
    llm.push(three_pieces(
        when_slack(&slack, |s| !s.posted.is_empty()),
        when_slack(&slack, |s| !s.edits.is_empty()),
    ));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.dm("D0ANN", "U0ANN", "tell me");
    slack.wait(30, "the final edit", |s| {
        s.messages.iter().any(|m| m.from_bot && m.text == FULL)
    });
    slack.with(|s| {
        assert_eq!(s.posted.len(), 1, "one message, edited: {:?}", s.posted);
        assert_eq!(s.posted[0].text, FIRST, "the first draft");
        assert_eq!(s.posted[0].metadata, None, "a draft is not a queued send");
        let draft = &s.posted[0].ts;
        assert!(s
            .edits
            .iter()
            .all(|e| &e.ts == draft && e.channel == "D0ANN"));
        assert!(s.edits.len() >= 2, "edits: {:?}", s.edits);
        let last = s.edits.last().expect("an edit");
        assert_eq!(last.text, FULL);
        assert_eq!(
            last.metadata.as_ref().map(|m| m["event_type"].clone()),
            Some("pinch_send".into()),
            "the final answer carries its send id"
        );
        assert!(s.edits[0]
            .text
            .starts_with("The first sentence is here. Then a second"));
        at_most_once_a_second(&s.edits.iter().map(|e| e.at).collect::<Vec<_>>());
    });
}

#[test]
fn slack_long_answer_fills_the_draft_and_goes_on_in_new_messages() {
    let home = TempHome::new("edits-slack-long");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, r#", "textChunkLimit": 100"#));
    let (reply, full) = long_answer(when_slack(&slack, |s| !s.posted.is_empty()));
    llm.push(reply);
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.dm("D0ANN", "U0ANN", "a long one");
    slack.wait(30, "the whole answer", |s| {
        s.posted
            .iter()
            .any(|p| p.text.ends_with("number 12 goes on."))
    });
    slack.with(|s| {
        assert_eq!(s.posted[0].text, "It starts with this.", "the first draft");
        let draft = &s.posted[0].ts;
        let mut shown = vec![s
            .messages
            .iter()
            .find(|m| &m.ts == draft)
            .map(|m| m.text.clone())
            .unwrap_or_default()];
        shown.extend(s.posted[1..].iter().map(|p| p.text.clone()));
        assert!(shown.iter().all(|t| t.chars().count() <= 100), "{shown:?}");
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&shown.join(" ")), words(&full), "{shown:?}");
        assert!(
            s.posted[1..].iter().all(|p| p.metadata.is_some()),
            "the parts after the draft are queued sends"
        );
    });
}

#[test]
fn slack_after_a_restart_the_answer_is_a_new_message() {
    let home = TempHome::new("edits-slack-restart");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    home.write_config(&slack_config(&llm, &slack, ""));
    // The first run shows a draft, then its model hangs until the kill.
    llm.push(draft_then_hang());
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    slack.dm("D0ANN", "U0ANN", "tell me");
    slack.wait_posted(1, 30);
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    slack.wait(10, "the killed socket to close", |s| s.open_sockets == 0);
    llm.script.lock().expect("script").clear();
    llm.push(Reply::Text(vec!["The answer after the restart.".into()]));
    let _gw = Gateway::start(&home, &[]);
    slack.wait_connected(2, 15);
    let posted = slack.wait_posted(2, 30);
    assert_eq!(posted[0].text, FIRST, "the old draft stays as it was");
    assert_eq!(posted[1].text, "The answer after the restart.");
    assert_ne!(posted[1].ts, posted[0].ts);
    assert!(
        slack.with(|s| s.edits.is_empty()),
        "the new process does not know the old draft"
    );
}

fn discord_config(llm: &FakeLlm, dc: &discord_fake::FakeDiscord, extra: &str) -> String {
    slow(config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"discord": {{"token": "{}", "apiRoot": "{}", "dmPolicy": "allowlist", "allowFrom": ["{ANN}"] {extra}}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            discord_fake::TOKEN,
            dc.api_root()
        ),
    ))
}

const ANN: &str = "2200000000000000002";
const DM: &str = "1300000000000000200";

fn when_discord(
    dc: &discord_fake::FakeDiscord,
    condition: fn(&discord_fake::State) -> bool,
) -> Gate {
    let state = dc.state.clone();
    Gate::when(move || condition(&state.0.lock().expect("state")))
}

#[test]
fn discord_streams_a_dm_answer_into_a_draft_edited_with_patch() {
    let home = TempHome::new("edits-discord");
    let (llm, dc) = (FakeLlm::openai(), discord_fake::FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    llm.push(three_pieces(
        when_discord(&dc, |s| !s.messages.is_empty()),
        when_discord(&dc, |s| !s.edits.is_empty()),
    ));
    let _gw = Gateway::start(&home, &[]);
    assert!(dc.wait(15, |s| s.ready_sessions >= 1), "session ready");
    dc.dm(DM, ANN, "tell me");
    assert!(
        dc.wait(30, |s| s.messages.iter().any(|m| m["content"] == FULL)),
        "the final edit: {:?}",
        dc.with(|s| s.edits.clone())
    );
    dc.with(|s| {
        assert_eq!(s.posted.len(), 1, "one message, edited: {:?}", s.posted);
        assert_eq!(s.posted[0].1["content"], FIRST, "the first draft");
        let draft = s.messages[0]["id"].as_str().unwrap_or("").to_string();
        assert!(s.edits.iter().all(|(id, _, _)| *id == draft));
        assert!(s.edits.len() >= 2, "edits: {:?}", s.edits);
        assert_eq!(s.edits.last().map(|e| e.1.as_str()), Some(FULL));
        at_most_once_a_second(&s.edits.iter().map(|e| e.2).collect::<Vec<_>>());
    });
}

#[test]
fn discord_long_answer_edits_the_draft_with_its_first_part_and_posts_the_rest() {
    let home = TempHome::new("edits-discord-long");
    let (llm, dc) = (FakeLlm::openai(), discord_fake::FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, r#", "textChunkLimit": 100"#));
    let (reply, full) = long_answer(when_discord(&dc, |s| !s.messages.is_empty()));
    llm.push(reply);
    let _gw = Gateway::start(&home, &[]);
    assert!(dc.wait(15, |s| s.ready_sessions >= 1), "session ready");
    dc.dm(DM, ANN, "a long one");
    assert!(
        dc.wait(30, |s| s.messages.iter().any(|m| m["content"]
            .as_str()
            .unwrap_or("")
            .ends_with("number 12 goes on."))),
        "the whole answer: {:?}",
        dc.with(|s| s.messages.clone())
    );
    dc.with(|s| {
        assert_eq!(
            s.posted[0].1["content"], "It starts with this.",
            "the first draft"
        );
        let shown: Vec<String> = s
            .messages
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(shown.iter().all(|t| t.chars().count() <= 100), "{shown:?}");
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&shown.join(" ")), words(&full), "{shown:?}");
        assert!(
            s.posted[1..]
                .iter()
                .all(|(_, b)| b["enforce_nonce"] == true),
            "the parts after the draft are queued sends"
        );
    });
}

#[test]
fn discord_after_a_restart_the_answer_is_a_new_message() {
    let home = TempHome::new("edits-discord-restart");
    let (llm, dc) = (FakeLlm::openai(), discord_fake::FakeDiscord::start());
    home.write_config(&discord_config(&llm, &dc, ""));
    llm.push(draft_then_hang());
    let gw = Gateway::start(&home, &[]);
    assert!(dc.wait(15, |s| s.ready_sessions >= 1), "session ready");
    dc.dm(DM, ANN, "tell me");
    assert!(dc.wait(30, |s| !s.messages.is_empty()), "the draft");
    unsafe_kill(gw.child.id(), 9);
    drop(gw);
    llm.script.lock().expect("script").clear();
    llm.push(Reply::Text(vec!["The answer after the restart.".into()]));
    let _gw = Gateway::start(&home, &[]);
    assert!(
        dc.wait(30, |s| s.messages.len() >= 2),
        "the answer: {:?}",
        dc.with(|s| s.messages.clone())
    );
    dc.with(|s| {
        assert_eq!(
            s.messages[0]["content"], FIRST,
            "the old draft stays as it was"
        );
        assert_eq!(s.messages[1]["content"], "The answer after the restart.");
        assert!(
            s.edits.is_empty(),
            "the new process does not know the old draft"
        );
    });
}
