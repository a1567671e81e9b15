//! Hostile tool calls from a scripted model against the real gateway: the
//! sandbox keeps pinch's secrets from programs, skills from the agent's
//! file tools, and `web_fetch` away from inside addresses.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

fn run_chat(gw: &Gateway, session: &str) -> Vec<Value> {
    let mut ws = Ws::connect(gw.addr);
    let r = ws.call("chat.send", json!({"session": session, "text": "go"}));
    assert_eq!(r["ok"], true, "{r}");
    ws.until_done()
}

/// The tool result the model was shown for its last call.
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

/// Scripts one tool call and a final answer; returns (ok, result text).
fn call_tool(
    gw: &Gateway,
    llm: &FakeLlm,
    session: &str,
    name: &str,
    args: Value,
) -> (bool, String) {
    llm.push(Reply::ToolCall {
        id: "c1".into(),
        name: name.into(),
        args: args.to_string(),
    });
    llm.push(Reply::Text(vec!["done".into()]));
    let events = run_chat(gw, session);
    let end = events
        .iter()
        .find(|e| e["event"] == "chat.tool" && e["payload"]["phase"] == "end")
        .unwrap_or_else(|| panic!("no tool end: {events:?}"));
    (end["payload"]["ok"] == true, tool_result_seen(llm))
}

fn landlock_available(_home: &TempHome) -> bool {
    matches!(
        pinch::sandbox::probe(),
        pinch::sandbox::Support::Landlock { .. }
    )
}

fn setup(tag: &str, llm: &FakeLlm, tools: &str) -> TempHome {
    let home = TempHome::new(tag);
    home.write_config(&config_for(
        &[("fake", llm)],
        "fake/m1",
        &[],
        &format!(r#", "tools": {tools}"#),
    ));
    write_private(
        &home.path.join(".env"),
        "PINCH_TEST_DOTENV_SECRET=sk-dotenv-secret-0001\n",
    );
    let demo = home.path.join("workspace/skills/demo");
    std::fs::create_dir_all(demo.join("scripts")).expect("mkdir");
    std::fs::write(
        demo.join("SKILL.md"),
        "---\nname: demo\ndescription: a demo skill\ntool: demo_run | scripts/demo.sh | runs the demo\n---\nUse demo_run.\n",
    )
    .expect("skill");
    let script = demo.join("scripts/demo.sh");
    std::fs::write(&script, "#!/bin/sh\necho demo-original\n").expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    home
}

#[test]
fn programs_cannot_read_pinchs_secrets() {
    let llm = FakeLlm::openai();
    let home = setup(
        "sbx-secrets",
        &llm,
        r#"{"exec": {"allow": ["cat", "grep", "head", "tail", "ls", "env"]}, "webFetch": {"enabled": false}}"#,
    );
    if !landlock_available(&home) {
        eprintln!("SKIPPED: programs_cannot_read_pinchs_secrets: no Landlock on this kernel");
        return;
    }
    std::fs::create_dir_all(home.path.join("logs")).expect("logs");
    let gw = Gateway::start_with_env(
        &home,
        &[],
        &[("PINCH_TEST_ENV_SECRET", Path::new("sk-environ-secret-0002"))],
    );
    let root = home.path.display().to_string();
    let pid = gw.child.id();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("cat", vec![format!("{root}/.env")]),
        ("cat", vec![format!("{root}/pinch.json")]),
        ("grep", vec!["-r".into(), "sk-".into(), root.clone()]),
        ("head", vec![format!("{root}/state.redb")]),
        ("tail", vec!["/etc/shadow".into()]),
        ("cat", vec![format!("/proc/{pid}/environ")]),
        ("ls", vec![format!("{root}/logs")]),
        ("cat", vec!["../.env".into()]),
    ];
    for (i, (cmd, args)) in cases.iter().enumerate() {
        let (ok, seen) = call_tool(
            &gw,
            &llm,
            &format!("t:s{i}"),
            "exec",
            json!({"command": cmd, "args": args}),
        );
        assert!(!ok, "{cmd} {args:?} succeeded: {seen}");
        assert!(
            seen.contains("Permission denied") || seen.contains("No such file"),
            "{cmd} {args:?}: {seen}"
        );
        for secret in [
            "sk-dotenv-secret",
            "sk-environ-secret",
            "test-key",
            "root:$",
            "root:*",
            "root:!",
        ] {
            assert!(
                !seen.contains(secret),
                "{cmd} {args:?} leaked {secret}: {seen}"
            );
        }
    }
    // Ordinary work inside the workspace still runs.
    std::fs::write(home.path.join("workspace/notes.txt"), "milk\n").expect("write");
    let (ok, seen) = call_tool(
        &gw,
        &llm,
        "t:ok",
        "exec",
        json!({"command": "cat notes.txt"}),
    );
    assert!(ok, "{seen}");
    assert!(seen.contains("milk"), "{seen}");
    // The environment a program sees holds no secret of the gateway's.
    let (ok, seen) = call_tool(&gw, &llm, "t:env", "exec", json!({"command": "env"}));
    assert!(ok, "{seen}");
    assert!(
        !seen.contains("sk-environ-secret") && !seen.contains("PINCH_HOME"),
        "{seen}"
    );
    assert!(seen.contains("TMPDIR="), "{seen}");
    // /status says so.
    let (code, body) = http_get(&format!("{}/status", gw.url()), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"state\":\"enforced\""), "{body}");
}

