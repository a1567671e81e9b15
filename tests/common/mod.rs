//! Shared test harness: a temporary `$PINCH_HOME`, the real `pinch` binary
//! started as a gateway on an ephemeral port, and local fake model servers
//! on 127.0.0.1 that speak the OpenAI chat-completions and Anthropic
//! Messages streaming protocols (as their API references describe them).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pinch")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private temporary directory, removed on drop.
pub struct TempHome {
    pub path: PathBuf,
}

impl TempHome {
    pub fn new(tag: &str) -> TempHome {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("pinch-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("mkdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        TempHome { path }
    }

    /// Writes pinch.json with mode 0600.
    pub fn write_config(&self, text: &str) {
        write_private(&self.path.join("pinch.json"), text);
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("PINCH_HOME", &self.path)
            .env_remove("PINCH_GATEWAY_TOKEN")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        c
    }

    /// Runs `pinch args...` in this home to the end and returns its output.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run pinch {args:?}: {e}"))
    }

    /// Runs `pinch args...`, asserts it exits 0 (stderr in the message) and
    /// returns its output.
    pub fn run_ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A running gateway process; killed on drop.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts `pinch gateway run --port 0` and waits for `listening on`.
    pub fn start(home: &TempHome, extra: &[&str]) -> Gateway {
        Self::try_start(home, extra).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    pub fn try_start(home: &TempHome, extra: &[&str]) -> Result<Gateway, String> {
        Self::try_start_with_env(home, extra, &[])
    }

    /// Like `start`, with extra environment variables for the gateway
    /// process (e.g. `CREDENTIALS_DIRECTORY`).
    pub fn start_with_env(home: &TempHome, extra: &[&str], envs: &[(&str, &Path)]) -> Gateway {
        Self::try_start_with_env(home, extra, envs)
            .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    pub fn try_start_with_env(
        home: &TempHome,
        extra: &[&str],
        envs: &[(&str, &Path)],
    ) -> Result<Gateway, String> {
        let mut cmd = home.cmd();
        cmd.args(["gateway", "run", "--port", "0"])
            .args(extra)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(line[i + 13..].trim().to_string());
                    }
                }
                log2.lock().expect("log").push_str(&(line + "\n"));
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Gateway {
                child,
                addr: addr.parse().map_err(|e| format!("{e}: {addr}"))?,
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(log.lock().expect("log").clone())
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// What a fake model server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Stream these text pieces, then finish normally.
    Text(Vec<String>),
    /// Stream one tool call (OpenAI shape, arguments split in pieces).
    ToolCall {
        id: String,
        name: String,
        args: String,
    },
    /// Answer with an HTTP status and a JSON error body.
    Status(u16, String),
    /// Accept the connection and never answer.
    Hang,
    /// Accept, read the request, then reset the connection.
    Reset,
    /// Send some text, then drop the connection mid-stream.
    Broken(Vec<String>),
    /// Answer 200 with a stream that is not valid.
    Garbage,
    /// Stream each piece once its gate opens (OpenAI shape); then finish
    /// normally, or drop the connection when `finish` is false.
    Gated { steps: Vec<Step>, finish: bool },
}

/// One piece of a gated stream.
#[derive(Clone, Debug)]
pub struct Step {
    pub text: String,
    pub gate: Gate,
}

/// When a gated piece may be sent, given the time since the request came.
#[derive(Clone)]
pub struct Gate(pub Arc<dyn Fn(Duration) -> bool + Send + Sync>);

impl Gate {
    /// At once.
    pub fn open() -> Gate {
        Gate(Arc::new(|_| true))
    }

    /// Once `delay` has passed since the request.
    pub fn after(delay: Duration) -> Gate {
        Gate(Arc::new(move |since| since >= delay))
    }

    /// Once `condition` holds (checked every 10 ms, for up to 60 s).
    pub fn when(condition: impl Fn() -> bool + Send + Sync + 'static) -> Gate {
        Gate(Arc::new(move |_| condition()))
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Step {
    pub fn new(text: &str, gate: Gate) -> Step {
        Step {
            text: text.to_string(),
            gate,
        }
    }
}

/// A recorded request to a fake server.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    /// The body exactly as sent.
    pub raw: Vec<u8>,
}

/// A fake model server on 127.0.0.1. Replies are taken from the script in
/// order; when the script is empty, `default` answers.
pub struct FakeLlm {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub script: Arc<Mutex<Vec<Reply>>>,
    pub anthropic: bool,
}

impl FakeLlm {
    pub fn openai() -> FakeLlm {
        Self::start(false)
    }
    pub fn anthropic() -> FakeLlm {
        Self::start(true)
    }

    fn start(anthropic: bool) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<Vec<Reply>>> = Arc::new(Mutex::new(Vec::new()));
        let (s2, sc2) = (seen.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s3, sc3) = (s2.clone(), sc2.clone());
                std::thread::spawn(move || serve(stream, &s3, &sc3, anthropic));
            }
        });
        FakeLlm {
            addr,
            seen,
            script,
            anthropic,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn push(&self, r: Reply) {
        self.script.lock().expect("script").push(r);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

/// The newest user text without the gateway's `[Tue 2026-11-24 00:44 UTC]`
/// envelope, so the fake's echo reads the same whatever the time.
fn last_user_text(body: &serde_json::Value) -> String {
    let text = last_user_text_raw(body);
    match text.strip_prefix('[').and_then(|t| t.split_once("] ")) {
        Some((stamp, rest)) if stamp.contains(" UTC") => rest.to_string(),
        _ => text,
    }
}

fn last_user_text_raw(body: &serde_json::Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    for m in msgs.iter().rev() {
        if m["role"] == "user" {
            if let Some(s) = m["content"].as_str() {
                return s.to_string();
            }
            if let Some(parts) = m["content"].as_array() {
                for p in parts {
                    if let Some(t) = p["text"].as_str() {
                        return t.to_string();
                    }
                }
            }
        }
    }
    String::new()
}

fn serve(
    mut stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<Vec<Reply>>,
    anthropic: bool,
) {
    let Some(fake_server::HttpRequest {
        path,
        headers,
        body,
        ..
    }) = fake_server::read_request(&mut stream, &mut Vec::new())
    else {
        return;
    };
    // The gateway's health probe of a loopback model server: not a chat.
    if ["/health", "/props", "/slots"]
        .iter()
        .any(|p| path.ends_with(p))
    {
        let _ = write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let system = json["messages"][0]["content"]
        .as_str()
        .or(json["system"].as_str())
        .or(json["system"][0]["text"].as_str())
        .unwrap_or("")
        .to_string();
    let reply = {
        let mut s = script.lock().expect("script");
        if system.starts_with("You write the running summary") {
            Reply::Text(vec![format!(
                "Summary: {} chars of talk about lorem ipsum.",
                last_user_text(&json).len()
            )])
        } else if s.is_empty() {
            Reply::Text(vec![
                "Hello".into(),
                " from".into(),
                format!(" fake: {}", last_user_text(&json)),
            ])
        } else {
            s.remove(0)
        }
    };
    let model = json["model"].as_str().unwrap_or("m").to_string();
    seen.lock().expect("seen").push(Seen {
        path,
        headers,
        body: json,
        raw: body,
    });
    let sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    match reply {
        Reply::Hang => std::thread::sleep(Duration::from_secs(120)),
        Reply::Reset => {
            reset(&stream);
        }
        Reply::Status(code, body) => {
            let _ = write!(stream, "HTTP/1.1 {code} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}", body.len());
        }
        Reply::Garbage => {
            let _ = write!(stream, "{sse_head}data: {{this is not json\n\n");
        }
        Reply::Text(pieces) => {
            let _ = stream.write_all(sse_head.as_bytes());
            if anthropic {
                anthropic_text(&mut stream, &model, &pieces);
            } else {
                openai_text(&mut stream, &model, &pieces, true);
            }
        }
        Reply::Broken(pieces) => {
            let _ = stream.write_all(sse_head.as_bytes());
            if anthropic {
                let _ = write!(stream, "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"{model}\",\"usage\":{{\"input_tokens\":3,\"output_tokens\":0}}}}}}\n\nevent: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n");
                for p in &pieces {
                    let _ = write!(
                        stream,
                        "event: content_block_delta\ndata: {}\n\n",
                        serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}})
                    );
                }
            } else {
                openai_text(&mut stream, &model, &pieces, false);
            }
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(50));
            reset(&stream);
        }
        Reply::Gated { steps, finish } => {
            let started = std::time::Instant::now();
            let _ = stream.write_all(sse_head.as_bytes());
            openai_text(&mut stream, &model, &[], false);
            for step in steps {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !(step.gate.0)(started.elapsed()) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                openai_text_piece(&mut stream, &model, &step.text);
            }
            if finish {
                openai_finish(&mut stream, &model);
            } else {
                std::thread::sleep(Duration::from_millis(50));
                reset(&stream);
            }
        }
        Reply::ToolCall { id, name, args } => {
            let _ = stream.write_all(sse_head.as_bytes());
            if anthropic {
                anthropic_tool(&mut stream, &model, &id, &name, &args);
            } else {
                openai_tool(&mut stream, &model, &id, &name, &args);
            }
        }
    }
    let _ = stream.flush();
}

