//! The CLI finds the gateway of its own `$PINCH_HOME` through the runtime
//! file that gateway writes, never whatever answers on the config's port:
//! here that port belongs to a second gateway with another home and other
//! sessions, the decoy.

mod common;

use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn chat(gw: &Gateway, session: &str, text: &str) {
    let mut ws = Ws::connect(gw.addr);
    assert_eq!(
        ws.call("chat.send", json!({"session": session, "text": text}))["ok"],
        true
    );
    let done = ws.until_done();
    assert_eq!(
        done.last().expect("last")["event"],
        "chat.final",
        "{done:?}"
    );
}

fn runtime_record(file: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).expect("runtime file");
    serde_json::from_str(&text).expect("runtime file is JSON")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_cli_reads_its_own_home_and_never_a_decoy_on_the_config_port() {
    let llm = FakeLlm::openai();
    let other = TempHome::new("own-decoy");
    other.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let decoy = Gateway::start(&other, &[]);
    chat(&decoy, "decoy:one", "from the other home");

    // This home's config names the decoy's port.
    let home = TempHome::new("own");
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(r#", "gateway": {{"port": {}}}"#, decoy.addr.port()),
    ));
    let file = home.path.join("run").join("gateway.json");

    // No gateway of this home: its own (empty) store, offline.
    let out = home.run_ok(&["sessions", "list", "--json"]);
    assert!(!stdout(&out).contains("decoy:one"), "{}", stdout(&out));

    // Its own gateway (on another port than the config's) announces itself.
    let gw = Gateway::start(&home, &[]);
    let record = runtime_record(&file);
    assert_eq!(record["address"], gw.addr.to_string(), "{record}");
    assert_eq!(record["pid"], gw.child.id(), "{record}");
    assert!(record["startedMs"].as_u64().unwrap_or(0) > 0, "{record}");
    let mode = std::fs::metadata(&file).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    chat(&gw, "own:one", "from this home");
    chat(&gw, "own:two", "the decoy has one session, this home two");

    // Through the API (the gateway holds the store: an offline read would
    // fail), and only this home's sessions.
    let out = home.run_ok(&["sessions", "list", "--json"]);
    let list = stdout(&out);
    assert!(list.contains("own:one"), "{list}");
    assert!(!list.contains("decoy:one"), "{list}");
    let out = home.run_ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    assert_eq!(status["sessions"]["stored"], 2, "{status}");

    // A clean exit removes the file; the store is then read offline.
    assert_eq!(gw.stop(), Some(0), "clean exit on SIGTERM");
    assert!(!file.exists(), "runtime file removed on a clean exit");
    let out = home.run_ok(&["sessions", "show", "own:one"]);
    assert!(stdout(&out).contains("from this home"), "{}", stdout(&out));

    // kill -9 leaves the file behind: stale, ignored and said so.
    let mut gw = Gateway::start(&home, &[]);
    unsafe_kill(gw.child.id(), 9);
    let _ = gw.child.wait();
    assert!(file.exists(), "a killed gateway cannot remove its file");
    let out = home.run_ok(&["sessions", "show", "own:one"]);
    assert!(stdout(&out).contains("from this home"), "{}", stdout(&out));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("decoy"), "{}", stdout(&out));

    // The next start replaces the stale file; an explicit --url still wins.
    let gw = Gateway::start(&home, &[]);
    let record = runtime_record(&file);
    assert_eq!(record["pid"], gw.child.id(), "{record}");
    let out = home.run_ok(&["sessions", "list", "--json", "--url", &decoy.url()]);
    assert!(stdout(&out).contains("decoy:one"), "{}", stdout(&out));
    gw.stop();
    decoy.stop();
}
