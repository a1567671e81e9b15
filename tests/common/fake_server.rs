//! Plumbing shared by the fake platform servers (Slack, Discord, Telegram):
//! state behind a mutex + condvar, an accept loop that serves each loopback
//! connection on its own thread, and waiting for a condition with a deadline.
#![allow(dead_code)]

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