/// Closes with SO_LINGER 0, so the peer sees a reset rather than an EOF.
pub fn reset(stream: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid linger struct for the duration of the call.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
}

fn chunk(model: &str, delta: serde_json::Value, finish: Option<&str>) -> String {
    let v = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

fn openai_text(stream: &mut TcpStream, model: &str, pieces: &[String], finish: bool) {
    let _ = stream.write_all(
        chunk(
            model,
            serde_json::json!({"role": "assistant", "content": null}),
            None,
        )
        .as_bytes(),
    );
    for p in pieces {
        openai_text_piece(stream, model, p);
    }
    if finish {
        openai_finish(stream, model);
    }
}

fn openai_text_piece(stream: &mut TcpStream, model: &str, piece: &str) {
    let _ = stream.write_all(chunk(model, serde_json::json!({"content": piece}), None).as_bytes());
    let _ = stream.flush();
}

fn openai_finish(stream: &mut TcpStream, model: &str) {
    let _ = stream.write_all(chunk(model, serde_json::json!({}), Some("stop")).as_bytes());
    let usage = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}});
    let _ = write!(stream, "data: {usage}\n\ndata: [DONE]\n\n");
}

fn openai_tool(stream: &mut TcpStream, model: &str, id: &str, name: &str, args: &str) {
    let _ = stream.write_all(
        chunk(
            model,
            serde_json::json!({"role": "assistant", "content": null}),
            None,
        )
        .as_bytes(),
    );
    let first = serde_json::json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
    let _ = stream.write_all(chunk(model, first, None).as_bytes());
    let mid = args.len() / 2;
    let mid = (0..=mid)
        .rev()
        .find(|i| args.is_char_boundary(*i))
        .unwrap_or(0);
    for piece in [&args[..mid], &args[mid..]] {
        let d = serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
        let _ = stream.write_all(chunk(model, d, None).as_bytes());
    }
    let _ = stream.write_all(chunk(model, serde_json::json!({}), Some("tool_calls")).as_bytes());
    let _ = stream.write_all(b"data: [DONE]\n\n");
}

