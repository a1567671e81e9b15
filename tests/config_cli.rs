//! Config errors as a user meets them: `pinch config check` and a gateway
//! that refuses to start, each naming the file, position, field and fix.

mod common;

use common::*;

fn check(home: &TempHome) -> (i32, String) {
    let out = home.cmd().args(["config", "check"]).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn no_config_at_all_works() {
    let home = TempHome::new("noconf");
    let (code, out) = check(&home);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("built-in defaults"));
}

#[test]
fn an_enabled_channel_without_an_adapter_is_refused_by_name() {
    let home = TempHome::new("noadapter");
    home.write_config(r#"{"channels": {"wechat": {"dmPolicy": "pairing"}}}"#);
    let (code, out) = check(&home);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("channels.wechat: channel \"wechat\" has no adapter in this build of pinch; supported channels: ")
            && out.contains("telegram"),
        "{out}"
    );
    let out = home.run(&["gateway", "run", "--port", "0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no adapter in this build"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Disabled, the block is kept and accepted.
    home.write_config(r#"{"channels": {"wechat": {"enabled": false}}}"#);
    let (code, out) = check(&home);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn each_error_class_names_file_position_field_and_fix() {
    let home = TempHome::new("errs");
    let file = home.path.join("pinch.json").display().to_string();

    home.write_config("{\n  \"gateway\": {\n    \"port\": 18789\n    \"bind\": \"lan\"\n  }\n}\n");
    let (code, out) = check(&home);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{file}:4:")),
        "syntax error position: {out}"
    );

    home.write_config("{\n  // comment\n  \"gateway\": {\"prot\": 1,},\n}\n");
    let (code, out) = check(&home);
    assert_eq!(code, 1);
    assert!(
        out.contains(":3:")
            && out.contains("`gateway.prot`")
            && out.contains("did you mean `port`?"),
        "{out}"
    );

    home.write_config(r#"{"models": {"providers": {"a": {"baseUrl": "https://x/v1", "apiKey": "$PINCH_TEST_UNSET_KEY", "models": [{"id": "m"}]}}}}"#);
    let (code, out) = check(&home);
    assert_eq!(code, 1);
    assert!(
        out.contains("$PINCH_TEST_UNSET_KEY is not set")
            && out.contains("models.providers.a.apiKey"),
        "{out}"
    );

    home.write_config(r#"{"gateway": {"port": "80"}}"#);
    let (_, out) = check(&home);
    assert!(
        out.contains("`gateway.port`") && out.contains("invalid type"),
        "{out}"
    );

    home.write_config(r#"{"channels": {"telegram": {"dmPolicy": "open"}}}"#);
    let (_, out) = check(&home);
    assert!(
        out.contains("channels.telegram.dmPolicy") && out.contains("fix:"),
        "{out}"
    );

    // The variable may come from .env.
    common::write_private(&home.path.join(".env"), "PINCH_TEST_SET_KEY=abc\n");
    home.write_config(r#"{"models": {"providers": {"a": {"baseUrl": "https://x/v1", "apiKey": "$PINCH_TEST_SET_KEY", "models": [{"id": "m"}]}}}}"#);
    assert_eq!(check(&home).0, 0);
}

#[test]
fn readable_secrets_are_refused_with_the_chmod_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    let home = TempHome::new("perms");
    home.write_config("{}");
    let cfg = home.path.join("pinch.json");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, out) = check(&home);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("chmod 600 {}", cfg.display())),
        "{out}"
    );
    let out = home.run(&["gateway", "run", "--port", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    common::write_private(&home.path.join(".env"), "A=1\n");
    std::fs::set_permissions(
        home.path.join(".env"),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    let (code, out) = check(&home);
    assert_eq!(code, 1);
    assert!(out.contains(".env") && out.contains("chmod 600"), "{out}");
}

#[test]
fn set_validates_writes_and_audits_without_secrets() {
    let home = TempHome::new("set");
    home.run_ok(&["config", "set", "gateway.port", "18800"]);
    let out = home.run(&["config", "get", "gateway.port"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "18800");
    // An invalid value is refused and the file is unchanged.
    let out = home.run(&["config", "set", "gateway.bind", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gateway.bind"));
    home.run_ok(&["config", "set", "gateway.auth.token", "very-secret-value"]);
    let out = home.run(&["config", "get", "gateway.auth.token"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"***\"");
    let audit =
        std::fs::read_to_string(home.path.join("logs/config-audit.jsonl")).expect("audit log");
    let lines: Vec<&str> = audit.lines().collect();
    assert_eq!(lines.len(), 2, "one line per successful change: {audit}");
    assert!(!audit.contains("very-secret-value"));
    let last: serde_json::Value = serde_json::from_str(lines[1]).expect("json line");
    assert_eq!(last["paths"][0], "gateway.auth.token");
    assert_eq!(last["source"], "cli");
    assert_eq!(last["new"].as_str().expect("hash").len(), 32);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(home.path.join("pinch.json"))
            .expect("meta")
            .mode()
            & 0o777,
        0o600
    );
}
