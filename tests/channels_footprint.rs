//! The idle footprint of each channel adapter (a benchmark, not run by
//! default): the gateway binary started five times — no channel, Telegram
//! only, Slack only, Discord only, all three — each connected to its local
//! fake, waited until every adapter's health in `/status` is `up`, left idle,
//! then measured from /proc: VmRSS (status), the anonymous part (Anonymous
//! of smaps_rollup: heap, stacks, relocated data), the file-backed rest
//! (RssFile: the binary's and libc's pages mapped in), PSS and Private
//! (Private_Clean + Private_Dirty of smaps_rollup: what this process alone
//! holds, including the binary's code pages that no other process maps),
//! and the thread count (task/). Each adapter's own cost is printed as the
//! difference to the no-channel case.
//! Run by `bench/channels_rss.sh`, which builds the release binary and
//! names it in `PINCH_FOOTPRINT_BIN` (without it the test's own debug
//! binary is measured, and the output says so). `PINCH_IDLE_SECS` (10)
//! sets the idle time before measuring; `PINCH_FOOTPRINT_CASES` (a comma
//! list, e.g. `no channel,all three`) picks cases; `PINCH_FOOTPRINT_COLD=1`
//! drops the binary from the page cache before each start
//! (`POSIX_FADV_DONTNEED`), as on a machine just rebooted.

mod common;
#[path = "common/discord_fake.rs"]
mod discord_fake;

use common::slack_fake::{FakeSlack, APP_TOKEN, BOT_TOKEN};
use common::telegram::{FakeTelegram, TOKEN as TELEGRAM_TOKEN};
use common::*;
use discord_fake::{FakeDiscord, TOKEN as DISCORD_TOKEN};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The all-three budget, in kB (3.5 MB).
const ALL_THREE_BUDGET_KB: u64 = 3_500;

/// The binary to measure: `PINCH_FOOTPRINT_BIN`, else the test build's.
fn measured_bin() -> String {
    std::env::var("PINCH_FOOTPRINT_BIN").unwrap_or_else(|_| bin().to_string())
}

