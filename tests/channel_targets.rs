//! Slack and Discord as targets of the proactive side and as owners of a
//! network route, end to end: a cron job and a heartbeat alert addressed to
//! `slack:<channel>` / `discord:<channel>` reach the fake platform, and
//! `channels.<name>.network.proxy` carries the adapter's Web API / REST and
//! WebSocket traffic through a real HTTP proxy (tinyproxy) while the
//! provider stays direct. `pinch doctor` reads the gateway of its own home.

mod common;
#[path = "common/discord_fake.rs"]
mod discord_fake;

use common::slack_fake::{FakeSlack, APP_TOKEN, BOT_TOKEN};
use common::tinyproxy::Tinyproxy;
use common::*;
use discord_fake::{FakeDiscord, TOKEN};
use serde_json::Value;

const SLACK_CHANNEL: &str = "C0REPORTS";
const DISCORD_CHANNEL: &str = "1400000000000000999";

/// A config with the fake model, one channel block and a heartbeat that
/// alerts `heartbeat_to`.
fn config(llm: &FakeLlm, channel: &str, heartbeat_to: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(r#", "channels": {{{channel}}}, "queue": {{"baseBackoffMs": 200}}"#),
    )
    .replacen(
        "{\"defaults\": {",
        &format!(
            r#"{{"defaults": {{"heartbeat": {{"every": "1h", "activeHours": {{"start": "00:00", "end": "24:00", "tz": "UTC"}}, "to": "{heartbeat_to}"}}, "#
        ),
        1,
    )
}

fn slack_block(slack: &FakeSlack, network: &str) -> String {
    format!(
        r#""slack": {{"appToken": "{APP_TOKEN}", "botToken": "{BOT_TOKEN}", "apiRoot": "{}" {network}}}"#,
        slack.api_root()
    )
}

fn discord_block(dc: &FakeDiscord, network: &str) -> String {
    format!(
        r#""discord": {{"token": "{TOKEN}", "apiRoot": "{}" {network}}}"#,
        dc.api_root()
    )
}

fn write_checklist(home: &TempHome) {
    std::fs::create_dir_all(home.path.join("workspace")).expect("mkdir");
    std::fs::write(
        home.path.join("workspace/HEARTBEAT.md"),
        "# Checklist\n- Is the disk nearly full?\n",
    )
    .expect("write HEARTBEAT.md");
}

/// `pinch cron add` (answers go to `to`), then `pinch cron run-now`.
fn cron_job_to(home: &TempHome, gw: &Gateway, to: &str) {
    for args in [
        vec![
            "add",
            "report",
            "--every",
            "1h",
            "--message",
            "weekly report",
            "--to",
            to,
        ],
        vec!["run-now", "report"],
    ] {
        let out = home
            .cmd()
            .arg("cron")
            .args(&args)
            .args(["--url", &gw.url()])
            .output()
            .expect("run pinch cron");
        assert!(
            out.status.success(),
            "pinch cron {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn run_heartbeat(gw: &Gateway) {
    let (status, body) = http_post(&format!("{}/api/heartbeat/run", gw.url()), None, "");
    assert_eq!(status, 200, "{body}");
}

/// The `adapter <name>` line of `pinch doctor --json`, without `--url`.
fn doctor_adapter_line(home: &TempHome, name: &str) -> Value {
    let out = home.run(&["doctor", "--json", "--timeout", "2"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("doctor json");
    v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == format!("adapter {name}"))
        .cloned()
        .unwrap_or_else(|| panic!("no adapter line: {v}"))
}

/// The `adapter <name>: …` line of `pinch status`.
fn status_line(home: &TempHome, name: &str) -> String {
    let out = home.run_ok(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with(&format!("adapter {name}: ")))
        .unwrap_or_else(|| panic!("no adapter line in:\n{text}"))
        .to_string()
}

#[test]
fn cron_and_heartbeat_answers_reach_a_slack_channel() {
    let home = TempHome::new("targets-slack");
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    let to = format!("slack:{SLACK_CHANNEL}");
    home.write_config(&config(&llm, &slack_block(&slack, ""), &to));
    write_checklist(&home);
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);

    cron_job_to(&home, &gw, &to);
    let posted = slack.wait_posted(1, 20);
    assert_eq!(posted[0].channel, SLACK_CHANNEL);
    assert_eq!(posted[0].text, "Hello from fake: weekly report");

    llm.push(Reply::Text(vec!["The disk is 97% full!".into()]));
    run_heartbeat(&gw);
    let posted = slack.wait_posted(2, 20);
    assert_eq!(posted[1].channel, SLACK_CHANNEL);
    assert_eq!(posted[1].text, "The disk is 97% full!");

    // The doctor finds this home's gateway by its runtime file.
    let line = doctor_adapter_line(&home, "slack");
    assert_eq!(line["status"], "ok", "{line}");
    let status = status_line(&home, "slack");
    assert!(
        status.starts_with("adapter slack: up") && status.contains(" reconnects today"),
        "{status}"
    );
    gw.stop();
}

#[test]
fn cron_and_heartbeat_answers_reach_a_discord_channel() {
    let home = TempHome::new("targets-discord");
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    let to = format!("discord:{DISCORD_CHANNEL}");
    home.write_config(&config(&llm, &discord_block(&dc, ""), &to));
    write_checklist(&home);
    let gw = Gateway::start(&home, &[]);
    assert!(
        dc.wait(15, |s| s.identifies.len() == 1),
        "identified; log:\n{}",
        gw.log()
    );

    cron_job_to(&home, &gw, &to);
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].0, DISCORD_CHANNEL);
    assert_eq!(posted[0].1["content"], "Hello from fake: weekly report");

    llm.push(Reply::Text(vec!["The disk is 97% full!".into()]));
    run_heartbeat(&gw);
    let posted = dc.wait_posted(2, 20);
    assert_eq!(posted[1].0, DISCORD_CHANNEL);
    assert_eq!(posted[1].1["content"], "The disk is 97% full!");
    let status = status_line(&home, "discord");
    assert!(
        status.starts_with("adapter discord: up, last event ")
            && status.ends_with(" 0 reconnects today"),
        "{status}"
    );
    gw.stop();
}

