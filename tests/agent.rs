//! The agent end to end: tools driven by scripted fake models, the
//! fallback chain under every kind of failure, both wire APIs, and
//! compaction against a model with a tiny context window.

mod common;

use common::*;
use serde_json::{json, Value};

fn run_chat(gw: &Gateway, session: &str, text: &str) -> Vec<Value> {
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": session, "text": text}));
    assert_eq!(r["ok"], true, "{r}");
    ws.until_done()
}

fn final_of(events: &[Value]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last["event"], "chat.final", "{events:?}");
    &last["payload"]
}

/// The content the model was given for the tool result of its last call.
fn tool_result_seen(llm: &FakeLlm) -> String {
    let req = llm.requests().pop().expect("request");
    let msgs = req.body["messages"].as_array().expect("messages").clone();
    let m = msgs
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .expect("tool message");
    m["content"].as_str().unwrap_or("").to_string()
}

fn truncate(s: &str) -> String {
    s.chars().take(600).collect()
}

fn workspace_config(llm: &FakeLlm, extra: &str) -> String {
    config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "tools": {{"exec": {{"allow": ["echo", "ls"]}}, "webFetch": {{"enabled": false}}}} {extra}"#
        ),
    )
}

#[test]
fn the_agent_writes_a_file_with_a_tool_then_answers() {
    let home = TempHome::new("tool-write");
    let llm = FakeLlm::openai();
    home.write_config(&workspace_config(&llm, ""));
    llm.push(Reply::ToolCall {
        id: "call_1".into(),
        name: "write_file".into(),
        args: r#"{"path": "notes/todo.md", "content": "buy milk"}"#.into(),
    });
    llm.push(Reply::Text(vec!["Saved it.".into()]));
    let gw = Gateway::start(&home, &[]);
    let events = run_chat(&gw, "t:w", "note: buy milk");
    assert_eq!(final_of(&events)["text"], "Saved it.");
    let tools: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "chat.tool")
        .collect();
    assert_eq!(tools.len(), 2, "start and end");
    assert_eq!(tools[1]["payload"]["name"], "write_file");
    assert_eq!(tools[1]["payload"]["ok"], true);
    assert_eq!(
        std::fs::read_to_string(home.path.join("workspace/notes/todo.md")).expect("file"),
        "buy milk"
    );
    // The model saw its call and the result, and the tools offered.
    let req = llm.requests().pop().expect("second request");
    let names: Vec<&str> = req.body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"write_file") && names.contains(&"exec") && names.contains(&"memory"),
        "{names:?}"
    );
    assert!(tool_result_seen(&llm).contains("wrote notes/todo.md"));
    // The whole exchange is in the transcript, in one piece.
    let mut ws = Ws::connect(gw.addr);
    let h = ws.call("chat.history", json!({"session": "t:w"}));
    assert_eq!(
        h["payload"]["turns"].as_array().expect("turns").len(),
        4,
        "user, call, result, answer: {h}"
    );
}

