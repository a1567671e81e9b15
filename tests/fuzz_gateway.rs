//! Fuzzing the gateway's edge from outside: mutated HTTP requests (heads,
//! paths, escapes, bodies, WebSocket handshakes) and mutated WebSocket
//! frames, sent to the real binary over TCP. The debug binary unwinds on a
//! panic and logs it, so a panic is found in its log and the input that
//! caused it is written to `tests/data/fuzz/<target>/`, which later runs
//! replay. Budget: `PINCH_FUZZ_SECONDS` (default 6 s) split between the two
//! targets; seed: `PINCH_FUZZ_SEED`. The mutation engine is the harness's own.

mod common;

#[path = "../src/fuzz/engine.rs"]
mod engine;

use common::*;
use engine::Rng;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HOOK_TOKEN: &str = "0123456789abcdef-hook";

fn data_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
        .join(target)
}

fn corpus(target: &str, seeds_from: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = engine::read_dir_files(&data_dir("fuzz-seeds", seeds_from))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert!(
        !v.is_empty(),
        "no seeds in tests/data/fuzz-seeds/{seeds_from}"
    );
    v.extend(
        engine::read_dir_files(&data_dir("fuzz", target))
            .into_iter()
            .map(|(_, b)| b),
    );
    v
}

struct Live {
    gw: Gateway,
    seen_log: usize,
}

impl Live {
    fn start(tag: &str) -> (TempHome, FakeLlm, Live) {
        let home = TempHome::new(tag);
        let llm = FakeLlm::openai();
        home.write_config(&config_for(
            &[("fake", &llm)],
            "fake/m1",
            &[],
            &format!(
                r#", "hooks": {{"gh": {{"token": "{HOOK_TOKEN}", "message": "Push: {{{{body}}}}", "maxBodyBytes": 4096}}}}"#
            ),
        ));
        let gw = Gateway::start(&home, &[]);
        (home, llm, Live { gw, seen_log: 0 })
    }

    /// Panic lines logged since the last call.
    fn new_panics(&mut self) -> Vec<String> {
        let log = self.gw.log.lock().expect("log");
        let from = self.seen_log.min(log.len());
        let out = log[from..]
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_string)
            .collect();
        self.seen_log = log.len();
        out
    }

    /// Waits (up to `within`) for a panic line to appear in the log.
    fn panic_within(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.new_panics().into_iter().next() {
                return Some(p);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = Read::by_ref(&mut s).take(1 << 20).read_to_end(&mut out);
    out
}

fn healthz(addr: SocketAddr) -> bool {
    exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n").starts_with(b"HTTP/1.1 200")
}

/// One WebSocket session: a clean handshake, then frames built from `inputs`
/// (text when UTF-8, else binary; some written raw, unframed).
fn ws_session(addr: SocketAddr, inputs: &[Vec<u8>], rng: &mut Rng) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok((mut ws, _)) = tungstenite::client::client(format!("ws://{addr}/ws").as_str(), stream)
    else {
        return;
    };
    for input in inputs {
        let sent = if rng.chance(8) {
            let s = ws.get_mut();
            s.write_all(input).is_ok()
        } else {
            let m = match std::str::from_utf8(input) {
                Ok(t) => tungstenite::Message::text(t.to_string()),
                Err(_) => tungstenite::Message::binary(input.clone()),
            };
            ws.send(m).is_ok()
        };
        if !sent {
            return;
        }
    }
    // Read what came back until a pause, so the gateway sees a live reader.
    while ws.read().is_ok() {}
}

struct Outcome {
    execs: u64,
    known: u64,
    failures: Vec<String>,
}