/// A gateway of the measured binary, killed on drop.
struct Measured {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `<binary> gateway run --port 0` in `home` (as `Gateway::start`
/// does for the test build) and waits for its `listening on` line.
fn start(home: &TempHome) -> Measured {
    let mut child = std::process::Command::new(measured_bin())
        .env("PINCH_HOME", &home.path)
        .env_remove("PINCH_GATEWAY_TOKEN")
        .env(
            "RUST_LOG",
            if std::env::var_os("PINCH_FOOTPRINT_SMAPS").is_some() {
                "info,pinch::gateway=debug"
            } else {
                "info"
            },
        )
        .args(["gateway", "run", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the gateway");
    let stderr = child.stderr.take().expect("stderr");
    let verbose = std::env::var_os("PINCH_FOOTPRINT_SMAPS").is_some();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if verbose && line.contains("quiet:") {
                eprintln!("    {line}");
            }
            if let Some(i) = line.find("listening on ") {
                if let Some(t) = tx.take() {
                    let _ = t.send(line[i + 13..].trim().to_string());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway is listening");
    Measured {
        child,
        addr: addr.parse().expect("address"),
    }
}

struct Footprint {
    rss_kb: u64,
    /// Anonymous pages (heap, stacks, relocated data).
    anon_kb: u64,
    /// Proportional set size (smaps_rollup Pss).
    pss_kb: u64,
    /// Pages only this process maps: Private_Clean + Private_Dirty.
    private_kb: u64,
    /// Resident pages backed by a file (the binary, libc): VmRSS's RssFile.
    file_kb: u64,
    threads: usize,
}

fn status_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn measure(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps");
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task")
        .count();
    Footprint {
        rss_kb: status_kb(&status, "VmRSS:").expect("VmRSS"),
        anon_kb: status_kb(&rollup, "Anonymous:").expect("Anonymous"),
        pss_kb: status_kb(&rollup, "Pss:").expect("Pss"),
        private_kb: status_kb(&rollup, "Private_Clean:").expect("Private_Clean")
            + status_kb(&rollup, "Private_Dirty:").expect("Private_Dirty"),
        file_kb: status_kb(&status, "RssFile:").unwrap_or(0),
        threads,
    }
}

/// With `PINCH_FOOTPRINT_SMAPS=1`, the resident mappings of `pid`, largest
/// first (Rss and Anonymous kB, permissions, what backs them), and each
/// thread's name; empty otherwise.
fn mappings(pid: u32) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if std::env::var_os("PINCH_FOOTPRINT_SMAPS").is_none() {
        return out;
    }
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut rows: Vec<(u64, u64, String)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some(key) = first.strip_suffix(':') {
            let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if let Some(row) = rows.last_mut() {
                match key {
                    "Rss" => row.0 = kb,
                    "Anonymous" => row.1 = kb,
                    _ => {}
                }
            }
        } else if first.contains('-') {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("[anon]");
            rows.push((0, 0, format!("{first} {perms} {path}")));
        }
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0));
    for (rss, anon, what) in rows.iter().filter(|r| r.0 > 0).take(16) {
        let _ = writeln!(out, "    {rss:>6} kB rss {anon:>6} kB anon  {what}");
    }
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let _ = writeln!(out, "    threads: {}", names.join(", "));
    out
}

/// Drops `path`'s clean pages from the page cache (pages another process
/// maps stay), so the next start reads the binary from disk.
fn drop_from_page_cache(path: &str) {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::open(path).expect("open the measured binary");
    // SAFETY: a valid open descriptor; the call only gives advice.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise(DONTNEED) on {path}");
}

fn health_up(gw: &Measured, channel: &str) -> bool {
    let (_, body) = http_get(&format!("http://{}/status", gw.addr), None);
    serde_json::from_str::<serde_json::Value>(&body)
        .map(|v| v["channels"]["channels"][channel]["health"]["state"] == "up")
        .unwrap_or(false)
}

#[test]
#[ignore]
fn channels_idle_footprint() {
    let idle_secs: u64 = std::env::var("PINCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let llm = FakeLlm::openai();
    let (tg, slack, dc) = (
        FakeTelegram::start(),
        FakeSlack::start(),
        FakeDiscord::start(),
    );
    let telegram = format!(
        r#""telegram": {{"botToken": "{TELEGRAM_TOKEN}", "apiRoot": "{}", "dmPolicy": "allowlist", "allowFrom": ["42"]}}"#,
        tg.api_root()
    );
    let slack_block = format!(
        r#""slack": {{"appToken": "{APP_TOKEN}", "botToken": "{BOT_TOKEN}", "apiRoot": "{}", "dmPolicy": "allowlist", "allowFrom": ["U0ANN"]}}"#,
        slack.api_root()
    );
    let discord = format!(
        r#""discord": {{"token": "{DISCORD_TOKEN}", "apiRoot": "{}", "dmPolicy": "allowlist", "allowFrom": ["2200000000000000002"]}}"#,
        dc.api_root()
    );
    let cases: Vec<(&str, Vec<(&str, &String)>)> = vec![
        ("no channel", vec![]),
        ("telegram", vec![("telegram", &telegram)]),
        ("slack", vec![("slack", &slack_block)]),
        ("discord", vec![("discord", &discord)]),
        (
            "all three",
            vec![
                ("telegram", &telegram),
                ("slack", &slack_block),
                ("discord", &discord),
            ],
        ),
    ];
    let profile = if cfg!(debug_assertions) {
        "debug: not representative"
    } else {
        "release"
    };
    let binary = measured_bin();
    let kind = if std::env::var_os("PINCH_FOOTPRINT_BIN").is_some() {
        "PINCH_FOOTPRINT_BIN".to_string()
    } else {
        format!("the test's own build, {profile}")
    };
    println!(
        "binary measured: {binary} ({kind}, {} bytes); idle {idle_secs} s after every adapter is up",
        std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0)
    );
    println!(
        "{:<11} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "case",
        "RSS kB",
        "anon kB",
        "file kB",
        "PSS kB",
        "priv kB",
        "threads",
        "+RSS kB",
        "+anon kB",
        "+file kB",
        "+threads"
    );
    let cold = std::env::var_os("PINCH_FOOTPRINT_COLD").is_some();
    if cold {
        println!("cold: the binary is dropped from the page cache before each start");
    }
    let picked: Option<Vec<String>> = std::env::var("PINCH_FOOTPRINT_CASES")
        .ok()
        .map(|v| v.split(',').map(|c| c.trim().to_string()).collect());
    let mut base: Option<Footprint> = None;
    let mut all_three_rss = 0;
    for (name, blocks) in &cases {
        if let Some(picked) = &picked {
            if !picked.iter().any(|p| p == name) {
                continue;
            }
        }
        if cold {
            drop_from_page_cache(&binary);
        }
        let home = TempHome::new("footprint");
        let channels: Vec<String> = blocks.iter().map(|(_, b)| b.to_string()).collect();
        home.write_config(&config_for(
            &[("fake", &llm)],
            "fake/m1",
            &[],
            &format!(r#", "channels": {{{}}}"#, channels.join(", ")),
        ));
        let gw = start(&home);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !blocks.iter().all(|(c, _)| health_up(&gw, c)) {
            assert!(
                Instant::now() < deadline,
                "{name}: adapters not up within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The idle window being measured, not a wait for an event.
        std::thread::sleep(Duration::from_secs(idle_secs));
        // Measured before the health check: answering `/status` runs a
        // connection thread and the status code, which the idle gateway
        // does not.
        let f = measure(gw.child.id());
        let mappings = mappings(gw.child.id());
        for (c, _) in blocks {
            assert!(health_up(&gw, c), "{name}: {c} went down while idle");
        }
        let (d_rss, d_anon, d_file, d_threads) = match &base {
            Some(b) => (
                f.rss_kb as i64 - b.rss_kb as i64,
                f.anon_kb as i64 - b.anon_kb as i64,
                f.file_kb as i64 - b.file_kb as i64,
                f.threads as i64 - b.threads as i64,
            ),
            None => (0, 0, 0, 0),
        };
        println!(
            "{:<11} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>+8} {:>+8} {:>+8} {:>+9}",
            name,
            f.rss_kb,
            f.anon_kb,
            f.file_kb,
            f.pss_kb,
            f.private_kb,
            f.threads,
            d_rss,
            d_anon,
            d_file,
            d_threads
        );
        print!("{mappings}");
        if *name == "all three" {
            all_three_rss = f.rss_kb;
        }
        if base.is_none() {
            base = Some(f);
        }
        drop(gw);
    }
    println!(
        "all three connected: {all_three_rss} kB RSS, budget {ALL_THREE_BUDGET_KB} kB (3.5 MB): {}",
        if all_three_rss <= ALL_THREE_BUDGET_KB {
            "within"
        } else {
            "OVER"
        }
    );
}