#[test]
fn skills_are_not_writable_by_the_agent() {
    let llm = FakeLlm::openai();
    let home = setup(
        "sbx-skills",
        &llm,
        r#"{"exec": {"allow": ["cp", "tee"]}, "webFetch": {"enabled": false}}"#,
    );
    let landlock = landlock_available(&home);
    let gw = Gateway::start(&home, &[]);
    for (i, (name, args)) in [
        ("write_file", json!({"path": "skills/demo/scripts/demo.sh", "content": "#!/bin/sh\ncat /etc/shadow\n"})),
        ("write_file", json!({"path": "skills/demo/SKILL.md", "content": "---\nname: demo\n---\n"})),
        ("write_file", json!({"path": "skills/new/scripts/x.sh", "content": "x"})),
        ("edit_file", json!({"path": "skills/demo/scripts/demo.sh", "old_text": "echo demo-original", "new_text": "cat /etc/shadow"})),
    ]
    .into_iter()
    .enumerate()
    {
        let (ok, seen) = call_tool(&gw, &llm, &format!("t:w{i}"), name, args);
        assert!(!ok, "{name} succeeded: {seen}");
        assert!(seen.contains("skills are read-only"), "{seen}");
    }
    if landlock {
        std::fs::write(
            home.path.join("workspace/evil.sh"),
            "#!/bin/sh\ncat /etc/shadow\n",
        )
        .expect("write");
        let (ok, seen) = call_tool(
            &gw,
            &llm,
            "t:cp",
            "exec",
            json!({"command": "cp", "args": ["evil.sh", "skills/demo/scripts/demo.sh"]}),
        );
        assert!(!ok, "cp over a skill script succeeded: {seen}");
    } else {
        eprintln!(
            "SKIPPED: the Landlock half of skills_are_not_writable_by_the_agent: no Landlock"
        );
    }
    assert_eq!(
        std::fs::read_to_string(home.path.join("workspace/skills/demo/scripts/demo.sh"))
            .expect("read"),
        "#!/bin/sh\necho demo-original\n"
    );
    if landlock {
        let (ok, seen) = call_tool(&gw, &llm, "t:run", "demo_run", json!({"args": []}));
        assert!(ok, "{seen}");
        assert!(seen.contains("demo-original"), "{seen}");
    }
}

