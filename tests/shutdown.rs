//! Shutdown that waits: SIGTERM to a gateway with a connected Telegram
//! adapter, a WebSocket client and an agent worker that has served a run
//! ends with exit code 0 within the deadline, after `STOPPING=1` to the
//! service manager and with every thread joined (the log says which); a
//! WebSocket client's run in flight is checkpointed into its transcript;
//! a Telegram long poll parked at the platform does not hold the shutdown,
//! and no update is lost or answered twice across the restart.

mod common;

use common::telegram::{FakeTelegram, TOKEN};
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[test]
fn sigterm_stops_accepting_joins_every_thread_and_exits_zero() {
    let home = TempHome::new("shutdown");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&telegram_config(&llm, &tg, 1));
    // The service manager's notify socket, as systemd passes it.
    let notify_path = home.path.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let gw = Gateway::start_with_env(&home, &[], &[("NOTIFY_SOCKET", notify_path.as_path())]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the gateway");
    assert_eq!(&buf[..n], b"READY=1");

    // One message end to end: the adapter's threads and an agent worker run.
    tg.dm(42, "hello bot");
    let sent = tg.wait_sent(1, 15);
    assert_eq!(sent[0].1, "Hello from fake: hello bot");
    // A client that stays connected through the shutdown.
    let mut ws = Ws::connect(gw.addr);
    assert_eq!(ws.call("health", serde_json::json!({}))["ok"], true);
    // A store snapshot has been written by its worker thread.
    let snapshot = ws.call("store.snapshot", serde_json::json!({}));
    assert_eq!(snapshot["ok"], true, "{snapshot}");
    let written = wait_until(30, || {
        ws.call("store.snapshot.status", serde_json::json!({}))["payload"]["state"] == "done"
    });
    assert!(written, "the snapshot was written");

    let text = assert_clean_stop(gw);
    let n = notify.recv(&mut buf).expect("STOPPING=1 from the gateway");
    assert_eq!(&buf[..n], b"STOPPING=1");
    for thread in [
        "stopped thread accept",
        "stopped thread telegram-poll",
        "stopped thread telegram-send",
        // The fake model is on loopback: a local model server, monitored.
        "stopped thread local-llm",
        "stopped thread store-snapshot",
        "stopped agent workers",
        "stopped connection threads",
    ] {
        assert!(text.contains(thread), "{thread:?} in the log:\n{text}");
    }
    drop(ws);
}

/// Gateway config with one fake model and a Telegram adapter on `tg`.
fn telegram_config(llm: &FakeLlm, tg: &FakeTelegram, poll_timeout_s: u32) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": {poll_timeout_s}, "dmPolicy": "allowlist", "allowFrom": ["42"]}}}}"#,
            tg.api_root()
        ),
    )
}

/// SIGTERM: the gateway exits 0 within the deadline and its log (returned)
/// ends with `last`. (The last lines arrive with the pipe's end.)
fn stop_with_last_line(gw: Gateway, last: &str) -> String {
    let log = gw.log.clone();
    assert_eq!(gw.stop(), Some(0), "an exit within the deadline");
    let ended = wait_until(5, || log.lock().expect("log").contains(last));
    let text = log.lock().expect("log").clone();
    assert!(ended, "{last:?} in the log:\n{text}");
    text
}

/// The shutdown's last line says every thread stopped.
fn assert_clean_stop(gw: Gateway) -> String {
    stop_with_last_line(gw, "shutdown complete: every thread stopped")
}

/// Sends `text` to `session` and returns once the run's first piece has
/// reached the client: the run is in flight.
fn send_until_streaming(ws: &mut Ws, session: &str, text: &str) {
    ws.req(
        "chat.send",
        serde_json::json!({"session": session, "text": text}),
    );
    loop {
        let frame = ws.read();
        assert_ne!(frame["event"], "chat.final", "{frame}");
        if frame["event"] == "chat.delta" {
            return;
        }
    }
}

/// The session's transcript: the message and the checkpointed answer.
fn two_turns(ws: &mut Ws, session: &str) -> Vec<serde_json::Value> {
    let history = ws.call("chat.history", serde_json::json!({"session": session}));
    let turns = history["payload"]["turns"]
        .as_array()
        .expect("turns")
        .clone();
    assert_eq!(
        turns.len(),
        2,
        "the message and the partial answer: {history}"
    );
    turns
}

