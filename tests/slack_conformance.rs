//! Slack's own clients against the fake Slack: `@slack/socket-mode` (and
//! the `@slack/web-api` it brings) run under Node, connect through
//! `apps.connections.open`, get `hello`, receive the message + app_mention
//! pair and ack both, follow a `disconnect` to a fresh URL, and call
//! `auth.test` and `chat.postMessage` through a 429 with `Retry-After`, then
//! post with message metadata, `chat.update` it, and find it again through
//! `conversations.history` with `include_all_metadata`.
//! If the fake drifted from Slack's protocol, the official client would
//! notice here.
//!
//! Needs `node` and the npm module under `$PINCH_NPM_DIR` (default
//! `~/.cache/pinch/npm`, where `.ci/run` installs it). Without them it
//! prints "NOT RUN: <reason>", and fails if `PINCH_REQUIRE_CONFORMANCE=1`.

mod common;

use common::slack_fake::{Command, FakeSlack, APP_TOKEN, BOT_TOKEN};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn not_run(reason: &str) {
    if std::env::var("PINCH_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!("PINCH_REQUIRE_CONFORMANCE=1 but the Slack conformance test cannot run: {reason}");
    }
    println!("NOT RUN: {reason}");
}

fn npm_dir() -> PathBuf {
    match std::env::var_os("PINCH_NPM_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pinch/npm")
        }
    }
}

/// Waits for the next EVENT line named `name`; returns its JSON.
fn expect(lines: &mpsc::Receiver<String>, name: &str, seen: &mut Vec<String>) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => panic!("no \"{name}\" from the Node client; it said: {seen:#?}"),
        };
        seen.push(line.clone());
        if line.starts_with("EVENT error") {
            panic!("the Node client failed: {line}; before: {seen:#?}");
        }
        if let Some(rest) = line.strip_prefix(&format!("EVENT {name} ")) {
            return serde_json::from_str(rest).expect("event JSON");
        }
    }
}

#[test]
fn slacks_own_node_client_speaks_with_the_fake() {
    let node_ok = Process::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node_ok {
        return not_run("node is not installed");
    }
    let modules = npm_dir().join("node_modules");
    if !modules.join("@slack/socket-mode/package.json").is_file() {
        return not_run(&format!(
            "@slack/socket-mode is not installed under {} (npm install --prefix {} @slack/socket-mode@3.1.0)",
            modules.display(),
            npm_dir().display()
        ));
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/slack/client.js");
    let slack = FakeSlack::start();
    slack.with(|s| s.rate_limits.push_back(1));
    let mut child = Process::new("node")
        .arg(&script)
        .arg(format!("{}/", slack.api_root()))
        .arg(APP_TOKEN)
        .arg(BOT_TOKEN)
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    assert_eq!(expect(&lines, "connected", &mut seen)["n"], 1);
    let who = expect(&lines, "auth", &mut seen);
    assert_eq!(who["user_id"], common::slack_fake::BOT_USER);
    let posted = expect(&lines, "posted", &mut seen);
    assert!(
        posted["waited_ms"].as_u64() >= Some(900),
        "Retry-After honoured: {posted}"
    );
    let history = expect(&lines, "history", &mut seen);
    assert_eq!(history["found_ts"], history["posted_ts"], "{history}");
    assert_eq!(history["updated_ts"], history["posted_ts"], "{history}");
    assert_eq!(history["text"], "edited by node", "{history}");
    slack.with(|s| {
        assert_eq!(
            s.post_attempts, 3,
            "429, then the retry, then the tagged post"
        );
        assert_eq!(s.posted.len(), 2);
        assert_eq!(s.posted[0].text, "from node");
        assert_eq!(s.posted[0].thread_ts.as_deref(), Some("1790000000.000001"));
        assert!(
            s.posted[1].metadata.is_some(),
            "the form's metadata was read"
        );
        assert_eq!(s.edits.len(), 1);
    });

    let (ids, ts) = slack.channel_post("C0GEN", "U0CAROL", "hello", true, None);
    let m = expect(&lines, "message", &mut seen);
    assert_eq!(
        (m["channel"].as_str(), m["ts"].as_str()),
        (Some("C0GEN"), Some(ts.as_str()))
    );
    let a = expect(&lines, "app_mention", &mut seen);
    assert_eq!(a["envelope_id"].as_str(), Some(ids[1].as_str()));
    for id in &ids {
        slack.wait_ack(id, 10);
    }

    slack.command(Command::Disconnect("refresh_requested".into()));
    assert_eq!(expect(&lines, "connected", &mut seen)["n"], 2);
    slack.with(|s| assert_eq!(s.tickets_used, vec![1, 2], "a fresh URL after disconnect"));
    let (env, _, _) = slack.dm("D0ANN", "U0ANN", "after refresh");
    let m = expect(&lines, "message", &mut seen);
    assert_eq!(m["envelope_id"].as_str(), Some(env.as_str()));
    slack.wait_ack(&env, 10);

    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"quit\n")
        .expect("quit");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Node client did not exit; it said: {seen:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "node exited with {status}; it said: {seen:#?}"
    );
    assert_eq!(slack.with(|s| s.unauthorized), 0);
    println!(
        "conformance: @slack/socket-mode connected twice, acked {} envelopes, posted through a 429, updated a post and found its metadata in the history",
        slack.with(|s| s.acks.len())
    );
}