/// The loopback ports tinyproxy was asked to CONNECT to.
fn connected_ports(log: &str) -> Vec<u16> {
    log.lines()
        .filter_map(|l| l.split("): CONNECT ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|target| target.rsplit_once(':')?.1.parse().ok())
        .collect()
}

/// The port of `http://127.0.0.1:<port>/…`.
fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|host| host.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn the_slack_route_takes_its_own_proxy() {
    let home = TempHome::new("route-slack");
    let Some(proxy) = Tinyproxy::start(&home) else {
        return;
    };
    let (llm, slack) = (FakeLlm::openai(), FakeSlack::start());
    let network = format!(
        r#", "network": {{"proxy": "http://127.0.0.1:{}"}}"#,
        proxy.port
    );
    let to = format!("slack:{SLACK_CHANNEL}");
    home.write_config(&config(&llm, &slack_block(&slack, &network), &to));
    let gw = Gateway::start(&home, &[]);
    slack.wait_connected(1, 15);
    cron_job_to(&home, &gw, &to);
    let posted = slack.wait_posted(1, 20);
    assert_eq!(posted[0].text, "Hello from fake: weekly report");
    gw.stop();
    let log = proxy.stop();
    let ports = connected_ports(&log);
    // Web API and Socket Mode share the fake's port; the model is direct.
    let slack_port = port_of(&slack.api_root());
    assert!(
        ports.iter().filter(|p| **p == slack_port).count() >= 3,
        "auth.test, apps.connections.open, the socket and chat.postMessage go through the proxy: {ports:?}\n{log}"
    );
    assert!(
        !ports.contains(&port_of(&llm.base_url())),
        "the provider is not routed through the channel's proxy: {ports:?}"
    );
}

#[test]
fn the_discord_route_takes_its_own_proxy() {
    let home = TempHome::new("route-discord");
    let Some(proxy) = Tinyproxy::start(&home) else {
        return;
    };
    let (llm, dc) = (FakeLlm::openai(), FakeDiscord::start());
    let network = format!(
        r#", "network": {{"proxy": "http://127.0.0.1:{}"}}"#,
        proxy.port
    );
    let to = format!("discord:{DISCORD_CHANNEL}");
    home.write_config(&config(&llm, &discord_block(&dc, &network), &to));
    let gw = Gateway::start(&home, &[]);
    assert!(
        dc.wait(15, |s| s.identifies.len() == 1),
        "identified through the proxy; log:\n{}",
        gw.log()
    );
    cron_job_to(&home, &gw, &to);
    let posted = dc.wait_posted(1, 20);
    assert_eq!(posted[0].1["content"], "Hello from fake: weekly report");
    gw.stop();
    let log = proxy.stop();
    let ports = connected_ports(&log);
    assert!(
        ports.contains(&dc.rest_addr.port()),
        "REST (gateway/bot, messages) goes through the proxy: {ports:?}\n{log}"
    );
    assert!(
        ports.contains(&dc.gateway_addr.port()),
        "the Gateway WebSocket goes through the proxy: {ports:?}\n{log}"
    );
    assert!(
        !ports.contains(&port_of(&llm.base_url())),
        "the provider is not routed through the channel's proxy: {ports:?}"
    );
}
