//! A bounded mailbox from the reactor to one client connection.
//!
//! The reactor never blocks on a client: `push` only appends under a short
//! lock. Streamed text (`chat.delta`) that piles up behind a slow reader is
//! merged into the pending delta of the same run, so a reader that is merely
//! slower than the model still gets every character; only a client whose
//! queue outgrows `MAX_BYTES` or `max_items` (one that stopped reading: its
//! connection thread also gives up after a stalled write) is disconnected.
//! A mailbox made `finals_only` (a non-streaming HTTP chat) keeps no deltas,
//! thinking or tool events at all. WebSocket threads sleep in `poll(2)` on
//! their socket and on the read end of `wake`, so a push wakes them at once.

use serde_json::json;
use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes queued for one client before it counts as gone.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

enum Item {
    Frame(String),
    Delta {
        run_id: String,
        session: String,
        text: String,
    },
}

impl Item {
    fn into_frame(self) -> String {
        match self {
            Item::Frame(f) => f,
            Item::Delta {
                run_id,
                session,
                text,
            } => super::protocol::event_frame(
                "chat.delta",
                json!({"runId": run_id, "session": session, "text": text}),
            ),
        }
    }
}

struct State {
    items: VecDeque<Item>,
    bytes: usize,
    sender_gone: bool,
    receiver_gone: bool,
}

struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    max_items: usize,
}

/// The reactor's end.
pub struct Outbox {
    queue: Arc<Queue>,
    wake: Option<UnixStream>,
    finals_only: bool,
}

/// The connection thread's end.
pub struct Inbox {
    queue: Arc<Queue>,
}

/// A mailbox holding at most `max_items` frames (and `MAX_BYTES`).
pub fn channel(max_items: usize, wake: Option<UnixStream>, finals_only: bool) -> (Outbox, Inbox) {
    if let Some(w) = &wake {
        let _ = w.set_nonblocking(true);
    }
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            sender_gone: false,
            receiver_gone: false,
        }),
        ready: Condvar::new(),
        max_items,
    });
    (
        Outbox {
            queue: queue.clone(),
            wake,
            finals_only,
        },
        Inbox { queue },
    )
}

impl Outbox {
    /// Queues a frame. `false` means the client is gone or stopped reading
    /// and should be forgotten.
    pub fn push(&self, frame: String) -> bool {
        self.put(frame.len(), |_| Some(Item::Frame(frame)))
    }

    /// Queues streamed text of a run, merged into a pending delta of the
    /// same run when there is one.
    pub fn push_delta(&self, run_id: &str, session: &str, text: &str) -> bool {
        if self.finals_only {
            return true;
        }
        self.put(text.len(), |back| {
            if let Some(Item::Delta {
                run_id: r, text: t, ..
            }) = back
            {
                if r == run_id {
                    t.push_str(text);
                    return None;
                }
            }
            Some(Item::Delta {
                run_id: run_id.to_string(),
                session: session.to_string(),
                text: text.to_string(),
            })
        })
    }

    /// Queues an event frame that a `finals_only` mailbox leaves out.
    pub fn push_progress(&self, frame: impl FnOnce() -> String) -> bool {
        if self.finals_only {
            return true;
        }
        self.push(frame())
    }

    /// `add` merges into the last queued item (returning `None`) or makes a
    /// new one.
    fn put(&self, bytes: usize, add: impl FnOnce(Option<&mut Item>) -> Option<Item>) -> bool {
        let mut s = crate::util::lock(&self.queue.state);
        if s.receiver_gone {
            return false;
        }
        let total = s.bytes.saturating_add(bytes);
        if total > MAX_BYTES {
            log::warn!("client stopped reading ({total} bytes queued); disconnecting it");
            return false;
        }
        let was_empty = s.items.is_empty();
        if let Some(item) = add(s.items.back_mut()) {
            if s.items.len() >= self.queue.max_items {
                log::warn!(
                    "client stopped reading ({} frames queued); disconnecting it",
                    s.items.len()
                );
                return false;
            }
            s.items.push_back(item);
        }
        s.bytes = total;
        drop(s);
        self.queue.ready.notify_one();
        if was_empty {
            if let Some(mut w) = self.wake.as_ref() {
                // A full wake pipe already guarantees a wake-up.
                let _ = w.write(&[1]);
            }
        }
        true
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        crate::util::lock(&self.queue.state).sender_gone = true;
        self.queue.ready.notify_all();
        if let Some(mut w) = self.wake.as_ref() {
            let _ = w.write(&[1]);
        }
    }
}

impl Inbox {
    fn pop(s: &mut State) -> Option<String> {
        let item = s.items.pop_front()?;
        let len = match &item {
            Item::Frame(f) => f.len(),
            Item::Delta { text, .. } => text.len(),
        };
        s.bytes = s.bytes.saturating_sub(len);
        Some(item.into_frame())
    }

    pub fn try_recv(&self) -> Result<String, TryRecvError> {
        let mut s = crate::util::lock(&self.queue.state);
        match Self::pop(&mut s) {
            Some(f) => Ok(f),
            None if s.sender_gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        let mut s = crate::util::lock(&self.queue.state);
        loop {
            if let Some(f) = Self::pop(&mut s) {
                return Ok(f);
            }
            if s.sender_gone {
                return Err(RecvTimeoutError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            s = match self.queue.ready.wait_timeout(s, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut s = crate::util::lock(&self.queue.state);
        s.receiver_gone = true;
        s.items.clear();
        s.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_behind_a_slow_reader_merge_and_nothing_is_lost() {
        let (tx, rx) = channel(4, None, false);
        for i in 0..1000 {
            assert!(
                tx.push_delta("1", "s", &format!("{} ", i % 10)),
                "never dropped"
            );
        }
        assert!(tx.push("{\"event\":\"chat.final\"}".into()));
        let first: serde_json::Value =
            serde_json::from_str(&rx.try_recv().expect("delta")).expect("json");
        assert_eq!(first["event"], "chat.delta");
        assert_eq!(first["payload"]["text"].as_str().map(str::len), Some(2000));
        assert_eq!(rx.try_recv().expect("final"), "{\"event\":\"chat.final\"}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn a_reader_that_stopped_is_dropped_at_the_bounds() {
        let (tx, _rx) = channel(3, None, false);
        assert!(tx.push("a".into()));
        assert!(tx.push("b".into()));
        assert!(tx.push("c".into()));
        assert!(!tx.push("d".into()), "over max_items");
        let (tx, _rx) = channel(3, None, false);
        let big = "x".repeat(MAX_BYTES / 2 + 1);
        assert!(tx.push_delta("1", "s", &big));
        assert!(!tx.push_delta("1", "s", &big), "over MAX_BYTES");
        let (tx, rx) = channel(3, None, false);
        drop(rx);
        assert!(!tx.push("a".into()), "receiver gone");
    }

    #[test]
    fn a_finals_only_mailbox_keeps_no_progress() {
        let (tx, rx) = channel(2, None, true);
        for _ in 0..10_000 {
            assert!(tx.push_delta("1", "s", "word "));
            assert!(tx.push_progress(|| "tool".into()));
        }
        assert!(tx.push("final".into()));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)),
            Ok("final".into())
        );
    }
}
