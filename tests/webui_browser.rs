//! The web chat in a real headless browser (Debian's chromium), driven over
//! the Chrome DevTools protocol (a WebSocket on 127.0.0.1) against a gateway
//! and a fake model started here: history paging, Markdown rendering that
//! never turns model text into markup it did not ask for, in-chat commands
//! and the Stop button.
//!
//! Without chromium the test prints "NOT RUN" and passes, unless
//! PINCH_REQUIRE_BROWSER=1 (as in `.ci/run`), where it fails.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<String> {
    let candidates = [
        std::env::var("PINCH_CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".to_string(),
        "/usr/bin/chromium-browser".to_string(),
    ];
    candidates
        .into_iter()
        .find(|c| !c.is_empty() && std::path::Path::new(c).exists())
}

/// A headless chromium and a DevTools connection to its page.
struct Browser {
    child: Child,
    page: tungstenite::WebSocket<TcpStream>,
    next: u64,
    _profile: TempHome,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start(exe: &str) -> Browser {
        let profile = TempHome::new("chromium-profile");
        let mut child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium prints its DevTools address");
        eprintln!("chromium: {browser_url}");
        let port = browser_url
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .expect("port")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let page_url = loop {
            let (_, body) = http_get(&format!("http://127.0.0.1:{port}/json/list"), None);
            let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let found = list.as_array().and_then(|a| {
                a.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
            });
            if let Some(u) = found {
                break u;
            }
            assert!(Instant::now() < deadline, "no page target: {body}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let addr = page_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host")
            .to_string();
        let stream = TcpStream::connect(&addr).expect("connect DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let (page, _) = tungstenite::client::client(page_url.as_str(), stream).expect("DevTools");
        Browser {
            child,
            page,
            next: 1,
            _profile: profile,
        }
    }

    fn command(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.page
            .send(tungstenite::Message::text(msg))
            .expect("send to DevTools");
        loop {
            let m = self.page.read().expect("read DevTools");
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if v["id"] == id {
                return v;
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.command(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["result"]["value"].clone()
    }

    /// Waits until `expr` is true in the page.
    fn wait(&mut self, what: &str, expr: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.eval(expr) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = self.eval("document.getElementById('log').innerHTML");
        panic!("timed out waiting for {what} ({expr}); log: {log}");
    }

    fn type_and_send(&mut self, text: &str) {
        let js = format!(
            "(() => {{ const t = document.getElementById('t'); t.value = {}; document.getElementById('f').requestSubmit(); return true; }})()",
            serde_json::to_string(text).expect("json")
        );
        assert_eq!(self.eval(&js), Value::Bool(true));
    }
}

#[test]
fn the_web_chat_pages_history_renders_markdown_runs_commands_and_stops() {
    let Some(exe) = chromium() else {
        if std::env::var("PINCH_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("PINCH_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install -y chromium)");
        }
        println!("NOT RUN: chromium is not installed (apt-get install -y chromium); set PINCH_REQUIRE_BROWSER=1 to make this a failure");
        return;
    };
    let home = TempHome::new("webui");
    let llm = FakeLlm::openai();
    // A large window: no compaction turn takes a scripted reply.
    let cfg = config_for(&[("fake", &llm)], "fake/m1", &[], "")
        .replace("\"contextWindow\": 4096", "\"contextWindow\": 65536");
    assert!(cfg.contains("65536"));
    home.write_config(&cfg);
    let gw = Gateway::start(&home, &[]);
    // 35 exchanges (70 turns) in the owner's conversation before the page opens.
    let mut ws = Ws::connect(gw.addr);
    for i in 0..35 {
        let r = ws.call("chat.send", json!({"text": format!("message {i}")}));
        assert_eq!(r["payload"]["session"], "main", "{r}");
        ws.until_done();
    }

    eprintln!("history seeded; starting {exe}");
    let mut b = Browser::start(&exe);
    eprintln!("DevTools connected");
    b.command("Page.navigate", json!({"url": gw.url()}));
    b.wait(
        "the page to connect",
        "document.getElementById('state').textContent.includes('connected · main')",
        30,
    );
    // The first page holds the newest 30 turns; older ones load on demand.
    assert_eq!(
        b.eval("document.querySelectorAll('#log .msg').length"),
        json!(30)
    );
    b.wait("the newest turn", "document.getElementById('log').lastChild.textContent.includes('Hello from fake: message 34')", 5);
    b.eval("document.getElementById('more').click(), true");
    b.wait(
        "the second page",
        "document.querySelectorAll('#log .msg').length === 60",
        10,
    );
    b.eval("document.getElementById('more').click(), true");
    // 70 turns, and the compaction summary written on the way (past 48 turns).
    b.wait(
        "the last page",
        "document.querySelectorAll('#log .msg').length >= 70 && !document.getElementById('more')",
        10,
    );
    assert_eq!(
        b.eval("document.querySelector('#log .msg').textContent"),
        json!("message 0"),
        "the oldest turn is on top"
    );

    // Markdown is rendered; markup the model writes stays text.
    llm.push(Reply::Text(vec![
        "Here is **bold**, `code` and <img src=x onerror=\"document.title='owned'\">\n\n- one\n- two\n\n```\nlet a = 1 < 2;\n```".into(),
    ]));
    b.type_and_send("show me markdown");
    b.wait(
        "the rendered answer",
        "!!document.querySelector('#log .assistant:last-child strong')",
        15,
    );
    let html = b.eval("document.querySelector('#log .assistant:last-child .body').innerHTML");
    let html = html.as_str().unwrap_or("");
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    assert!(html.contains("<code>code</code>"), "{html}");
    assert!(html.contains("<li>one</li><li>two</li>"), "{html}");
    assert!(
        html.contains("<pre><code>let a = 1 &lt; 2;</code></pre>"),
        "{html}"
    );
    assert!(html.contains("&lt;img src=x"), "{html}");
    assert_eq!(
        b.eval("document.querySelectorAll('img, [src], link').length"),
        json!(0),
        "no images, scripts or links to load"
    );
    assert_ne!(b.eval("document.title"), json!("owned"));

    // A command is answered by pinch, not the model.
    let before = llm.requests().len();
    b.type_and_send("/status");
    b.wait(
        "the status",
        "document.querySelector('#log .msg:last-child').textContent.includes('Model: fake/m1')",
        10,
    );
    assert_eq!(llm.requests().len(), before);

    // Stop: a run that hangs is stopped by the button.
    llm.push(Reply::Hang);
    b.type_and_send("a slow question");
    b.wait(
        "the Stop button",
        "!document.getElementById('stop').hidden",
        10,
    );
    b.eval("document.getElementById('stop').click(), true");
    b.wait(
        "the run to stop",
        "document.getElementById('stop').hidden && document.querySelector('#log .msg:last-child .meta').textContent === 'stopped'",
        30,
    );

    // /new starts over: the page shows the fresh conversation only.
    b.type_and_send("/new");
    b.wait("the new conversation", "document.querySelectorAll('#log .msg').length <= 3 && document.getElementById('log').textContent.includes('archived')", 10);
    println!("web chat: paging, Markdown, /status, Stop and /new checked in {exe}");
}
