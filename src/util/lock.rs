//! Mutex locking that survives a panicked holder.

/// Locks `m`, taking the guard even if a thread panicked while holding it:
/// for data (queues, counters, maps) that stays valid across such a panic.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