#[test]
fn exec_runs_allowed_programs_and_refuses_the_rest() {
    let home = TempHome::new("tool-exec");
    let llm = FakeLlm::openai();
    home.write_config(&workspace_config(&llm, ""));
    let gw = Gateway::start(&home, &[]);
    let cases: [(&str, bool, &str); 5] = [
        (
            r#"{"command": "echo", "args": ["pinch-ok"]}"#,
            true,
            "pinch-ok",
        ),
        (
            r#"{"command": "cat", "args": ["/etc/passwd"]}"#,
            false,
            "not in tools.exec.allow",
        ),
        (
            r#"{"command": "echo hi; cat /etc/passwd"}"#,
            false,
            "shell syntax",
        ),
        (r#"{"command": "echo $(id)"}"#, false, "shell syntax"),
        (r#"{"command": "ls | cat"}"#, false, "shell syntax"),
    ];
    for (i, (args, ok, needle)) in cases.iter().enumerate() {
        llm.push(Reply::ToolCall {
            id: format!("c{i}"),
            name: "exec".into(),
            args: args.to_string(),
        });
        llm.push(Reply::Text(vec!["done".into()]));
        let events = run_chat(&gw, &format!("t:e{i}"), "run it");
        let end = events
            .iter()
            .find(|e| e["event"] == "chat.tool" && e["payload"]["phase"] == "end")
            .expect("tool end");
        assert_eq!(end["payload"]["ok"], *ok, "{args}: {end}");
        let seen = tool_result_seen(&llm);
        assert!(seen.contains(needle), "{args}: {seen}");
        assert!(!seen.contains("root:x:0:0"), "{args} leaked /etc/passwd");
    }
}

#[test]
fn paths_outside_the_workspace_are_refused_even_via_symlinks() {
    let home = TempHome::new("tool-escape");
    let llm = FakeLlm::openai();
    home.write_config(&workspace_config(&llm, ""));
    let gw = Gateway::start(&home, &[]);
    std::os::unix::fs::symlink("/etc", home.path.join("workspace/etc-link")).expect("symlink");
    for (i, args) in [
        r#"{"path": "../pinch.json"}"#,
        r#"{"path": "/etc/passwd"}"#,
        r#"{"path": "etc-link/passwd"}"#,
    ]
    .iter()
    .enumerate()
    {
        llm.push(Reply::ToolCall {
            id: format!("r{i}"),
            name: "read_file".into(),
            args: args.to_string(),
        });
        llm.push(Reply::Text(vec!["ok".into()]));
        let events = run_chat(&gw, &format!("t:x{i}"), "read it");
        let end = events
            .iter()
            .find(|e| e["event"] == "chat.tool" && e["payload"]["phase"] == "end")
            .expect("tool end");
        assert_eq!(end["payload"]["ok"], false, "{args}");
        let seen = tool_result_seen(&llm);
        assert!(
            !seen.contains("root:x:0:0") && !seen.contains("\"models\""),
            "{args} leaked: {seen}"
        );
    }
    llm.push(Reply::ToolCall {
        id: "w".into(),
        name: "write_file".into(),
        args: r#"{"path": "etc-link/evil", "content": "x"}"#.into(),
    });
    llm.push(Reply::Text(vec!["ok".into()]));
    run_chat(&gw, "t:xw", "write it");
    assert!(!std::path::Path::new("/etc/evil").exists());
}

#[test]
fn anthropic_messages_text_and_tools() {
    let home = TempHome::new("anthropic");
    let llm = FakeLlm::anthropic();
    home.write_config(&config_for(
        &[("claude", &llm)],
        "claude/m1",
        &[],
        r#", "tools": {"webFetch": {"enabled": false}}"#,
    ));
    let gw = Gateway::start(&home, &[]);
    let events = run_chat(&gw, "t:a", "hello");
    let fin = final_of(&events);
    assert_eq!(fin["text"], "Hello from fake: hello");
    assert_eq!(fin["usage"]["input"], 12);
    assert_eq!(fin["usage"]["output"], 9);
    let req = llm.requests().pop().expect("request");
    assert_eq!(req.path, "/v1/messages");
    assert!(req
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == "test-key"));
    assert!(req.headers.iter().any(|(k, _)| k == "anthropic-version"));
    // The system prompt is one text block carrying a cache breakpoint.
    assert!(req.body["system"][0]["text"]
        .as_str()
        .expect("system")
        .contains("pinch"));
    assert_eq!(req.body["system"][0]["cache_control"]["type"], "ephemeral");
    // A tool call whose input arrives as split input_json_delta pieces.
    llm.push(Reply::ToolCall {
        id: "toolu_1".into(),
        name: "write_file".into(),
        args: r#"{"path": "a.txt", "content": "from claude"}"#.into(),
    });
    llm.push(Reply::Text(vec!["written".into()]));
    let events = run_chat(&gw, "t:a", "write");
    assert_eq!(final_of(&events)["text"], "written");
    assert_eq!(
        std::fs::read_to_string(home.path.join("workspace/a.txt")).expect("file"),
        "from claude"
    );
    let req = llm.requests().pop().expect("request");
    let last = req.body["messages"]
        .as_array()
        .expect("messages")
        .last()
        .expect("last")
        .clone();
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"][0]["type"], "tool_result");
    assert_eq!(last["content"][0]["tool_use_id"], "toolu_1");
}

/// One failure mode of the primary and what must happen next.
struct Case {
    name: &'static str,
    reply: Option<Reply>,
    falls_over: bool,
    restart: bool,
    message: &'static str,
}

#[test]
fn fallback_chain_fault_matrix() {
    let cases = vec![
        Case {
            name: "refused",
            reply: None,
            falls_over: true,
            restart: false,
            message: "refused",
        },
        Case {
            name: "reset",
            reply: Some(Reply::Reset),
            falls_over: true,
            restart: false,
            message: "",
        },
        Case {
            name: "hang",
            reply: Some(Reply::Hang),
            falls_over: true,
            restart: false,
            message: "",
        },
        Case {
            name: "429",
            reply: Some(Reply::Status(
                429,
                r#"{"error":{"message":"slow down"}}"#.into(),
            )),
            falls_over: true,
            restart: false,
            message: "429",
        },
        Case {
            name: "500",
            reply: Some(Reply::Status(500, r#"{"error":{"message":"boom"}}"#.into())),
            falls_over: true,
            restart: false,
            message: "500",
        },
        Case {
            name: "broken",
            reply: Some(Reply::Broken(vec!["partial ".into(), "answer".into()])),
            falls_over: true,
            restart: true,
            message: "",
        },
        Case {
            name: "garbage",
            reply: Some(Reply::Garbage),
            falls_over: true,
            restart: false,
            message: "",
        },
        Case {
            name: "401",
            reply: Some(Reply::Status(
                401,
                r#"{"error":{"message":"invalid api key"}}"#.into(),
            )),
            falls_over: false,
            restart: false,
            message: "apiKey",
        },
    ];
    for case in cases {
        let home = TempHome::new(&format!("fault-{}", case.name));
        let primary = FakeLlm::openai();
        let backup = FakeLlm::openai();
        let mut cfg = config_for(&[("a", &primary), ("b", &backup)], "a/m1", &["b/m1"], "");
        if case.reply.is_none() {
            let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = dead.local_addr().expect("addr").port();
            drop(dead);
            cfg = cfg.replace(&primary.base_url(), &format!("http://127.0.0.1:{port}/v1"));
        }
        home.write_config(&cfg.replace("\"firstToken\": 3", "\"firstToken\": 1"));
        if let Some(r) = case.reply.clone() {
            primary.push(r);
        }
        let gw = Gateway::start(&home, &[]);
        let events = run_chat(&gw, "t:f", "hi");
        let last = events.last().expect("last");
        if case.falls_over {
            assert_eq!(last["event"], "chat.final", "{}: {events:?}", case.name);
            assert_eq!(last["payload"]["model"], "b/m1", "{}", case.name);
            assert_eq!(
                last["payload"]["text"], "Hello from fake: hi",
                "{}: the answer is whole, not garbled",
                case.name
            );
            assert_eq!(backup.requests().len(), 1, "{}", case.name);
            let restarted = events.iter().any(|e| e["event"] == "chat.restart");
            assert_eq!(restarted, case.restart, "{}: {events:?}", case.name);
            // The failed model cools down, visibly.
            let (_, body) = http_get(&format!("{}/status", gw.url()), None);
            let st: Value = serde_json::from_str(&body).expect("status");
            assert_eq!(
                st["models"]["a/m1"]["state"], "cooldown",
                "{}: {st}",
                case.name
            );
            let err = st["models"]["a/m1"]["lastError"].as_str().unwrap_or("");
            assert!(
                err.to_lowercase().contains(case.message),
                "{}: {err}",
                case.name
            );
        } else {
            assert_eq!(last["event"], "chat.error", "{}: {events:?}", case.name);
            assert_eq!(last["payload"]["kind"], "config");
            let msg = last["payload"]["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("401") && msg.contains(case.message),
                "{}: {msg}",
                case.name
            );
            assert_eq!(
                backup.requests().len(),
                0,
                "{}: no fallover on 401",
                case.name
            );
        }
        // The partial text of a broken stream is not what gets stored.
        let mut ws = Ws::connect(gw.addr);
        let h = ws.call("chat.history", json!({"session": "t:f"}));
        let stored = h["payload"]["turns"].to_string();
        assert!(
            !stored.contains("partial answer"),
            "{}: {stored}",
            case.name
        );
    }
}

#[test]
fn compaction_keeps_every_request_inside_a_tiny_window() {
    let home = TempHome::new("compact");
    let llm = FakeLlm::openai();
    let window = 2048u32;
    let max_tokens = 128u32;
    let cfg = config_for(
        &[("tiny", &llm)],
        "tiny/m1",
        &[],
        r#", "tools": {"webFetch": {"enabled": false}}"#,
    )
    .replace(
        "\"contextWindow\": 4096, \"maxTokens\": 256",
        &format!("\"contextWindow\": {window}, \"maxTokens\": {max_tokens}"),
    );
    home.write_config(&cfg);
    let gw = Gateway::start(&home, &[]);
    let mut ws = Ws::connect(gw.addr);
    for i in 0..40 {
        let text = format!("message {i}: {}", "lorem ipsum dolor sit amet ".repeat(8));
        assert_eq!(
            ws.call("chat.send", json!({"session": "t:long", "text": text}))["ok"],
            true
        );
        let done = ws.until_done();
        assert_eq!(
            done.last().expect("last")["event"],
            "chat.final",
            "{done:?}"
        );
    }
    let budget = ((window - max_tokens) as usize) * 3;
    let reqs = llm.requests();
    let mut summaries = 0;
    let mut flushes = 0;
    for r in &reqs {
        let system = r.body["messages"][0]["content"].as_str().unwrap_or("");
        if system.starts_with("You write the running summary") {
            summaries += 1;
        }
        if system.starts_with("The older part of this conversation") {
            flushes += 1;
        }
        let tools = r
            .body
            .get("tools")
            .map(|t| t.to_string().len())
            .unwrap_or(0);
        let msgs: usize = r.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                m["content"].as_str().map(str::len).unwrap_or(0)
                    + m.get("tool_calls")
                        .map(|t| t.to_string().len())
                        .unwrap_or(0)
            })
            .sum();
        assert!(msgs + tools <= budget, "request of {} chars ({msgs} in messages, {tools} in tools) over the {budget}-char budget: {}", msgs + tools, crate::truncate(&r.body.to_string()));
    }
    assert!(summaries >= 1, "the session was compacted");
    assert_eq!(
        flushes, summaries,
        "each compaction first offers a memory flush"
    );
    // The newest turns are verbatim, the old ones summarised; nothing is lost on disk.
    let last = reqs.last().expect("req");
    let ctx = last.body["messages"].to_string();
    assert!(
        ctx.contains("[Summary of the earlier conversation]"),
        "{ctx}"
    );
    assert!(ctx.contains("message 39"));
    let h = ws.call("chat.history", json!({"session": "t:long", "limit": 500}));
    let turns = h["payload"]["turns"].as_array().expect("turns");
    assert!(turns.iter().any(|t| t["role"] == "summary"));
    gw.stop();
    let out = home.run(&["sessions", "show", "t:long"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("message 0:") && text.contains("message 39:"),
        "full transcript stays on disk"
    );
}

#[test]
fn the_default_prompt_stays_small() {
    let home = TempHome::new("prompt-size");
    let llm = FakeLlm::openai();
    home.write_config(&config_for(&[("fake", &llm)], "fake/m1", &[], ""));
    let gw = Gateway::start(&home, &[]);
    run_chat(&gw, "t:p", "hi");
    let req = llm.requests().pop().expect("request");
    let system = req.body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .len();
    let tools = req.body["tools"].to_string().len();
    let approx_tokens = (system + tools) / 4;
    eprintln!(
        "system prompt {system} chars, tool schemas {tools} chars, about {approx_tokens} tokens"
    );
    assert!(
        approx_tokens < 2000,
        "system prompt and tools should stay under ~2k tokens, got ~{approx_tokens}"
    );
}
