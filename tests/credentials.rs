//! systemd credentials end to end: a provider key given only as a file in
//! `$CREDENTIALS_DIRECTORY` (what `LoadCredential=` provides) reaches the
//! model server as the Bearer token; nothing in the environment or `.env`.

mod common;

use common::*;
use serde_json::json;

const KEY: &str = "sk-cred-7f3a9c";

fn setup(tag: &str) -> (TempHome, FakeLlm) {
    let home = TempHome::new(tag);
    let llm = FakeLlm::openai();
    let cfg = config_for(&[("fake", &llm)], "fake/m1", &[], "");
    let cfg = cfg.replace(r#""apiKey": "test-key""#, r#""apiKey": "$PINCH_CRED_KEY""#);
    assert!(cfg.contains("$PINCH_CRED_KEY"), "{cfg}");
    home.write_config(&cfg);
    assert!(!home.path.join(".env").exists());
    (home, llm)
}

#[test]
fn api_key_from_credentials_directory_is_sent_as_bearer() {
    assert!(
        std::env::var_os("PINCH_CRED_KEY").is_none(),
        "the key must not be in the environment"
    );
    let (home, llm) = setup("cred");
    let creds = TempHome::new("cred-dir");
    write_private(&creds.path.join("PINCH_CRED_KEY"), &format!("{KEY}\n"));
    let gw = Gateway::start_with_env(&home, &[], &[("CREDENTIALS_DIRECTORY", &creds.path)]);
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "cred:t", "text": "hi"}));
    assert_eq!(r["ok"], true, "{r}");
    let events = ws.until_done();
    let fin = events.last().expect("final");
    assert_eq!(fin["event"], "chat.final", "{events:?}\n{}", gw.log());
    let seen = llm.requests();
    assert_eq!(seen.len(), 1);
    let auth: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(auth, [format!("Bearer {KEY}").as_str()]);
    assert!(!gw.log().contains(KEY), "the key leaked into the log");
}

#[test]
fn without_the_credential_the_gateway_names_the_missing_variable() {
    let (home, _llm) = setup("cred-missing");
    let empty = TempHome::new("cred-empty");
    let err =
        match Gateway::try_start_with_env(&home, &[], &[("CREDENTIALS_DIRECTORY", &empty.path)]) {
            Ok(_) => panic!("started without its API key"),
            Err(log) => log,
        };
    assert!(err.contains("PINCH_CRED_KEY"), "{err}");
}
