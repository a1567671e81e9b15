//! A 64-bit atomic counter on every target: std's `AtomicU64` where the CPU
//! has 64-bit atomics, and a mutex-guarded `u64` with the same methods
//! where it has none (ARMv5TE, the armel build for Raspberry Pi 1 / Zero and
//! ARMv5 NAS boxes). Only what the code uses is provided.

#[cfg(target_has_atomic = "64")]
pub use std::sync::atomic::AtomicU64;

#[cfg(not(target_has_atomic = "64"))]
pub struct AtomicU64(std::sync::Mutex<u64>);

#[cfg(not(target_has_atomic = "64"))]
impl AtomicU64 {
    pub const fn new(value: u64) -> AtomicU64 {
        AtomicU64(std::sync::Mutex::new(value))
    }

    /// Adds (wrapping, like the atomic) and returns the previous value.
    pub fn fetch_add(&self, add: u64, _order: std::sync::atomic::Ordering) -> u64 {
        let mut value = crate::util::lock(&self.0);
        let previous = *value;
        *value = previous.wrapping_add(add);
        previous
    }

    pub fn load(&self, _order: std::sync::atomic::Ordering) -> u64 {
        *crate::util::lock(&self.0)
    }

    pub fn store(&self, value: u64, _order: std::sync::atomic::Ordering) {
        *crate::util::lock(&self.0) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::AtomicU64;
    use std::sync::atomic::Ordering;

    #[test]
    fn counts_past_32_bits_and_wraps() {
        let c = AtomicU64::new(u64::from(u32::MAX));
        assert_eq!(c.fetch_add(1, Ordering::Relaxed), u64::from(u32::MAX));
        assert_eq!(c.load(Ordering::Relaxed), 1 << 32);
        c.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(c.fetch_add(2, Ordering::Relaxed), u64::MAX);
        assert_eq!(c.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let c = std::sync::Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(c.load(Ordering::Relaxed), 4000);
    }
}
