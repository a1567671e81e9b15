//! Upgrades of the state store, with the real binaries:
//! - a `kill -9` at several points of a migration (the file copy, the
//!   migration transaction) is survived: the next start finds the old store
//!   or the new one, never a broken one, and every turn is there;
//! - a store written by a newer pinch is refused at start-up with both
//!   versions and the rollback command, and not a byte of it changes;
//! - with `PINCH_PREV_BIN` (the previous release, built by
//!   `scripts/build-prev.sh`; `.ci/run` sets it): a home filled by the old
//!   binary (sessions, a scheduled job, queued replies) is opened by the new
//!   one, everything is there and the queue delivers; and the old binary on
//!   the migrated store still serves it (version 2 only adds a table);
//!   and with Telegram: a pairing request the old binary recorded can be
//!   approved by the new one, and a reply the old binary could not deliver
//!   (the Bot API was down) is delivered by the new one, once, without
//!   asking the model again.

mod common;

use common::telegram::{FakeTelegram, TOKEN};
use common::*;
use pinch::llm::{Message, Part, Role};
use pinch::store::{Store, Turn};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A first-release store (no version table) with `turns` turns of ~2 KB.
fn make_v1(path: &Path, turns: u64) {
    let s = Store::open(path).expect("open");
    let text = "x".repeat(2000);
    let mut batch = Vec::new();
    for i in 0..turns {
        batch.push(Turn::message(
            i,
            Message {
                role: Role::User,
                parts: vec![Part::Text(format!("{i} {text}"))],
            },
        ));
        if batch.len() == 500 {
            s.append(
                "web:big",
                &batch,
                pinch::llm::types::TokenUsage::default(),
                i,
            )
            .expect("append");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        s.append(
            "web:big",
            &batch,
            pinch::llm::types::TokenUsage::default(),
            turns,
        )
        .expect("append");
    }
    drop(s);
    let db = redb::Database::open(path).expect("raw");
    let tx = db.begin_write().expect("w");
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("store_meta");
    tx.delete_table(meta).expect("delete");
    tx.commit().expect("commit");
}

/// The version a store has, read without writing.
fn version_of(path: &Path) -> u64 {
    let db = redb::Database::open(path).expect("the store opens after the crash");
    let rx = db.begin_read().expect("r");
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("store_meta");
    match rx.open_table(meta) {
        Ok(t) => t
            .get("schema_version")
            .expect("get")
            .map(|v| v.value())
            .unwrap_or(1),
        Err(redb::TableError::TableDoesNotExist(_)) => 1,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn kill_9_during_the_migration_leaves_the_old_or_the_new_store() {
    const TURNS: u64 = 6000; // ~12 MB: the backup copy takes a moment
    let mut outcomes = Vec::new();
    // Kill points: right after exec, once the backup copy is being written,
    // once it is in place (the migration transaction comes next).
    for point in ["exec", "copying", "copied"] {
        let home = TempHome::new(&format!("upgrade-kill-{point}"));
        home.write_config(r#"{"gateway": {"port": 0}}"#);
        let state = home.path.join("state.redb");
        make_v1(&state, TURNS);
        let bak = home.path.join("state.redb.v1.bak");
        let tmp = home.path.join("state.redb.v1.bak.tmp");
        let mut child = home
            .cmd()
            .args(["gateway", "run", "--port", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reached = match point {
                "exec" => true,
                "copying" => tmp.exists() || bak.exists(),
                _ => bak.exists(),
            };
            if reached || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        unsafe_kill(child.id(), 9);
        let _ = child.wait();
        let v = version_of(&state);
        assert!(v == 1 || v == 2, "{point}: version {v}");
        outcomes.push(format!("{point}: v{v}"));
        // The next start completes the migration with every turn intact.
        let s = Store::open(&state).expect("restart");
        assert_eq!(s.schema_version().expect("v"), 2);
        let meta = s.session("web:big").expect("read").expect("session");
        assert_eq!(meta.next_seq, TURNS, "{point}");
        assert_eq!(s.turns("web:big", TURNS - 1, 5).expect("turns").len(), 1);
        drop(s);
        assert!(bak.exists(), "{point}: the pre-migration backup exists");
        assert_eq!(version_of(&bak), 1, "{point}: the backup is the old store");
    }
    println!("kill -9 outcomes (store version found after the crash): {outcomes:?}");
}

#[test]
fn a_store_from_a_newer_release_stops_the_gateway_untouched() {
    let home = TempHome::new("upgrade-newer");
    home.write_config(r#"{"gateway": {"port": 0}}"#);
    let state = home.path.join("state.redb");
    {
        let s = Store::open(&state).expect("open");
        drop(s);
        let db = redb::Database::open(&state).expect("raw");
        let tx = db.begin_write().expect("w");
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("store_meta");
            let mut t = tx.open_table(meta).expect("meta");
            t.insert("schema_version", 3).expect("stamp");
        }
        tx.commit().expect("commit");
    }
    let before = std::fs::read(&state).expect("read");
    let out = home.run(&["gateway", "run", "--port", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("schema version 3"), "{err}");
    assert!(err.contains("up to 2"), "{err}");
    assert!(err.contains("state.redb.v2.bak"), "{err}");
    assert_eq!(
        std::fs::read(&state).expect("read"),
        before,
        "not a byte changed"
    );
}

fn prev_bin() -> Option<String> {
    match std::env::var("PINCH_PREV_BIN") {
        Ok(p) if Path::new(&p).is_file() => Some(p),
        _ => {
            println!("SKIPPED: PINCH_PREV_BIN is not set (build the previous release with scripts/build-prev.sh; .ci/run does)");
            None
        }
    }
}

fn start_with(bin: &str, home: &TempHome) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .env("PINCH_HOME", &home.path)
        .env("RUST_LOG", "info")
        .args(["gateway", "run", "--port", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("listening on ") {
                if let Some(t) = tx.take() {
                    let _ = t.send(format!("http://{}", line[i + 13..].trim()));
                }
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(20)).expect("listening");
    (child, url)
}

fn stop(mut child: std::process::Child) {
    unsafe_kill(child.id(), 15);
    let _ = child.wait();
}

fn chat(url: &str, session: &str, text: &str) {
    let (status, body) = http_post(
        &format!("{url}/api/chat"),
        None,
        &format!(r#"{{"session": "{session}", "text": "{text}", "stream": false}}"#),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_home_filled_by_the_previous_release_upgrades_and_delivers() {
    let Some(old) = prev_bin() else { return };
    let llm = FakeLlm::openai();
    let home = TempHome::new("upgrade-prev");
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let state = home.path.join("state.redb");
    // The old release fills the home.
    let (child, url) = start_with(&old, &home);
    chat(&url, "web:me", "my cat is called Miso");
    let out = std::process::Command::new(&old)
        .env("PINCH_HOME", &home.path)
        .args([
            "cron",
            "add",
            "--name",
            "water",
            "--every",
            "2h",
            "--message",
            "water the plants",
            "--url",
            &url,
        ])
        .output()
        .expect("cron add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A reply waiting in the delivery queue (no channel adapter runs), as
    // a channel outage leaves it: a one-shot job that answers to Telegram.
    let at = pinch::util::rfc3339(pinch::util::now_ms() + 1_500);
    let out = std::process::Command::new(&old)
        .env("PINCH_HOME", &home.path)
        .args([
            "cron",
            "add",
            "--name",
            "standup",
            "--at",
            &at,
            "--message",
            "standup reminder",
            "--to",
            "telegram:4242",
            "--url",
            &url,
        ])
        .output()
        .expect("cron add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, job) = http_get(&format!("{url}/api/cron/standup"), None);
        let v: Value = serde_json::from_str(&job).unwrap_or_default();
        if v["runs"].as_u64() >= Some(1) && v["running"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old release ran the job: {job}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    assert_eq!(version_of(&state), 1, "the old release writes version 1");

    // The new release opens it: migrated, backed up, everything there.
    let gw = Gateway::start(&home, &[]);
    assert!(home.path.join("state.redb.v1.bak").exists());
    let status = status_json(&gw);
    assert_eq!(status["storage"]["schemaVersion"], 2);
    let (_, sessions) = http_get(&format!("{}/api/sessions", gw.url()), None);
    assert!(sessions.contains("web:me"), "{sessions}");
    let (_, job) = http_get(&format!("{}/api/cron/water", gw.url()), None);
    assert!(job.contains("water the plants"), "{job}");
    let q = home.run(&["queue", "list", "--json", "--url", &gw.url()]);
    let q = String::from_utf8_lossy(&q.stdout).to_string();
    assert!(
        q.contains("4242"),
        "the queued reply survived the upgrade: {q}"
    );
    let before = llm.requests().len();
    chat(&gw.url(), "web:me", "what is my cat called?");
    let req = llm.requests().into_iter().nth(before).expect("model call");
    assert!(
        req.body.to_string().contains("Miso"),
        "old conversation in the prompt"
    );
    assert_eq!(gw.stop(), Some(0));

    // The old release on the migrated store: version 2 only added a table,
    // so it serves the same conversation without harm.
    let (child, url) = start_with(&old, &home);
    let (_, sessions) = http_get(&format!("{url}/api/sessions"), None);
    assert!(sessions.contains("web:me"), "{sessions}");
    stop(child);
    assert_eq!(
        version_of(&state),
        2,
        "the old release left the stamp alone"
    );
}

#[test]
fn a_reply_the_previous_release_queued_is_delivered_after_the_upgrade() {
    let Some(old) = prev_bin() else { return };
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    let home = TempHome::new("upgrade-tg");
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": 1, "dmPolicy": "pairing", "allowFrom": ["42"]}}}}, "queue": {{"baseBackoffMs": 200}}"#,
            tg.api_root()
        ),
    ));
    // A stranger asks the old release to pair: it answers with a code.
    let (child, _url) = start_with(&old, &home);
    tg.dm(7, "hi there");
    let sent = tg.wait_sent(1, 15);
    let code: String = sent[0]
        .1
        .split("pairing code is ")
        .nth(1)
        .expect("code in message")
        .chars()
        .take(8)
        .collect();
    // The old release answers a direct message while the Bot API refuses
    // sendMessage: the reply waits in its delivery queue.
    tg.with(|s| {
        s.down = true;
        s.sent.clear();
        s.send_attempts = 0;
    });
    let uid = tg.dm(42, "remember the milk");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tg.with(|s| s.send_attempts) < 1 || !tg.with(|s| s.offsets.contains(&Some(uid + 1))) {
        assert!(
            Instant::now() < deadline,
            "the old release tried to send and confirmed the update"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(child);
    assert!(
        tg.sent().is_empty(),
        "nothing was delivered by the old release"
    );
    let model_calls = llm.requests().len();
    assert_eq!(model_calls, 1, "the old release asked the model once");
    assert_eq!(version_of(&home.path.join("state.redb")), 1);

    // The new release, with the Bot API back: the queued reply goes out.
    tg.with(|s| s.down = false);
    let polls_before = tg.with(|s| s.offsets.len());
    let gw = Gateway::start(&home, &[]);
    let sent = tg.wait_sent(1, 20);
    assert_eq!(sent[0].0, "42");
    assert_eq!(sent[0].1, "Hello from fake: remember the milk");
    // Delivered once, from the queue: the new release polls from the
    // confirmed offset (it never sees the message again), the queue is
    // empty, and the model was not asked again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let polled = tg.with(|s| s.offsets[polls_before..].contains(&Some(uid + 1)));
        let q = home
            .cmd()
            .args(["queue", "list", "--json", "--url", &gw.url()])
            .output()
            .expect("queue list");
        let q: Value = serde_json::from_slice(&q.stdout).unwrap_or(Value::Null);
        let empty = q["queued"].as_array().map(Vec::is_empty) == Some(true);
        if polled && empty {
            break;
        }
        assert!(Instant::now() < deadline, "polled {polled}, queue {q}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tg.sent().len(), 1, "{:?}", tg.sent());
    assert_eq!(llm.requests().len(), model_calls);
    // The pairing request the old release recorded is there and approvable.
    let out = home.run(&["pairing", "list", "--url", &gw.url()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&code),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    home.run_ok(&["pairing", "approve", "telegram", &code, "--url", &gw.url()]);
    tg.dm(7, "now?");
    let sent = tg.wait_sent(2, 20);
    assert_eq!(sent[1].0, "7");
    assert_eq!(sent[1].1, "Hello from fake: now?");
    let status = status_json(&gw);
    assert_eq!(status["storage"]["schemaVersion"], 2);
    assert_eq!(gw.stop(), Some(0));
}
