//! An OpenClaw setup carried over unchanged: the reference article's blocks
//! pasted as JSON5 (comments, unquoted keys, the media keys pinch does not
//! implement yet), secrets and the proxy only in `$PINCH_HOME/.env`.
//! MiniMax is reached at `<baseUrl>/v1/messages` with `Authorization:
//! Bearer`; when it fails, the chain falls over to a Gemini-like
//! openai-completions provider that goes through a real proxy (tinyproxy)
//! named only in `.env`, while the NO_PROXY host goes direct.

mod common;

use common::telegram::FakeTelegram;
use common::tinyproxy::Tinyproxy;
use common::*;
use serde_json::json;

const EXPECTED_IGNORED: [&str; 9] = [
    "gateway.mode",
    "models.mode",
    "models.providers.minimax.models[0].cost",
    "models.providers.gemini.models[0].cost",
    "models.providers.nvidia.models[0].cost",
    "agents.defaults.imageModel",
    "agents.defaults.musicGenerationModel",
    "messages",
    "tts",
];

fn article_config(minimax: u16, gemini: u16, nvidia: u16, telegram: &str) -> String {
    format!(
        r#"// ~/.pinch/pinch.json, pasted from an openclaw.json (JSON5)
{{
  gateway: {{ mode: "local", bind: "loopback", port: 18789 }},

  models: {{
    mode: "merge",
    providers: {{
      // MiniMax, Anthropic-compatible (the article: https://api.minimaxi.com/anthropic)
      minimax: {{
        baseUrl: "http://127.0.0.1:{minimax}/anthropic",
        api: "anthropic-messages",
        apiKey: "${{MINIMAX_API_KEY}}",
        models: [
          {{ id: "MiniMax-M2.7", name: "MiniMax M2.7", reasoning: false, input: ["text"],
            cost: {{ input: 0.3, output: 1.2, cacheRead: 0.03, cacheWrite: 0.375 }},
            contextWindow: 200000, maxTokens: 8192 }},
        ],
      }},
      // Gemini through its OpenAI-compatible endpoint, behind the proxy from .env
      gemini: {{
        baseUrl: "http://localhost:{gemini}/v1beta/openai",
        api: "openai-completions",
        apiKey: "${{GEMINI_API_KEY}}",
        models: [{{ id: "gemini-2.5-flash", contextWindow: 1048576, maxTokens: 8192,
                    cost: {{ input: 0.3, output: 2.5 }} }}],
      }},
      // NVIDIA NIM (OpenAI-compatible)
      nvidia: {{
        baseUrl: "http://127.0.0.1:{nvidia}/v1",
        api: "openai-completions",
        apiKey: "${{NVIDIA_API_KEY}}",
        models: [{{ id: "moonshotai/kimi-k2-instruct", contextWindow: 131072, maxTokens: 4096,
                    cost: {{ input: 0, output: 0 }} }}],
      }},
    }},
  }},

  agents: {{
    defaults: {{
      model: {{
        primary: "minimax/MiniMax-M2.7",
        fallbacks: ["gemini/gemini-2.5-flash", "nvidia/moonshotai/kimi-k2-instruct"],
      }},
      imageModel: {{ primary: "minimax/MiniMax-VL-01" }},
      musicGenerationModel: {{ primary: "minimax/music-2.6" }},
    }},
  }},

  messages: {{ ackReaction: "👀", queue: {{ mode: "collect" }} }},
  tts: {{ auto: "inbound", provider: "minimax" }},

  channels: {{
    telegram: {{
      enabled: true,
      botToken: "${{TELEGRAM_BOT_TOKEN}}",
      dmPolicy: "open",
      allowFrom: ["*"],
      streaming: {{ mode: "partial" }},
      apiRoot: "{telegram}",   // pinch: a local stand-in for api.telegram.org
    }},
  }},

  session: {{ dmScope: "per-channel-peer" }},
}}
"#
    )
}