/// Mutates HTTP requests and sends each on its own connection.
fn fuzz_http(live: &mut Live, budget: Duration, rng: &mut Rng) -> Outcome {
    let pool = corpus("http_request", "http_request");
    let mut out = Outcome {
        execs: 0,
        known: 0,
        failures: Vec::new(),
    };
    let mut recent: VecDeque<Vec<u8>> = VecDeque::new();
    let deadline = Instant::now() + budget;
    // The corpus itself first, then mutations.
    let mut queue: Vec<Vec<u8>> = pool.clone();
    while Instant::now() < deadline {
        let input = match queue.pop() {
            Some(i) => i,
            None => {
                let base = &pool[rng.below(pool.len())];
                engine::mutate(rng, base, &pool, 256 * 1024)
            }
        };
        let _ = exchange(live.gw.addr, &input);
        out.execs += 1;
        recent.push_back(input);
        if recent.len() > 16 {
            recent.pop_front();
        }
        if !live.new_panics().is_empty() {
            // Find which recent input it was: replay them one by one.
            let mut culprit = None;
            while let Some(i) = recent.pop_back() {
                let _ = exchange(live.gw.addr, &i);
                if let Some(p) = live.panic_within(Duration::from_millis(300)) {
                    culprit = Some((i, p));
                    break;
                }
            }
            let what = match culprit {
                Some((i, p)) => {
                    let saved = engine::save_failure(&data_dir("fuzz", "http_request"), &i)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    format!("http_request: {p} -> {saved}")
                }
                None => "http_request: a panic that did not reproduce".to_string(),
            };
            out.failures.push(what);
            break;
        }
    }
    out
}

/// Mutates JSON protocol frames and sends them over WebSocket sessions.
fn fuzz_ws(live: &mut Live, budget: Duration, rng: &mut Rng) -> Outcome {
    let pool = corpus("ws_session", "ws_frame");
    let mut out = Outcome {
        execs: 0,
        known: 0,
        failures: Vec::new(),
    };
    let deadline = Instant::now() + budget;
    let mut first = true;
    while Instant::now() < deadline {
        let batch: Vec<Vec<u8>> = if first {
            first = false;
            pool.clone()
        } else {
            (0..16)
                .map(|_| {
                    let base = &pool[rng.below(pool.len())];
                    engine::mutate(rng, base, &pool, 128 * 1024)
                })
                .collect()
        };
        ws_session(live.gw.addr, &batch, rng);
        out.execs += batch.len() as u64;
        if !live.new_panics().is_empty() {
            let mut culprit = None;
            for i in &batch {
                ws_session(live.gw.addr, std::slice::from_ref(i), &mut Rng::new(1));
                if let Some(p) = live.panic_within(Duration::from_millis(300)) {
                    culprit = Some((i.clone(), p));
                    break;
                }
            }
            let what = match culprit {
                Some((i, p)) => {
                    let saved = engine::save_failure(&data_dir("fuzz", "ws_session"), &i)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    format!("ws_session: {p} -> {saved}")
                }
                None => "ws_session: a panic that did not reproduce".to_string(),
            };
            out.failures.push(what);
            break;
        }
    }
    out
}

#[test]
fn fuzz_the_running_gateway_over_http_and_websocket() {
    let budget = engine::budget_from_env(6.0);
    let seed = engine::seed_from_env();
    println!(
        "fuzzing the gateway for {:.1} s, PINCH_FUZZ_SEED={seed:#x}",
        budget.as_secs_f64()
    );
    let (_home, _llm, mut live) = Live::start("fuzzgw");
    let mut rng = Rng::new(seed ^ engine::hash(b"gateway"));
    let http = fuzz_http(&mut live, budget / 2, &mut rng);
    let ws = fuzz_ws(&mut live, budget / 2, &mut rng);
    println!(
        "{}",
        engine::table(&[
            (
                "http_request".into(),
                http.execs,
                http.failures.len(),
                http.known
            ),
            ("ws_session".into(), ws.execs, ws.failures.len(), ws.known),
        ])
    );
    let failures = [http.failures, ws.failures].concat();
    assert!(
        failures.is_empty(),
        "the gateway panicked:\n{}",
        failures.join("\n")
    );
    assert!(
        healthz(live.gw.addr),
        "/healthz does not answer 200 after fuzzing"
    );
    let (status, body) = http_post(
        &format!("{}/api/chat", live.gw.url()),
        None,
        r#"{"session": "http:after-fuzz", "text": "still there?", "stream": false}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello from fake: still there?"), "{body}");
    assert!(live.new_panics().is_empty(), "{}", live.gw.log());
    assert!(http.execs > 10 && ws.execs > 10, "too few executions");
}
