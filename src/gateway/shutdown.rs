//! Shutdown that waits: after SIGTERM or SIGINT the gateway tells systemd
//! `STOPPING=1`, stops accepting, stops the runs in flight (a channel
//! message's stays in the durable inbox and runs again at the next start; a
//! client's is checkpointed into its transcript, `reactor/shutdown.rs`),
//! tells the adapters, the snapshot worker and the local model monitor to
//! stop, then joins every thread it started — accept, adapters, snapshot,
//! monitor, agent workers, connections — within one bounded grace period,
//! and closes the store. A thread still running when the grace period ends
//! is named in the log and the process exits anyway.

pub use crate::channel::adapter::NamedThread;
use std::time::{Duration, Instant};

/// The longest the gateway waits for its threads at shutdown.
pub const GRACE: Duration = Duration::from_secs(5);

/// How often a join with a deadline looks at its thread.
const POLL: Duration = Duration::from_millis(10);

/// Joins each thread that ends before `deadline`; returns the names of
/// those still running then (they are left detached).
pub fn join_until(threads: Vec<NamedThread>, deadline: Instant) -> Vec<String> {
    let mut stuck = Vec::new();
    for thread in threads {
        while !thread.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if thread.handle.is_finished() {
            if thread.handle.join().is_err() {
                log::warn!("thread {} ended with a panic", thread.name);
            }
            log::debug!("thread {} stopped", thread.name);
        } else {
            stuck.push(thread.name);
        }
    }
    stuck
}

/// Waits until `count()` is zero or `deadline` passes; returns the last count.
pub fn wait_zero(deadline: Instant, count: impl Fn() -> usize) -> usize {
    loop {
        let left = count();
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

/// The shutdown's last log line: every thread stopped, or which did not.
pub fn report(stuck: &[String]) {
    if stuck.is_empty() {
        log::info!("shutdown complete: every thread stopped");
    } else {
        log::warn!(
            "shutdown: {} did not stop within {} s; exiting anyway",
            stuck.join(", "),
            GRACE.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> NamedThread {
        NamedThread {
            name: name.into(),
            handle: std::thread::spawn(body),
        }
    }

    #[test]
    fn a_thread_that_ends_is_joined_and_one_that_hangs_is_named() {
        let release = Arc::new(AtomicBool::new(false));
        let hold = release.clone();
        let threads = vec![
            spawn("quick", || {}),
            spawn("stuck", move || {
                while !hold.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }),
        ];
        let stuck = join_until(threads, Instant::now() + Duration::from_millis(100));
        assert_eq!(stuck, vec!["stuck".to_string()]);
        release.store(true, Ordering::SeqCst);
    }

    #[test]
    fn waiting_for_a_count_ends_at_zero_or_at_the_deadline() {
        let count = AtomicUsize::new(2);
        let left = wait_zero(Instant::now() + Duration::from_millis(50), || {
            count.load(Ordering::SeqCst)
        });
        assert_eq!(left, 2, "the deadline ends the wait");
        count.store(0, Ordering::SeqCst);
        let left = wait_zero(Instant::now() + Duration::from_secs(5), || {
            count.load(Ordering::SeqCst)
        });
        assert_eq!(left, 0);
    }
}