#[test]
fn article_setup_runs_unchanged() {
    let home = TempHome::new("openclaw");
    let Some(proxy) = Tinyproxy::start(&home) else {
        return;
    };
    let minimax = FakeLlm::anthropic();
    let gemini = FakeLlm::openai();
    let nvidia = FakeLlm::openai();
    let tg = FakeTelegram::start();
    let (pm, pg) = (minimax.addr.port(), gemini.addr.port());
    write_private(
        &home.path.join(".env"),
        &format!(
            "# secrets and the proxy, as the article keeps them\nMINIMAX_API_KEY=mm-key-123\nGEMINI_API_KEY=gm-key-456\nNVIDIA_API_KEY=nv-key-789\nTELEGRAM_BOT_TOKEN=123:abc\nHTTP_PROXY=http://127.0.0.1:{port}\nHTTPS_PROXY=http://127.0.0.1:{port}\nNO_PROXY=127.0.0.1\n",
            port = proxy.port
        ),
    );
    home.write_config(&article_config(pm, pg, nvidia.addr.port(), &tg.api_root()));

    // config check: valid, one warning per unimplemented key and nothing else.
    let out = home.cmd().args(["config", "check"]).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    for key in EXPECTED_IGNORED {
        let line = format!("warning: {key}: ignored: not supported by pinch (");
        assert_eq!(
            warnings.iter().filter(|w| w.starts_with(&line)).count(),
            1,
            "{key} in:\n{stdout}"
        );
    }
    assert_eq!(warnings.len(), EXPECTED_IGNORED.len(), "{stdout}");

    let gw = Gateway::start(&home, &[]);
    for key in ["tts", "agents.defaults.imageModel"] {
        assert!(
            gw.log()
                .contains(&format!("{key}: ignored: not supported by pinch")),
            "{}",
            gw.log()
        );
    }
    let (code, body) = http_get(&format!("{}/status", gw.url()), None);
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status json");
    assert_eq!(
        status["configWarnings"].as_array().map(Vec::len),
        Some(EXPECTED_IGNORED.len()),
        "{status}"
    );

    // MiniMax answers at <baseUrl>/v1/messages with a Bearer key.
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": "t:oc", "text": "hello"}));
    assert_eq!(r["ok"], true, "{r}");
    let fin = ws.until_done().pop().expect("final");
    assert_eq!(fin["payload"]["model"], "minimax/MiniMax-M2.7", "{fin}");
    let seen = minimax.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/anthropic/v1/messages");
    let header = |s: &Seen, k: &str| {
        s.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&seen[0], "authorization").as_deref(),
        Some("Bearer mm-key-123")
    );
    assert_eq!(header(&seen[0], "x-api-key"), None);

    // MiniMax fails: Gemini answers, through the proxy named in .env.
    minimax.push(Reply::Status(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#.into(),
    ));
    let r = ws.call("chat.send", json!({"session": "t:oc", "text": "again"}));
    assert_eq!(r["ok"], true, "{r}");
    let fin = ws.until_done().pop().expect("final");
    assert_eq!(fin["payload"]["model"], "gemini/gemini-2.5-flash", "{fin}");
    // Only the chats: the gateway also asks a loopback OpenAI-style server
    // for llama.cpp's /health, /props and /slots.
    let chats = |fake: &FakeLlm| -> Vec<Seen> {
        fake.requests()
            .into_iter()
            .filter(|s| s.path.ends_with("/chat/completions"))
            .collect()
    };
    let seen = chats(&gemini);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1beta/openai/chat/completions");
    assert_eq!(
        header(&seen[0], "authorization").as_deref(),
        Some("Bearer gm-key-456")
    );
    assert!(chats(&nvidia).is_empty());

    // explain-route says where each setting came from.
    let explain = |name: &str| {
        let out = home
            .cmd()
            .args(["config", "explain-route", name])
            .output()
            .expect("run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = explain("gemini");
    assert!(
        text.contains(&format!("via proxy 127.0.0.1:{}", proxy.port))
            && text.contains("$PINCH_HOME/.env HTTP_PROXY"),
        "{text}"
    );
    let text = explain("minimax");
    assert!(
        text.contains("matched noProxy 127.0.0.1") && text.contains("$PINCH_HOME/.env NO_PROXY"),
        "{text}"
    );

    drop(gw);
    let proxy_log = proxy.stop();
    assert!(
        proxy_log.contains(&format!("CONNECT localhost:{pg}")),
        "Gemini must tunnel through the proxy:\n{proxy_log}"
    );
    assert!(
        !proxy_log.contains(&format!(":{pm}")),
        "MiniMax (NO_PROXY) must not touch the proxy:\n{proxy_log}"
    );
}
