//! Discord's own client libraries against the fake Discord the end-to-end
//! tests use, to prove the fake speaks the real protocol: @discordjs/rest
//! fetches `GET /gateway/bot`, posts through a 429 and edits the post
//! (`PATCH`); @discordjs/ws identifies, heartbeats, receives READY and
//! MESSAGE_CREATE, and resumes after the fake drops its socket.
//!
//! Needs node and the modules of `tests/conformance/discord/package.json`
//! installed in `$PINCH_DISCORD_NPM` (default `~/.cache/pinch/npm/discord`,
//! as `.ci/run` does). Without them the test prints `NOT RUN: <reason>` and
//! passes, unless `PINCH_REQUIRE_CONFORMANCE=1`, where it fails.

#[path = "common/discord_fake.rs"]
mod discord_fake;

use discord_fake::{Command, FakeDiscord, BOT_ID, TOKEN};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn modules_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PINCH_DISCORD_NPM") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/pinch/npm/discord")
}

/// Why the libraries cannot run here, if they cannot.
fn missing() -> Option<String> {
    match Process::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("node is not installed".into()),
    }
    let modules = modules_dir().join("node_modules");
    for m in ["@discordjs/ws", "@discordjs/rest"] {
        if !modules.join(m).join("package.json").is_file() {
            return Some(format!(
                "{m} is not installed in {} (install it as .ci/run does: mkdir -p {dir} && cp tests/conformance/discord/package.json {dir}/ && npm install --prefix {dir})",
                modules.display(),
                dir = modules_dir().display()
            ));
        }
    }
    None
}

struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Waits for a line starting with `prefix`; panics with everything seen.
    fn expect(&mut self, prefix: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {prefix:?} from the discord.js client within {secs} s; it said: {:#?}",
                    self.seen
                ),
            }
        }
    }
}

#[test]
fn discordjs_clients_speak_to_the_fake_discord() {
    if let Some(reason) = missing() {
        if std::env::var("PINCH_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
            panic!(
                "PINCH_REQUIRE_CONFORMANCE=1 but the Discord conformance test cannot run: {reason}"
            );
        }
        println!("NOT RUN: {reason}");
        return;
    }
    let dc = FakeDiscord::start();
    dc.with(|s| {
        s.rate_limit_next = 1;
        s.retry_after = 0.25;
    });
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/discord/client.cjs");
    let mut child = Process::new("node")
        .arg(&script)
        .arg(dc.api_root())
        .arg(TOKEN)
        .env("NODE_PATH", modules_dir().join("node_modules"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Lines {
        rx,
        seen: Vec::new(),
    };

    let ready = lines.expect("READY", 30);
    assert!(
        ready.contains("fake-session-1") && ready.contains(BOT_ID),
        "{ready}"
    );
    assert_eq!(
        dc.with(|s| s.gateway_bot_calls),
        1,
        "the URL came from GET /gateway/bot"
    );
    let identify = dc.with(|s| s.identifies[0].clone());
    assert_eq!(identify["token"], TOKEN);
    assert_eq!(identify["intents"], 37377);
    assert!(identify["properties"]["os"].is_string(), "{identify}");

    let id = dc.dm(
        "1300000000000000200",
        "2200000000000000002",
        "hello from a user",
    );
    let got = lines.expect("MESSAGE", 20);
    assert!(got.contains("\"hello from a user\""), "{got}");
    lines.expect("POSTED", 20);
    let edited = lines.expect("EDITED", 20);
    assert!(edited.contains("\"edited: hello from a user\""), "{edited}");
    assert_eq!(
        dc.with(|s| s.edits.len()),
        1,
        "@discordjs/rest edited through PATCH"
    );
    let posted = dc.with(|s| s.posted.clone());
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].1["message_reference"]["message_id"], id.as_str());
    assert_eq!(
        dc.with(|s| s.rate_limited),
        1,
        "@discordjs/rest met the 429 and retried"
    );
    let times = dc.with(|s| s.post_times.clone());
    assert!(
        times[1].duration_since(times[0]) >= Duration::from_millis(250),
        "it waited retry_after"
    );

    // heartbeats carry the last sequence the client saw
    assert!(
        dc.wait(20, |s| s.heartbeats.iter().any(|h| h.as_u64() == Some(2))),
        "a heartbeat with d = 2: {:?}",
        dc.with(|s| s.heartbeats.clone())
    );

    // Drop the socket: the official client resumes with the session and sequence.
    let seq = dc.with(|s| s.seq);
    dc.command(Command::Drop);
    assert!(
        dc.wait(30, |s| !s.resumes.is_empty()),
        "no Resume; client said {:#?}",
        lines.seen
    );
    let resume = dc.with(|s| s.resumes[0].clone());
    assert_eq!(resume["session_id"], "fake-session-1");
    assert_eq!(resume["seq"].as_u64(), Some(seq));
    lines.expect("RESUMED", 20);
    dc.dm("1300000000000000200", "2200000000000000002", "after resume");
    let got = lines.expect("MESSAGE", 20);
    assert!(got.contains("after resume"), "{got}");
    lines.expect("DONE", 20);
    assert_eq!(dc.with(|s| s.identifies.len()), 1);
    let _ = child.wait();
}
