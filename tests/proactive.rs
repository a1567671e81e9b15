//! Proactivity end to end: scheduled jobs that run without a prompt and
//! queue their answer for a channel, `pinch cron` against a running
//! gateway, jobs surviving a restart, the heartbeat (empty checklist, quiet
//! and alerting replies), webhooks (404/401/413 before anything runs, 202
//! with the body in the prompt) and the agent's `cron` tool.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `pinch cron ARGS --url <gateway>`: (exit code, stdout, stderr).
fn cron(home: &TempHome, gw: &Gateway, args: &[&str]) -> (i32, String, String) {
    let out = home
        .cmd()
        .arg("cron")
        .args(args)
        .args(["--url", &gw.url()])
        .output()
        .expect("run pinch cron");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(url: &str) -> Value {
    let (status, body) = http_get(url, None);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// The job, once its last run has an outcome.
fn job_outcome(gw: &Gateway, name: &str, runs: u64) -> Value {
    wait_for(&format!("job {name} to finish"), 25, || {
        let v = get_json(&format!("{}/api/cron/{name}", gw.url()));
        (v["runs"].as_u64() >= Some(runs) && v["running"] == false).then_some(v)
    })
}

fn heartbeat_status(gw: &Gateway, beats: u64) -> Value {
    wait_for(&format!("heartbeat #{beats}"), 25, || {
        let s = get_json(&format!("{}/status", gw.url()));
        let h = s["cron"]["heartbeat"].clone();
        (h["beats"].as_u64() >= Some(beats) && h["running"] == false).then_some(h)
    })
}

/// The text of the last user message of a request the fake model saw.
/// The newest user text the model saw, without the time envelope in front.
fn last_user(req: &Seen) -> String {
    let msgs = req.body["messages"].as_array().cloned().unwrap_or_default();
    let text = msgs
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(text.starts_with('['), "the time envelope leads: {text}");
    pinch::agent::prompt::strip_envelope(&text).to_string()
}

/// Outgoing messages in the delivery queue (the gateway must be stopped).
fn queued(home: &TempHome) -> Vec<(String, String, String)> {
    let store = pinch::store::Store::open(&home.path.join("state.redb")).expect("store");
    pinch::queue::list(&store, 100)
        .expect("queue")
        .into_iter()
        .map(|m| {
            let o = m.row.outbound;
            (o.channel, o.chat_id, o.text)
        })
        .collect()
}

fn config_with(llm: &FakeLlm, heartbeat: Option<&str>, extra: &str) -> String {
    let text = config_for(&[("fake", llm)], "fake/m1", &[], extra);
    match heartbeat {
        Some(h) => text.replacen(
            "{\"defaults\": {",
            &format!("{{\"defaults\": {{\"heartbeat\": {h}, "),
            1,
        ),
        None => text,
    }
}

#[test]
fn a_one_shot_job_runs_by_itself_and_its_answer_is_queued_for_its_target() {
    let home = TempHome::new("cron-at");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    let gw = Gateway::start(&home, &[]);
    let at = pinch::util::rfc3339(pinch::util::now_ms() + 2_500);
    let (code, out, err) = cron(
        &home,
        &gw,
        &[
            "add",
            "--name",
            "standup",
            "--at",
            &at,
            "--message",
            "Remind me of the standup",
            "--skill",
            "release-notes",
            "--to",
            "telegram:4242",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("added standup: at "), "{out}");
    assert!(llm.requests().is_empty(), "nothing runs before its time");

    let job = job_outcome(&gw, "standup", 1);
    assert_eq!(job["outcome"], "ok", "{job}");
    assert_eq!(job["enabled"], false, "a one-shot job is done: {job}");
    assert_eq!(job["nextRun"], Value::Null);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 1, "one model call");
    let prompt = last_user(&reqs[0]);
    assert!(
        prompt.starts_with("Use the `release-notes` skill.\n\nRemind me of the standup"),
        "{prompt}"
    );

    let mut ws = Ws::connect(gw.addr);
    let h = ws.call("chat.history", json!({"session": "cron:standup"}));
    let turns = h["payload"]["turns"].as_array().expect("turns").clone();
    assert_eq!(turns.len(), 2, "{h}");
    assert_eq!(turns[1]["role"], "assistant");
    let answer = turns[1]["text"].as_str().unwrap_or("").to_string();
    assert!(answer.contains("Remind me of the standup"), "{answer}");
    drop(ws);

    gw.stop();
    let q = queued(&home);
    assert_eq!(
        q,
        vec![("telegram".to_string(), "4242".to_string(), answer)],
        "the answer waits in the delivery queue for its chat"
    );
}

#[test]
fn cli_adds_lists_edits_and_removes_jobs_with_helpful_errors() {
    let home = TempHome::new("cron-cli");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    let gw = Gateway::start(&home, &[]);
    let (code, out, err) = cron(
        &home,
        &gw,
        &[
            "add",
            "--name",
            "digest",
            "--cron",
            "0 7 * * 1-5",
            "--tz",
            "Europe/Berlin",
            "--message",
            "Summarise the news",
            "--to",
            "telegram:12345",
            "--jitter",
            "30s",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("added digest: cron 0 7 * * 1-5 (Europe/Berlin); next run 20"),
        "{out}"
    );

    let (code, out, _) = cron(&home, &gw, &["list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    for col in ["SCHEDULE", "NEXT RUN", "LAST RUN", "OUTCOME", "DURATION"] {
        assert!(lines[0].contains(col), "{out}");
    }
    assert!(lines[1].starts_with("digest "), "{out}");
    assert!(
        lines[1].contains("cron 0 7 * * 1-5 (Europe/Berlin)"),
        "{out}"
    );

    let bad = [
        (
            vec!["--cron", "0 7 * *"],
            "invalid cron expression \"0 7 * *\": expected 5 fields (minute hour day-of-month month day-of-week), got 4",
        ),
        (
            vec!["--cron", "0 7 * * *", "--tz", "Europe/Berln"],
            "unknown time zone \"Europe/Berln\"",
        ),
        (vec!["--every", "5s"], "the minimum is 10s"),
        (vec!["--at", "2001-01-01T00:00:00Z"], "in the past"),
        (vec!["--every", "1h", "--model", "nope/x"], "is not configured"),
        (vec!["--every", "1h", "--to", "telegrma:1"], "did you mean \"telegram\""),
        (
            vec!["--every", "1h", "--to", "wechat:abc"],
            "channel \"wechat\" has no adapter in this build of pinch; supported channels: ",
        ),
        (vec!["--every", "1h", "--cron", "* * * * *"], "not several"),
    ];
    for (args, want) in bad {
        let mut all = vec!["add", "--name", "bad", "--message", "x"];
        all.extend(args.iter().copied());
        let (code, out, err) = cron(&home, &gw, &all);
        assert_eq!(code, 1, "{all:?}: {out}");
        assert!(err.contains(want), "{all:?}: want {want:?} in {err}");
    }
    let (code, _, err) = cron(
        &home,
        &gw,
        &["add", "--name", "digest", "--every", "1h", "--message", "x"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    let (code, out, err) = cron(&home, &gw, &["edit", "digest", "--every", "2h"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("updated digest: every 2h"), "{out}");
    let (code, out, _) = cron(&home, &gw, &["show", "digest"]);
    assert_eq!(code, 0);
    assert!(out.contains("Summarise the news"), "{out}");
    assert!(out.contains("telegram:12345"), "{out}");

    let st = home.run(&["status", "--url", &gw.url()]);
    let st = String::from_utf8_lossy(&st.stdout).into_owned();
    // The built-in weekly memory consolidation is the other job.
    assert!(st.contains("cron: 2 job(s)"), "{st}");
    assert!(st.contains("digest: every 2h; next 20"), "{st}");

    let (code, out, _) = cron(&home, &gw, &["remove", "digest"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "removed digest");
    let (_, out, _) = cron(&home, &gw, &["list"]);
    assert!(
        !out.contains("digest") && out.contains("memory-consolidation"),
        "{out}"
    );
    let (code, _, err) = cron(&home, &gw, &["remove", "digest"]);
    assert_eq!(code, 1);
    assert!(err.contains("no job named \"digest\""), "{err}");
    // `pinch status` asks a loopback model server for /health and /props;
    // no job ran, so the model was never asked for an answer.
    let calls: Vec<String> = llm.requests().into_iter().map(|r| r.path).collect();
    assert!(
        calls.iter().all(|p| !p.contains("/chat/completions")),
        "{calls:?}"
    );
}

#[test]
fn jobs_survive_a_restart() {
    let home = TempHome::new("cron-restart");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    let gw = Gateway::start(&home, &[]);
    let (code, out, err) = cron(
        &home,
        &gw,
        &[
            "add",
            "--name",
            "hourly",
            "--every",
            "1h",
            "--message",
            "Check the mail",
            "--no-catch-up",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let before = get_json(&format!("{}/api/cron/hourly", gw.url()));
    assert!(before["nextRunMs"].as_u64().is_some(), "{before}");
    assert_eq!(gw.stop(), Some(0));

    let gw = Gateway::start(&home, &[]);
    let after = get_json(&format!("{}/api/cron/hourly", gw.url()));
    for k in ["trigger", "message", "nextRunMs", "catchUp", "enabled"] {
        assert_eq!(after[k], before[k], "{k}: {after}");
    }
    let (_, out, _) = cron(&home, &gw, &["list"]);
    assert!(out.contains("hourly"), "{out}");
}

#[test]
fn run_now_delivers_to_the_last_chat_or_says_why_not() {
    let home = TempHome::new("cron-run-now");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    let gw = Gateway::start(&home, &[]);
    let (code, _, err) = cron(
        &home,
        &gw,
        &[
            "add",
            "--name",
            "tea",
            "--every",
            "1d",
            "--message",
            "Time for tea",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let next = get_json(&format!("{}/api/cron/tea", gw.url()))["nextRunMs"].clone();

    // No target and no chat used yet: the answer stays in the session.
    let (code, out, err) = cron(&home, &gw, &["run-now", "tea"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("started tea (run "), "{out}");
    let job = job_outcome(&gw, "tea", 1);
    let outcome = job["outcome"].as_str().unwrap_or("");
    assert!(outcome.starts_with("error: no chat to deliver to"), "{job}");
    assert!(outcome.contains("session cron:tea"), "{job}");
    assert_eq!(job["nextRunMs"], next, "a manual run keeps the schedule");

    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("cron.lastChat", json!({"to": "telegram:9"}));
    assert_eq!(r["payload"]["lastChat"], "telegram:9", "{r}");
    drop(ws);
    let (code, _, err) = cron(&home, &gw, &["run-now", "tea"]);
    assert_eq!(code, 0, "{err}");
    let job = job_outcome(&gw, "tea", 2);
    assert_eq!(job["outcome"], "ok", "{job}");
    assert_eq!(llm.requests().len(), 2);
    gw.stop();
    let q = queued(&home);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0].0.as_str(), q[0].1.as_str()), ("telegram", "9"));
    assert!(q[0].2.contains("Time for tea"), "{q:?}");
}

#[test]
fn an_empty_checklist_costs_no_model_call() {
    let home = TempHome::new("hb-empty");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, Some(r#"{"every": "10s"}"#), ""));
    let gw = Gateway::start(&home, &[]);
    // The starter HEARTBEAT.md holds only a comment.
    let h = heartbeat_status(&gw, 1);
    assert_eq!(h["lastResult"], "empty checklist: no model call", "{h}");
    assert!(h["nextBeat"].is_string(), "{h}");
    let (status, body) = http_post(&format!("{}/api/heartbeat/run", gw.url()), None, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"started\":false"), "{body}");
    let h = heartbeat_status(&gw, 2);
    assert_eq!(h["alerts"], 0);
    assert!(
        llm.requests().is_empty(),
        "no model call for an empty checklist"
    );
}

#[test]
fn heartbeat_stays_quiet_on_nothing_to_report_and_delivers_an_alert() {
    let home = TempHome::new("hb-alert");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(
        &llm,
        Some(r#"{"every": "1h", "activeHours": {"start": "00:00", "end": "24:00", "tz": "UTC"}, "to": "telegram:77"}"#),
        "",
    ));
    std::fs::create_dir_all(home.path.join("workspace")).expect("mkdir");
    std::fs::write(
        home.path.join("workspace/HEARTBEAT.md"),
        "# Checklist\n- Is the backup older than a day?\n",
    )
    .expect("write");
    let gw = Gateway::start(&home, &[]);
    let url = format!("{}/api/heartbeat/run", gw.url());

    llm.push(Reply::Text(vec!["**HEARTBEAT_OK**".into()]));
    let (status, body) = http_post(&url, None, "");
    assert_eq!(status, 200, "{body}");
    let h = heartbeat_status(&gw, 1);
    assert_eq!(h["lastResult"], "nothing to report", "{h}");
    let prompt = last_user(&llm.requests()[0]);
    assert!(
        prompt.contains("- Is the backup older than a day?"),
        "{prompt}"
    );
    assert!(prompt.contains("HEARTBEAT_OK"), "{prompt}");

    llm.push(Reply::Text(vec!["The backup is 3 days old!".into()]));
    let (status, body) = http_post(&url, None, "");
    assert_eq!(status, 200, "{body}");
    let h = heartbeat_status(&gw, 2);
    assert_eq!(h["lastResult"], "alert delivered to telegram:77", "{h}");
    assert_eq!(h["alerts"], 1);
    assert_eq!(llm.requests().len(), 2);
    gw.stop();
    assert_eq!(
        queued(&home),
        vec![(
            "telegram".to_string(),
            "77".to_string(),
            "The backup is 3 days old!".to_string()
        )],
        "only the alert is delivered"
    );
}

#[test]
fn webhooks_check_name_token_and_size_before_running() {
    let home = TempHome::new("hooks");
    let llm = FakeLlm::openai();
    let token = "0123456789abcdef-hook";
    write_private(&home.path.join(".env"), &format!("HOOK_TOKEN={token}\n"));
    home.write_config(&config_with(
        &llm,
        None,
        r#", "hooks": {"release": {"token": "$HOOK_TOKEN", "message": "A new tag was pushed: {{body}}", "to": "telegram:1", "maxBodyBytes": 100}}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    let hook = format!("{}/hooks/release", gw.url());

    let (status, body) = http_post(&hook, Some("wrong-token-wrong-token"), "v1");
    assert_eq!(status, 401, "{body}");
    let (status, _) = http_post(&hook, None, "v1");
    assert_eq!(status, 401);
    let (status, body) = http_post(&format!("{}/hooks/nope", gw.url()), Some(token), "v1");
    assert_eq!(status, 404, "{body}");
    let (status, body) = http_post(&hook, Some(token), &"x".repeat(101));
    assert_eq!(status, 413, "{body}");
    let (status, _) = http_get(&hook, Some(token));
    assert_eq!(status, 405);
    std::thread::sleep(Duration::from_millis(300));
    assert!(llm.requests().is_empty(), "nothing ran");

    let (status, body) = http_post(&hook, Some(token), "v1.2.3");
    assert_eq!(status, 202, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["runId"].as_str().is_some(), "{v}");
    assert_eq!(v["session"], "hook:release");
    let req = wait_for("the hook's model call", 20, || llm.requests().pop());
    assert_eq!(last_user(&req), "A new tag was pushed: v1.2.3");

    // The token may also come in X-Pinch-Token.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&hook)
        .header("X-Pinch-Token", token)
        .send("v2.0.0")
        .expect("post");
    assert_eq!(resp.status().as_u16(), 202);
    wait_for("the second hook run", 20, || {
        llm.requests()
            .iter()
            .any(|r| last_user(r) == "A new tag was pushed: v2.0.0")
            .then_some(())
    });
    let s = wait_for("the hook's result", 20, || {
        let s = get_json(&format!("{}/status", gw.url()));
        s["cron"]["hooks"]["release"].as_str().map(str::to_string)
    });
    assert!(s.contains("delivered to telegram:1"), "{s}");
}

#[test]
fn the_agent_schedules_a_job_with_the_cron_tool() {
    let home = TempHome::new("cron-tool");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    llm.push(Reply::ToolCall {
        id: "call_1".into(),
        name: "cron".into(),
        args: r#"{"action": "add", "name": "water", "every": "2h", "message": "Remind me to drink water", "to": "telegram:5"}"#.into(),
    });
    llm.push(Reply::Text(vec!["Scheduled.".into()]));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call(
        "chat.send",
        json!({"session": "t:cron", "text": "remind me to drink water every 2 hours"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let events = ws.until_done();
    let last = events.last().expect("events");
    assert_eq!(last["payload"]["text"], "Scheduled.", "{events:?}");
    let reqs = llm.requests();
    let tools: Vec<&str> = reqs[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"cron"), "{tools:?}");
    let msgs = reqs[1].body["messages"].as_array().expect("messages");
    let result = msgs
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert!(
        result.starts_with("added water: every 2h -> telegram:5"),
        "{result}"
    );
    let job = get_json(&format!("{}/api/cron/water", gw.url()));
    assert_eq!(job["trigger"], "every 2h");
    assert_eq!(job["to"], "telegram:5");
}

#[test]
fn every_message_waiting_behind_a_run_gets_its_answer() {
    // Jobs queue behind chat in a busy session; the queue must keep every
    // waiting message when the run ahead of them ends, not just the first.
    let home = TempHome::new("queue-keep");
    let llm = FakeLlm::openai();
    home.write_config(&config_with(&llm, None, ""));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    // A lost message would leave this waiting: fail instead.
    ws.ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for i in 0..3 {
        ws.req(
            "chat.send",
            json!({"session": "t:q", "text": format!("message {i}")}),
        );
    }
    let mut finals = Vec::new();
    while finals.len() < 3 {
        let v = ws.read();
        assert_ne!(v["event"], "chat.error", "{v}");
        if v["event"] == "chat.final" {
            finals.push(v["payload"]["text"].as_str().unwrap_or("").to_string());
        }
    }
    for (i, f) in finals.iter().enumerate() {
        assert!(f.ends_with(&format!("message {i}")), "{finals:?}");
    }
}