#[test]
fn a_websocket_run_in_flight_is_checkpointed_into_its_transcript() {
    let home = TempHome::new("shutdown-checkpoint");
    let llm = FakeLlm::openai();
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let gw = Gateway::start(&home, &[]);
    // The answer's first piece streams at once; the second only once the
    // gateway has stopped the run; the rest never comes.
    let log = gw.log.clone();
    llm.push(Reply::Gated {
        steps: vec![
            Step::new("Half of the answer", Gate::open()),
            Step::new(
                " and a bit more",
                Gate::when(move || log.lock().expect("log").contains("to be checkpointed")),
            ),
            Step::new(" never sent", Gate::when(|| false)),
        ],
        finish: true,
    });
    let mut ws = Ws::connect(gw.addr);
    send_until_streaming(&mut ws, "web:checkpoint", "tell me everything");
    let text = assert_clean_stop(gw);
    assert!(
        text.contains("session web:checkpoint: the run in flight is checkpointed"),
        "{text}"
    );
    drop(ws);

    // After the restart the transcript holds the message and what was
    // streamed, marked as interrupted.
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let turns = two_turns(&mut ws, "web:checkpoint");
    assert_eq!(turns[0]["role"], "user");
    assert_eq!(turns[0]["text"], "tell me everything");
    assert_eq!(turns[1]["role"], "assistant");
    let answer = turns[1]["text"].as_str().unwrap_or("");
    assert!(
        answer.starts_with("Half of the answer")
            && answer
                .ends_with("[interrupted: the gateway shut down before this answer was finished]")
            && !answer.contains("never sent"),
        "{answer:?}"
    );
    // The session goes on from there: the next run sees the checkpoint.
    ws.req(
        "chat.send",
        serde_json::json!({"session": "web:checkpoint", "text": "go on"}),
    );
    let done = ws.until_done();
    let last = done.last().expect("an end");
    assert_eq!(last["event"], "chat.final", "{last}");
    let request = llm
        .requests()
        .last()
        .expect("a model request")
        .body
        .to_string();
    assert!(request.contains("Half of the answer"), "{request}");
}

#[test]
fn a_parked_telegram_long_poll_ends_with_the_shutdown_and_no_update_repeats() {
    let home = TempHome::new("shutdown-long-poll");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    // Long polls are parked up to 50 s, as Telegram does.
    tg.with(|s| s.poll_cap_s = 50);
    home.write_config(&telegram_config(&llm, &tg, 50));
    let gw = Gateway::start(&home, &[]);
    let first = tg.dm(42, "first");
    assert_eq!(tg.wait_sent(1, 15)[0].1, "Hello from fake: first");
    // The batch is committed: the next poll confirms it, and is parked.
    tg.wait_for(15, "a parked poll past the first update", |s| {
        s.parked > 0 && s.offsets.last() == Some(&Some(first + 1))
    });
    let text = assert_clean_stop(gw);
    assert!(text.contains("stopped thread telegram-poll"), "{text}");

    // A message sent while the gateway is down is answered after the
    // restart, once; the first is not answered again.
    let second = tg.dm(42, "second");
    let gw = Gateway::start(&home, &[]);
    let sent = tg.wait_sent(2, 15);
    tg.wait_for(15, "a poll past the second update", |s| {
        s.offsets.last() == Some(&Some(second + 1))
    });
    let texts: Vec<String> = tg.sent().into_iter().map(|(_, text, _)| text).collect();
    assert_eq!(
        texts,
        ["Hello from fake: first", "Hello from fake: second"],
        "{sent:?}"
    );
    drop(gw);
}

#[test]
fn a_websocket_run_whose_model_is_silent_is_checkpointed_from_what_was_streamed() {
    let home = TempHome::new("shutdown-silent-model");
    let llm = FakeLlm::openai();
    // Reads wait for the model far longer than the shutdown's grace.
    let config = config_for(&[("fake", &llm)], "fake/m1", &[], "");
    assert!(config.contains(r#""idle": 3,"#), "{config}");
    home.write_config(&config.replace(r#""idle": 3,"#, r#""idle": 60,"#));
    let gw = Gateway::start(&home, &[]);
    // The model streams one piece, then says nothing more: the worker stays
    // in its read and cannot report.
    llm.push(Reply::Gated {
        steps: vec![
            Step::new("The start", Gate::open()),
            Step::new(" never sent", Gate::when(|| false)),
        ],
        finish: true,
    });
    let mut ws = Ws::connect(gw.addr);
    send_until_streaming(&mut ws, "web:silent", "a slow question");
    // The piece streamed; once the worker sits in its next read, the stop
    // can only reach it through the deadline (before that, it would see
    // the stop itself and checkpoint).
    assert!(
        wait_until(15, || worker_in_socket_read(gw.child.id())),
        "an agent worker waiting in a read on the model's socket"
    );
    let text = stop_with_last_line(gw, "did not stop within 5 s; exiting anyway");
    assert!(
        text.contains("no checkpoint from its worker in time"),
        "{text}"
    );
    // The worker still waiting on the model is named, not waited for.
    assert!(text.contains("1 agent worker(s)"), "{text}");
    drop(ws);

    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    let turns = two_turns(&mut ws, "web:silent");
    assert_eq!(turns[0]["text"], "a slow question");
    assert_eq!(
        turns[1]["text"],
        "The start\n\n[interrupted: the gateway shut down before this answer was finished]"
    );
}

/// Whether a thread `agent-*` of process `pid` is blocked in a socket read
/// (its system call, from `/proc/<pid>/task/<tid>/syscall`).
fn worker_in_socket_read(pid: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    const READS: &[&str] = &["0", "7", "45", "271"]; // read, poll, recvfrom, ppoll
    #[cfg(target_arch = "aarch64")]
    const READS: &[&str] = &["63", "73", "207"]; // read, ppoll, recvfrom
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let call = std::fs::read_to_string(path.join("syscall")).unwrap_or_default();
        comm.starts_with("agent-")
            && call
                .split_whitespace()
                .next()
                .is_some_and(|n| READS.contains(&n))
    })
}
