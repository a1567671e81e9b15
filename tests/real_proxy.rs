//! Per-provider routes through a real HTTP proxy (Debian's tinyproxy, which
//! `.ci/run` installs): provider A goes through the proxy, provider B
//! matches noProxy and goes direct. The proxy's own log must show A's
//! CONNECT and never B's. Skips, saying so, where tinyproxy is absent.

mod common;

use common::*;
use serde_json::json;

#[test]
fn provider_routes_through_tinyproxy_and_around_it() {
    let home = TempHome::new("tinyproxy");
    let Some(proxy) = common::tinyproxy::Tinyproxy::start(&home) else {
        return;
    };
    let port = proxy.port;
    let a = FakeLlm::openai();
    let b = FakeLlm::openai();
    let (pa, pb) = (a.addr.port(), b.addr.port());
    home.write_config(&format!(
        r#"{{
  "network": {{"proxy": "http://127.0.0.1:{port}"}},
  "models": {{"providers": {{
    "a": {{"baseUrl": "http://localhost:{pa}/v1", "models": [{{"id": "m1"}}]}},
    "b": {{"baseUrl": "http://127.0.0.1:{pb}/v1", "network": {{"noProxy": ["127.0.0.1"]}}, "models": [{{"id": "m1"}}]}}
  }}}},
  "agents": {{"defaults": {{"model": {{"primary": "a/m1", "fallbacks": ["b/m1"]}}}}}}
}}"#
    ));
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    assert_eq!(
        ws.call("chat.send", json!({"session": "t:p", "text": "via proxy"}))["ok"],
        true
    );
    let fin = ws.until_done().pop().expect("final");
    assert_eq!(fin["payload"]["model"], "a/m1", "{fin}");
    // A fails with a 500: the fallback B answers, directly.
    a.push(Reply::Status(500, r#"{"error":{"message":"boom"}}"#.into()));
    assert_eq!(
        ws.call("chat.send", json!({"session": "t:p", "text": "around it"}))["ok"],
        true
    );
    let fin = ws.until_done().pop().expect("final");
    assert_eq!(fin["payload"]["model"], "b/m1", "{fin}");
    assert_eq!(b.requests().len(), 1);
    // explain-route names the rule that matched.
    let out = home.run(&["config", "explain-route", "b"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("noProxy") && text.contains("127.0.0.1"),
        "{text}"
    );
    let out = home.run(&["config", "explain-route", "a"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port}")));
    let proxy_log = proxy.stop();
    assert!(
        proxy_log.contains(&format!("CONNECT localhost:{pa}")),
        "A must tunnel through the proxy:\n{proxy_log}"
    );
    assert!(
        !proxy_log.contains(&format!(":{pb}")),
        "B must not touch the proxy:\n{proxy_log}"
    );
}