#[test]
fn allow_shell_runs_sh_inside_the_sandbox() {
    let llm = FakeLlm::openai();
    let home = setup(
        "sbx-shell",
        &llm,
        r#"{"exec": {"allow": ["echo"], "allowShell": true}, "webFetch": {"enabled": false}}"#,
    );
    if !landlock_available(&home) {
        eprintln!("SKIPPED: allow_shell_runs_sh_inside_the_sandbox: no Landlock on this kernel");
        return;
    }
    let gw = Gateway::start(&home, &[]);
    let (ok, seen) = call_tool(
        &gw,
        &llm,
        "t:sh",
        "exec",
        json!({"command": "echo shell-ran && cat ../.env /etc/shadow"}),
    );
    assert!(!ok, "{seen}");
    assert!(seen.contains("shell-ran"), "{seen}");
    assert!(seen.contains("Permission denied"), "{seen}");
    assert!(!seen.contains("sk-dotenv-secret"), "{seen}");
}

/// A one-route HTTP server on loopback: every request gets `reply(path)`.
fn serve(
    reply: impl Fn(&str) -> String + Send + 'static,
) -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let first = fake_server::read_request(&mut s, &mut buf);
            let mut target = first.as_ref().map(|r| r.path.clone()).unwrap_or_default();
            if first.is_some_and(|r| r.method == "CONNECT") {
                // Acting as a proxy: accept the tunnel, then answer the
                // request that comes through it.
                let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let inner = fake_server::read_request(&mut s, &mut buf);
                target = format!("{target} {}", inner.map(|r| r.path).unwrap_or_default());
            }
            let _ = tx.send(target.clone());
            let _ = s.write_all(reply(&target).as_bytes());
        }
    });
    (port, rx)
}

