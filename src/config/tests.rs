//! Config error classes, each with the message a user sees.

use super::*;

fn vars() -> env::Vars {
    let mut v = env::Vars::default();
    v.process.insert("OPENAI_KEY".into(), "sk-test".into());
    v
}

fn err(text: &str) -> ConfigError {
    parse_str(text, Some(Path::new("/h/pinch.json")), &vars()).expect_err("should fail")
}

#[test]
fn empty_config_gets_local_provider_and_loopback() {
    let cfg = parse_str("{}", None, &vars()).expect("defaults");
    assert_eq!(cfg.gateway.port, 18789);
    assert_eq!(cfg.gateway.bind, "loopback");
    assert_eq!(cfg.models.providers["local"].base_url, LOCAL_BASE_URL);
    assert_eq!(
        cfg.agents.defaults.model.primary.as_deref(),
        Some("local/local")
    );
}

#[test]
fn comments_trailing_commas_and_references() {
    let text = r#"{
      // my provider
      "models": {"providers": {"oa": {
        "baseUrl": "https://api.example.com/v1", "apiKey": "$OPENAI_KEY",
        "models": [{"id": "m1", "contextWindow": 8192,},],
      }}},
      "agents": {"defaults": {"model": "oa/m1"}},
    }"#;
    let cfg = parse_str(text, None, &vars()).expect("valid");
    assert_eq!(
        cfg.models.providers["oa"].api_key.as_deref(),
        Some("sk-test")
    );
    assert_eq!(cfg.agents.defaults.model.primary.as_deref(), Some("oa/m1"));
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = err("{\n  \"gateway\": {\n    \"port\": 18789\n    \"bind\": \"lan\"\n  }\n}");
    assert_eq!(e.line, 4);
    assert!(e.message.contains("expected"), "{e}");
    assert!(e.to_string().contains("/h/pinch.json:4:"), "{e}");
}

#[test]
fn unknown_key_suggests_nearest() {
    let e = err("{\"gateway\": {\n \"prot\": 1}}");
    assert_eq!(e.path, "gateway.prot");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unknown field `prot`"), "{e}");
    assert_eq!(e.fix, "did you mean `port`?");
}

#[test]
fn wrong_type_names_the_field() {
    let e = err("{\"gateway\": {\"port\": \"18789\"}}");
    assert_eq!(e.path, "gateway.port");
    assert!(e.message.contains("invalid type"), "{e}");
    assert!(e.fix.contains("not quoted"), "{e}");
}

#[test]
fn unset_variable_is_named_never_empty() {
    let e = err(
        r#"{"models": {"providers": {"oa": {"baseUrl": "https://x/v1", "apiKey": "$MISSING_KEY", "models": [{"id": "m"}]}}}}"#,
    );
    assert_eq!(e.path, "models.providers.oa.apiKey");
    assert!(e.message.contains("$MISSING_KEY is not set"), "{e}");
    assert!(e.fix.contains(".env"), "{e}");
    assert!(e.line >= 1);
}

