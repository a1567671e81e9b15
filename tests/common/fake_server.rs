//! Plumbing shared by the fake platform servers (Slack, Discord, Telegram):
//! state behind a mutex + condvar, an accept loop that serves each loopback
//! connection on its own thread, and waiting for a condition with a deadline.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A fake's state, shared by its connection threads and the test.
pub type Shared<T> = Arc<(Mutex<T>, Condvar)>;

pub fn shared<T>(state: T) -> Shared<T> {
    Arc::new((Mutex::new(state), Condvar::new()))
}

/// Accepts on `listener` in the background; each connection runs `serve`
/// on its own thread.
pub fn serve_each<T, F>(listener: TcpListener, state: &Shared<T>, serve: F)
where
    T: Send + 'static,
    F: Fn(TcpStream, &(Mutex<T>, Condvar)) + Send + Sync + 'static,
{
    let (state, serve) = (state.clone(), Arc::new(serve));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (state, serve) = (state.clone(), serve.clone());
            std::thread::spawn(move || serve(stream, &state));
        }
    });
}

/// Runs `f` on the locked state and wakes every waiter.
pub fn with<T, R>(state: &(Mutex<T>, Condvar), f: impl FnOnce(&mut T) -> R) -> R {
    let (m, cv) = state;
    let r = f(&mut m.lock().expect("state"));
    cv.notify_all();
    r
}

/// Waits until `cond` holds (Ok) or `secs` pass (Err), re-checking at least
/// every 100 ms; either way hands back the locked state.
pub fn wait<T>(
    state: &(Mutex<T>, Condvar),
    secs: u64,
    mut cond: impl FnMut(&T) -> bool,
) -> Result<MutexGuard<'_, T>, MutexGuard<'_, T>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (m, cv) = state;
    let mut g = m.lock().expect("state");
    while !cond(&g) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(g);
        }
        g = cv
            .wait_timeout(g, left.min(Duration::from_millis(100)))
            .expect("wait")
            .0;
    }
    Ok(g)
}

/// One HTTP request as a fake server reads it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (head and `Content-Length` body) from `stream`. Bytes
/// read past it stay in `buf` for the next request of a kept-alive
/// connection. `None` at end of stream, on a read error, or for a head that
/// is malformed or over 64 KiB.
pub fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<HttpRequest> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let mut request = HttpRequest {
                    method: req.method.unwrap_or("").to_string(),
                    path: req.path.unwrap_or("").to_string(),
                    headers,
                    body: Vec::new(),
                };
                let body_len: usize = request
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_len + body_len {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                request.body = buf[head_len..head_len + body_len].to_vec();
                buf.drain(..head_len + body_len);
                return Some(request);
            }
            Ok(httparse::Status::Partial) if buf.len() <= 64 * 1024 => {}
            _ => return None,
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
