//! Crash injection for the durability tests (test builds only): a test
//! arms `crash_after(n)` and the n-th following write step (a queue
//! transaction, a migration step) fails as if the process died there; its
//! transaction is dropped, never committed.

use std::cell::Cell;

thread_local! {
    static CRASH_AT: Cell<u32> = const { Cell::new(0) };
}

/// Arms a crash at the `steps`-th following write step (0 disarms).
pub fn crash_after(steps: u32) {
    CRASH_AT.with(|c| c.set(steps));
}

/// Whether an armed crash has not fired yet (and disarms it).
pub fn crash_disarm() -> bool {
    CRASH_AT.with(|c| c.replace(0) != 0)
}

/// One write step: true when the armed crash happens here.
pub fn crash_now() -> bool {
    CRASH_AT.with(|c| match c.get() {
        0 => false,
        1 => {
            c.set(0);
            true
        }
        n => {
            c.set(n - 1);
            false
        }
    })
}