#[test]
fn bad_enum_like_values_and_cross_references() {
    let e = err(
        r#"{"models": {"providers": {"oa": {"baseUrl": "https://x/v1", "api": "openai-completion", "models": [{"id": "m"}]}}}}"#,
    );
    assert_eq!(e.path, "models.providers.oa.api");
    assert!(e.fix.contains("openai-completions"), "{e}");
    let e = err(r#"{"agents": {"defaults": {"model": {"primary": "local/nope"}}}}"#);
    assert_eq!(e.path, "agents.defaults.model.primary");
    assert!(e.fix.contains("local/local"), "{e}");
    let e = err(r#"{"gateway": {"bind": "everywhere"}}"#);
    assert_eq!(e.path, "gateway.bind");
}

#[test]
fn channel_policy_combinations() {
    let e = err(r#"{"channels": {"telegram": {"dmPolicy": "open"}}}"#);
    assert_eq!(e.path, "channels.telegram.dmPolicy");
    assert!(e.fix.contains("\"*\""), "{e}");
    let e = err(r#"{"channels": {"telegram": {"dmPolicy": "allowlist"}}}"#);
    assert_eq!(e.path, "channels.telegram.allowFrom");
    let e = err(r#"{"channels": {"telegramm": {}}}"#);
    assert!(e.fix.contains("did you mean \"telegram\""), "{e}");
    parse_str(
        r#"{"channels": {"telegram": {"dmPolicy": "open", "allowFrom": ["*"]}}}"#,
        None,
        &vars(),
    )
    .expect("valid");
}

#[test]
fn set_and_get_paths() {
    let mut v = serde_json::json!({"gateway": {"port": 1}});
    assert_eq!(
        set_path(&mut v, "gateway.port", serde_json::json!(2)).expect("set"),
        serde_json::json!(1)
    );
    set_path(
        &mut v,
        "models.providers.a.models[0].id",
        serde_json::json!("m"),
    )
    .expect("set nested");
    assert_eq!(
        get_path(&v, "models.providers.a.models[0].id").expect("ok"),
        Some(&serde_json::json!("m"))
    );
    assert!(set_path(
        &mut v,
        "models.providers.a.models[5].id",
        serde_json::json!("x")
    )
    .is_err());
    let mut r = serde_json::json!({"gateway": {"auth": {"token": "abc"}}, "models": {"providers": {"p": {"apiKey": "$K"}}}});
    redact(&mut r, "");
    assert_eq!(r["gateway"]["auth"]["token"], "***");
    assert_eq!(r["models"]["providers"]["p"]["apiKey"], "$K");
}

#[test]
fn web_search_is_off_by_default_and_checked_when_on() {
    let cfg = parse_str("{}", None, &vars()).expect("defaults");
    let w = &cfg.tools.web_search;
    assert!(!w.enabled);
    assert_eq!((w.backend.as_str(), w.max_results), ("tavily", 5));
    let mut v = vars();
    v.process.insert("TAVILY_API_KEY".into(), "tvly-x".into());
    let cfg = parse_str(
        r#"{"tools": {"webSearch": {"enabled": true, "apiKey": "$TAVILY_API_KEY", "maxResults": 3, "network": {"proxy": "direct"}}}}"#,
        None,
        &v,
    )
    .expect("valid");
    assert_eq!(cfg.tools.web_search.api_key.as_deref(), Some("tvly-x"));
    assert_eq!(cfg.tools.web_search.max_results, 3);
    let e = err(r#"{"tools": {"webSearch": {"enabled": true, "backend": "searx"}}}"#);
    assert_eq!(e.path, "tools.webSearch.backend");
    assert!(e.fix.contains("did you mean \"searxng\""), "{e}");
    let e = err(r#"{"tools": {"webSearch": {"enabled": true, "backend": "searxng"}}}"#);
    assert_eq!(e.path, "tools.webSearch.baseUrl");
    let e = err(r#"{"tools": {"webSearch": {"enabled": true}}}"#);
    assert_eq!(e.path, "tools.webSearch.apiKey");
    assert!(e.fix.contains("$TAVILY_API_KEY"), "{e}");
    let e = err(r#"{"tools": {"webSearch": {"maxResult": 3}}}"#);
    assert_eq!(e.fix, "did you mean `maxResults`?");
    let e = err(r#"{"tools": {"webSearch": {"maxResults": 50}}}"#);
    assert_eq!(e.path, "tools.webSearch.maxResults");
    // A keyless Tavily-compatible service on the LAN is fine.
    parse_str(
        r#"{"tools": {"webSearch": {"enabled": true, "baseUrl": "http://10.0.0.5:8000"}}}"#,
        None,
        &vars(),
    )
    .expect("valid");
}

#[test]
fn every_number_has_a_range_with_position() {
    let e = err("{\"agents\": {\"defaults\": {\n  \"timeoutSeconds\": 18446744073709551615}}}");
    assert_eq!(e.path, "agents.defaults.timeoutSeconds");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("between 1 and 86400"), "{e}");
    assert!(e.to_string().contains("/h/pinch.json:2:"), "{e}");
    let e = err(r#"{"gateway": {"maxBodyBytes": 18446744073709551615}}"#);
    assert_eq!(e.path, "gateway.maxBodyBytes");
    let e = err(r#"{"queue": {"maxEntries": 0}}"#);
    assert_eq!(e.path, "queue.maxEntries");
    assert!(e.fix.contains("10000"), "{e}");
    let e = err(r#"{"tools": {"exec": {"maxMemoryMb": 18446744073709551615}}}"#);
    assert_eq!(e.path, "tools.exec.maxMemoryMb");
    let e = err(
        r#"{"models": {"providers": {"oa": {"baseUrl": "https://x/v1", "models": [{"id": "m"}], "timeouts": {"total": 0}}}}}"#,
    );
    assert_eq!(e.path, "models.providers.oa.timeouts.total");
    let e = err(r#"{"queue": {"baseBackoffMs": 9000, "maxBackoffMs": 10}}"#);
    assert_eq!(e.path, "queue.baseBackoffMs");
}

#[test]
fn heartbeat_zero_must_be_written_0m() {
    let e = err(r#"{"agents": {"defaults": {"heartbeat": {"every": "0s"}}}}"#);
    assert_eq!(e.path, "agents.defaults.heartbeat.every");
    assert!(e.fix.contains("\"0m\""), "{e}");
    let cfg = parse_str(
        r#"{"agents": {"defaults": {"heartbeat": {"every": "0m"}}}}"#,
        None,
        &vars(),
    )
    .expect("0m disables");
    assert_eq!(
        cfg.agents.defaults.heartbeat.map(|h| h.every),
        Some("0m".into())
    );
}

#[test]
fn arrays_are_not_objects() {
    let e = err("[]");
    assert!(e.message.contains("must be a JSON object"), "{e}");
    let e = err("{\n  \"gateway\": [\"0.0.0.0\", 28792]\n}");
    assert_eq!(e.path, "gateway");
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.message
            .contains("a list is given where an object belongs"),
        "{e}"
    );
    let e = err(r#"{"tools": {"exec": [true, ["sh"]]}}"#);
    assert_eq!(e.path, "tools.exec");
    let e = err(r#"{"agents": {"defaults": {"heartbeat": ["1m"]}}}"#);
    assert_eq!(e.path, "agents.defaults.heartbeat");
}

#[test]
fn references_must_be_valid() {
    for text in ["$MY-API-KEY", "$", "${", "${KEY", "x${1}"] {
        let e = err(&format!(
            r#"{{"models": {{"providers": {{"oa": {{"baseUrl": "https://x/v1", "apiKey": "{text}", "models": [{{"id": "m"}}]}}}}}}}}"#
        ));
        assert_eq!(e.path, "models.providers.oa.apiKey", "{text}: {e}");
        assert!(e.message.contains("not a valid one"), "{text}: {e}");
    }
}

#[test]
fn malformed_proxy_and_sandbox_values() {
    let e = err(r#"{"network": {"proxy": "http://:99999"}}"#);
    assert_eq!(e.path, "network.proxy");
    assert!(e.fix.contains("socks5h://"), "{e}");
    let e = err(r#"{"tools": {"webFetch": {"network": {"proxy": "htp//x"}}}}"#);
    assert_eq!(e.path, "tools.webFetch.network.proxy");
    let e = err(r#"{"tools": {"exec": {"sandbox": "maybe"}}}"#);
    assert_eq!(e.path, "tools.exec.sandbox");
    let e = err(r#"{"tools": {"exec": {"sandbox": "off", "allowShell": true}}}"#);
    assert_eq!(e.path, "tools.exec.allowShell");
}

#[test]
fn config_files_must_be_small_regular_files() {
    let e = read_capped(Path::new("/dev/zero")).expect_err("device");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let dir = std::env::temp_dir().join(format!("pinch-cfgcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("cstr");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let started = std::time::Instant::now();
    let e = read_capped(&fifo).expect_err("fifo");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; (MAX_FILE_BYTES + 1) as usize]).expect("write");
    let e = read_capped(&big).expect_err("big");
    assert!(e.to_string().contains("limit"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json5_config_with_exact_positions() {
    let text = "{\n  // JSON5 as OpenClaw writes it\n  models: { providers: { oa: {\n    baseUrl: 'https://api.example.com/v1', apiKey: '$OPENAI_KEY',\n    models: [{ id: 'm1', contextWindow: 0x2000, maxTokens: +512, },],\n  }}},\n  agents: { defaults: { model: 'oa/m1', temperature: .5 } },\n}\n";
    let cfg = parse_str(text, None, &vars()).expect("valid JSON5");
    let m = &cfg.models.providers["oa"].models[0];
    assert_eq!((m.context_window, m.max_tokens), (8192, 512));
    assert_eq!(cfg.agents.defaults.temperature, Some(0.5));
    // A type error after unquoted keys and hex still points into the file.
    let e = err("{\n  gateway: { port: 0x10,\n    maxConnections: 'many' } }");
    assert_eq!((e.line, e.column), (3, 26), "{e}");
    assert_eq!(e.path, "gateway.maxConnections");
    let e = err("{\n  gateway: {\n    port: Infinity } }");
    assert_eq!((e.line, e.column), (3, 11), "{e}");
    assert!(e.message.contains("Infinity"), "{e}");
}

#[test]
fn openclaw_keys_are_ignored_with_one_line_each() {
    let text = r#"{
  $schema: "https://openclaw.ai/schema.json",
  meta: { lastTouchedVersion: "2026.9.6" },
  gateway: { mode: "local", port: 18789, auth: { mode: "token" } },
  models: { mode: "merge", providers: { oa: {
    baseUrl: "https://api.example.com/v1",
    models: [{ id: "m1", cost: { input: 1, output: 2 } }],
  } } },
  agents: {
    defaults: { model: { primary: "oa/m1" }, imageModel: { primary: "oa/m1" },
                musicGenerationModel: { primary: "oa/m1" } },
    list: [{ id: "main" }],
  },
  messages: { tts: { auto: "off" } },
  tts: { auto: "always", providers: { elevenlabs: { apiKey: "${NOT_SET_ANYWHERE}" } } },
  session: { dmScope: "per-peer" },
  channels: { telegram: { botToken: "x", streaming: { mode: "partial" }, proxy: "socks5h://127.0.0.1:1080" },
              signal: { enabled: true } },
  proxy: { proxyUrl: "http://127.0.0.1:3128", loopbackMode: "gateway-only" },
}"#;
    let cfg = parse_str(text, None, &vars()).expect("accepted with warnings");
    let lines: Vec<String> = cfg.ignored.iter().map(|k| k.message()).collect();
    for path in [
        "meta",
        "gateway.mode",
        "gateway.auth.mode",
        "models.mode",
        "models.providers.oa.models[0].cost",
        "agents.defaults.imageModel",
        "agents.defaults.musicGenerationModel",
        "agents.list",
        "messages",
        "tts",
        "channels.signal",
        "proxy.loopbackMode",
    ] {
        let want = format!("{path}: ignored: not supported by pinch");
        assert_eq!(
            lines.iter().filter(|l| **l == want).count(),
            1,
            "{want} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 12, "{lines:#?}");
    assert_eq!(cfg.session.dm_scope.as_deref(), Some("per-peer"));
    let tts = cfg.ignored.iter().find(|k| k.path == "tts").expect("tts");
    assert_eq!((tts.line, tts.column), (15, 3));
    // Same concept, OpenClaw's name: read, not ignored.
    assert_eq!(
        cfg.channels["telegram"].proxy.as_deref(),
        Some("socks5h://127.0.0.1:1080")
    );
    let proxy = cfg.proxy.as_ref().and_then(|p| p.proxy_url.as_deref());
    assert_eq!(proxy, Some("http://127.0.0.1:3128"));
}

#[test]
fn typos_stay_fatal_with_the_nearest_key() {
    let e = err(r#"{"agents": {"defaults": {"imageModle": {"primary": "x"}}}}"#);
    assert!(e.message.contains("imageModle"), "{e}");
    assert!(e.fix.contains("`imageModel`"), "{e}");
    let e = err(r#"{"gateway": {"prot": 1}}"#);
    assert!(e.fix.contains("`port`"), "{e}");
    let e = err(r#"{"ttss": {}}"#);
    assert!(e.fix.contains("`tts`"), "{e}");
    // Unknown to both systems: still an error naming the key.
    let e = err(r#"{"gateway": {"mode": "local", "frobnicate": true}}"#);
    assert!(e.message.contains("frobnicate"), "{e}");
}
