//! A bounded mailbox from the reactor to one client connection.
//!
//! The reactor never blocks on a client: `push` is a `try_send`. A client
//! that falls more than the bound behind is disconnected rather than allowed
//! to grow memory. WebSocket threads sleep in `poll(2)` on their socket and
//! on the read end of `wake`, so a push wakes them at once.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{SyncSender, TrySendError};

pub struct Outbox {
    tx: SyncSender<String>,
    wake: Option<UnixStream>,
}

impl Outbox {
    pub fn new(tx: SyncSender<String>, wake: Option<UnixStream>) -> Outbox {
        if let Some(w) = &wake {
            let _ = w.set_nonblocking(true);
        }
        Outbox { tx, wake }
    }

    /// Queues a frame. `false` means the client is gone or too slow and
    /// should be forgotten.
    pub fn push(&self, frame: String) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => {
                if let Some(mut w) = self.wake.as_ref() {
                    // A full wake pipe already guarantees a wake-up.
                    let _ = w.write(&[1]);
                }
                true
            }
            Err(TrySendError::Full(_)) => {
                log::warn!("client fell too far behind; disconnecting it");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