fn anthropic_text(stream: &mut TcpStream, model: &str, pieces: &[String]) {
    let ev = |s: &mut TcpStream, name: &str, v: serde_json::Value| {
        let _ = write!(s, "event: {name}\ndata: {v}\n\n");
        let _ = s.flush();
    };
    ev(
        stream,
        "message_start",
        serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":model,"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1}}}),
    );
    ev(
        stream,
        "content_block_start",
        serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    );
    ev(stream, "ping", serde_json::json!({"type":"ping"}));
    for p in pieces {
        ev(
            stream,
            "content_block_delta",
            serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}}),
        );
    }
    ev(
        stream,
        "content_block_stop",
        serde_json::json!({"type":"content_block_stop","index":0}),
    );
    ev(
        stream,
        "message_delta",
        serde_json::json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}),
    );
    ev(
        stream,
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    );
}

fn anthropic_tool(stream: &mut TcpStream, model: &str, id: &str, name: &str, args: &str) {
    let ev = |s: &mut TcpStream, name: &str, v: serde_json::Value| {
        let _ = write!(s, "event: {name}\ndata: {v}\n\n");
    };
    ev(
        stream,
        "message_start",
        serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":model,"usage":{"input_tokens":12,"output_tokens":1}}}),
    );
    ev(
        stream,
        "content_block_start",
        serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
    );
    let mid = args.len() / 2;
    let mid = (0..=mid)
        .rev()
        .find(|i| args.is_char_boundary(*i))
        .unwrap_or(0);
    for piece in [&args[..mid], &args[mid..]] {
        ev(
            stream,
            "content_block_delta",
            serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":piece}}),
        );
    }
    ev(
        stream,
        "content_block_stop",
        serde_json::json!({"type":"content_block_stop","index":0}),
    );
    ev(
        stream,
        "message_delta",
        serde_json::json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}}),
    );
    ev(
        stream,
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    );
}

