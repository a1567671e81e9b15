//! Shutdown that waits: SIGTERM to a gateway with a connected Telegram
//! adapter, a WebSocket client and an agent worker that has served a run
//! ends with exit code 0 within the deadline, after `STOPPING=1` to the
//! service manager and with every thread joined (the log says which).

mod common;

use common::telegram::{FakeTelegram, TOKEN};
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[test]
fn sigterm_stops_accepting_joins_every_thread_and_exits_zero() {
    let home = TempHome::new("shutdown");
    let (llm, tg) = (FakeLlm::openai(), FakeTelegram::start());
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "channels": {{"telegram": {{"botToken": "{TOKEN}", "apiRoot": "{}", "pollTimeoutSeconds": 1, "dmPolicy": "allowlist", "allowFrom": ["42"]}}}}"#,
            tg.api_root()
        ),
    ));
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

    let log = gw.log.clone();
    let code = gw.stop();
    assert_eq!(code, Some(0), "a clean exit within the deadline");
    let n = notify.recv(&mut buf).expect("STOPPING=1 from the gateway");
    assert_eq!(&buf[..n], b"STOPPING=1");
    // The process has exited; its last log lines arrive with the pipe's end.
    let complete = wait_until(5, || {
        log.lock()
            .expect("log")
            .contains("shutdown complete: every thread stopped")
    });
    let text = log.lock().expect("log").clone();
    assert!(complete, "every thread stopped:\n{text}");
    for thread in [
        "stopped thread accept",
        "stopped thread telegram-poll",
        "stopped thread telegram-send",
        "stopped agent workers",
        "stopped connection threads",
    ] {
        assert!(text.contains(thread), "{thread:?} in the log:\n{text}");
    }
    drop(ws);
}