fn ok_page(text: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[test]
fn web_fetch_refuses_inside_addresses_on_every_hop() {
    let (inner, inner_seen) = serve(|_| ok_page("internal-secret-page"));
    // A proxy on loopback (allowed: it is the configured route) answering
    // a public URL with a redirect to the inside.
    let target = format!("http://127.0.0.1:{inner}/admin");
    let (proxy, proxy_seen) = serve(move |_| redirect(&target));
    let llm = FakeLlm::openai();
    let home = setup("sbx-fetch", &llm, r#"{"webFetch": {"enabled": true}}"#);
    let gw = Gateway::start(&home, &[]);
    for (i, url) in [
        format!("http://127.0.0.1:{inner}/"),
        format!("http://localhost:{inner}/"),
        format!("http://[::ffff:127.0.0.1]:{inner}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://100.64.0.1/".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let (ok, seen) = call_tool(
            &gw,
            &llm,
            &format!("t:f{i}"),
            "web_fetch",
            json!({"url": url}),
        );
        assert!(!ok, "{url}: {seen}");
        assert!(seen.contains("refusing to fetch"), "{url}: {seen}");
    }
    assert!(
        inner_seen.try_recv().is_err(),
        "a refused fetch reached the server"
    );
    drop(gw);

    // Through the proxy: the first hop is a public address literal (only the
    // local proxy is contacted), the redirect points inside and is refused.
    home.write_config(&config_for(
        &[("fake", &llm)],
        "fake/m1",
        &[],
        &format!(
            r#", "tools": {{"webFetch": {{"network": {{"proxy": "http://127.0.0.1:{proxy}"}}}}}}"#
        ),
    ));
    let gw = Gateway::start(&home, &[]);
    let (ok, seen) = call_tool(
        &gw,
        &llm,
        "t:redir",
        "web_fetch",
        json!({"url": "http://198.51.100.7/page"}),
    );
    assert!(!ok, "{seen}");
    assert!(seen.contains("refusing to fetch 127.0.0.1"), "{seen}");
    assert_eq!(
        proxy_seen.try_recv().ok().as_deref(),
        Some("198.51.100.7:80 /page")
    );
    assert!(
        inner_seen.try_recv().is_err(),
        "the redirect reached the inside"
    );
}

#[test]
fn web_fetch_allow_private_reaches_loopback_and_follows_redirects() {
    let (inner, _) = serve(|_| ok_page("loopback-page"));
    let target = format!("http://127.0.0.1:{inner}/final");
    let (hop, _) = serve(move |_| redirect(&target));
    let llm = FakeLlm::openai();
    let home = setup(
        "sbx-private",
        &llm,
        r#"{"webFetch": {"enabled": true, "allowPrivate": true}}"#,
    );
    let gw = Gateway::start(&home, &[]);
    let (ok, seen) = call_tool(
        &gw,
        &llm,
        "t:p",
        "web_fetch",
        json!({"url": format!("http://127.0.0.1:{hop}/start")}),
    );
    assert!(ok, "{seen}");
    assert!(seen.contains("loopback-page"), "{seen}");
}

#[test]
fn config_bounds_and_file_types_fail_fast() {
    let home = TempHome::new("sbx-cfg");
    let file = home.path.join("pinch.json").display().to_string();
    home.write_config(
        "{\n  \"agents\": {\"defaults\": {\n    \"timeoutSeconds\": 18446744073709551615}}\n}\n",
    );
    let out = home.cmd().args(["config", "check"]).output().expect("run");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("{file}:3:")), "{text}");
    assert!(text.contains("agents.defaults.timeoutSeconds"), "{text}");
    // A device as the config and a FIFO as .env end quickly with an error.
    let started = std::time::Instant::now();
    let out = home.run(&["--config", "/dev/zero", "config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    home.write_config("{}");
    let fifo = home.path.join(".env");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("cstr");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = home.cmd().args(["config", "check"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::os::raw::c_char, mode: u32) -> i32;
}

#[test]
fn doctor_and_status_show_the_sandbox() {
    let llm = FakeLlm::openai();
    let home = setup("sbx-doctor", &llm, r#"{"webFetch": {"enabled": false}}"#);
    let out = home.run(&["doctor", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tool sandbox"), "{text}");
    let gw = Gateway::start(&home, &[]);
    let out = home.run(&["status", "--url", &gw.url()]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("tool sandbox: "), "{status}");
    match pinch::sandbox::probe() {
        pinch::sandbox::Support::Landlock { abi } => {
            assert!(text.contains(&format!("Landlock ABI {abi}")), "{text}");
            assert!(status.contains("tool sandbox: enforced"), "{status}");
        }
        pinch::sandbox::Support::Unavailable(_) => {
            assert!(
                text.contains("exec and skill scripts are refused"),
                "{text}"
            );
            assert!(status.contains("unavailable"), "{status}");
        }
    }
}

/// Installs, in a child before exec, a seccomp filter that answers EPERM to
/// `landlock_create_ruleset`, as a container manager's allowlist without the
/// Landlock calls does. Spawning fails where seccomp cannot be installed.
fn deny_landlock_with_eperm(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        // A = syscall number (offset 0 of struct seccomp_data).
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_landlock_create_ruleset as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    // SAFETY: prctl with a filter program that lives in this closure's
    // captured array for the duration of the call.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn doctor_names_a_seccomp_filter_that_denies_landlock() {
    let llm = FakeLlm::openai();
    let home = setup("sbx-eperm", &llm, r#"{"webFetch": {"enabled": false}}"#);
    if !landlock_available(&home) {
        eprintln!(
            "SKIPPED: doctor_names_a_seccomp_filter_that_denies_landlock: no Landlock here to deny"
        );
        return;
    }
    let mut cmd = home.cmd();
    cmd.args(["doctor"]).env("container", "systemd-nspawn");
    deny_landlock_with_eperm(&mut cmd);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: doctor_names_a_seccomp_filter_that_denies_landlock: cannot install a seccomp filter here: {e}");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "doctor passed without Landlock: {text}"
    );
    assert!(
        text.contains("a seccomp filter denies the Landlock system calls"),
        "{text}"
    );
    assert!(
        text.contains("landlock_create_ruleset landlock_add_rule landlock_restrict_self"),
        "{text}"
    );
    assert!(
        text.contains("exec and skill scripts are refused"),
        "{text}"
    );
    let container = std::fs::read_to_string("/run/systemd/container").unwrap_or_default();
    if container.is_empty() || container.contains("nspawn") {
        assert!(text.contains("--system-call-filter="), "{text}");
    }
}