/// A config with one provider `fake` (or several) pointing at fake servers.
pub fn config_for(
    providers: &[(&str, &FakeLlm)],
    primary: &str,
    fallbacks: &[&str],
    extra: &str,
) -> String {
    let mut ps = Vec::new();
    for (id, f) in providers {
        let api = if f.anthropic {
            "anthropic-messages"
        } else {
            "openai-completions"
        };
        ps.push(format!(
            r#""{id}": {{"baseUrl": "{}", "api": "{api}", "apiKey": "test-key", "timeouts": {{"connect": 2, "firstToken": 3, "idle": 3, "total": 20}}, "models": [{{"id": "m1", "contextWindow": 4096, "maxTokens": 256}}]}}"#,
            f.base_url()
        ));
    }
    let fb: Vec<String> = fallbacks.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        r#"{{
  "models": {{"providers": {{ {} }}}},
  "agents": {{"defaults": {{"model": {{"primary": "{primary}", "fallbacks": [{}]}}}}}}
  {extra}
}}"#,
        ps.join(",\n"),
        fb.join(", ")
    )
}

/// A small WebSocket client for the gateway's API.
pub struct Ws {
    pub ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
}

impl Ws {
    pub fn connect(addr: SocketAddr) -> Ws {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let (ws, _) = tungstenite::client::client(format!("ws://{addr}/ws").as_str(), stream)
            .expect("ws handshake");
        Ws { ws, next: 1 }
    }

    pub fn send_raw(&mut self, text: &str) {
        self.ws
            .send(tungstenite::Message::text(text.to_string()))
            .expect("send");
    }

    pub fn req(&mut self, method: &str, params: serde_json::Value) -> String {
        let id = self.next.to_string();
        self.next += 1;
        self.send_raw(
            &serde_json::json!({"type": "req", "id": id, "method": method, "params": params})
                .to_string(),
        );
        id
    }

    pub fn read(&mut self) -> serde_json::Value {
        loop {
            match self.ws.read().expect("read frame") {
                tungstenite::Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).expect("json frame")
                }
                tungstenite::Message::Close(_) => return serde_json::json!({"closed": true}),
                _ => {}
            }
        }
    }

    /// Sends a request and returns its response frame (skipping events).
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.req(method, params);
        loop {
            let v = self.read();
            if v["type"] == "res" && v["id"] == id.as_str() {
                return v;
            }
        }
    }

    /// Reads events until `chat.final` or `chat.error`; returns all of them.
    pub fn until_done(&mut self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let v = self.read();
            let e = v["event"].as_str().unwrap_or("").to_string();
            out.push(v);
            if e == "chat.final" || e == "chat.error" {
                return out;
            }
        }
    }
}

pub fn http_get(url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let mut rq = agent.get(url);
    if let Some(t) = token {
        rq = rq.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = rq.call().expect("http get");
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body().read_to_string().unwrap_or_default(),
    )
}

pub fn http_post(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into();
    let mut rq = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        rq = rq.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = rq.send(body).expect("http post");
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body().read_to_string().unwrap_or_default(),
    )
}
/// Polls `condition` every 50 ms until it holds or `secs` seconds pass;
/// returns whether it held (callers assert on the result).
pub fn wait_until(secs: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The gateway's `GET /status` body as JSON (panics with the body if it is not JSON).
pub fn status_json(gw: &Gateway) -> serde_json::Value {
    let (_, body) = http_get(&format!("{}/status", gw.url()), None);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("status JSON: {e}: {body}"))
}

pub mod fake_server;
pub mod slack_fake;
pub mod telegram;
pub mod tinyproxy;
